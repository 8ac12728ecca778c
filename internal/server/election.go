package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Leader election that never ends the process.
//
// Every replica runs the webhook server, the caches, the probes and the
// metrics for the life of its process; the reconcilers and the audit run on
// one replica at a time, the holder of the Lease. controller-runtime's own
// leader election ends the whole process when the Lease is lost (the API
// server away for longer than the renew deadline is enough), taking the
// replica's webhook server down with it. Here losing the Lease ends only
// the term: its controllers stop, and the replica campaigns again.

// The Lease's timing, controller-runtime's defaults: a leader that cannot
// renew for renewDeadline stops leading; the others take an unrenewed
// Lease after leaseDuration.
const (
	leaseDuration = 15 * time.Second
	renewDeadline = 10 * time.Second
	retryPeriod   = 2 * time.Second
)

// campaign competes for the Lease for as long as the process runs, and runs
// lead for each term it wins. It is a manager runnable that needs no
// election of its own.
type campaign struct {
	lock                                      resourcelock.Interface
	leaseDuration, renewDeadline, retryPeriod time.Duration
	// lead runs the leader's work until its context is done.
	lead func(ctx context.Context) error
	log  logr.Logger
}

func newCampaign(lock resourcelock.Interface, lead func(context.Context) error, log logr.Logger) *campaign {
	return &campaign{
		lock: lock, leaseDuration: leaseDuration, renewDeadline: renewDeadline, retryPeriod: retryPeriod,
		lead: lead, log: log,
	}
}

// NeedLeaderElection is false: the campaign itself runs on every replica.
func (c *campaign) NeedLeaderElection() bool { return false }

// Start campaigns term after term until ctx is done. When ctx is done the
// leader's work stops first, then the Lease is released.
func (c *campaign) Start(ctx context.Context) error {
	c.log.Info("Campaigning for the Lease", "lock", c.lock.Describe(), "identity", c.lock.Identity())
	for ctx.Err() == nil {
		failed, err := c.term(ctx)
		if err != nil {
			return err
		}
		if failed {
			// Give another replica the chance to lead before this one
			// tries again.
			select {
			case <-ctx.Done():
			case <-time.After(c.retryPeriod):
			}
		}
	}
	return nil
}

// term campaigns until the Lease is won or ctx is done, and runs lead while
// the Lease is held. It returns once the work has stopped and the Lease is
// released (or lost); failed says that the work stopped with an error of
// its own. err is only a misconfigured elector.
func (c *campaign) term(ctx context.Context) (failed bool, err error) {
	// Cancelling the elector's context releases the Lease, so it outlives
	// ctx until the leader's work has stopped.
	electorCtx, release := context.WithCancel(context.WithoutCancel(ctx))
	defer release()
	leading := make(chan context.Context, 1)
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            c.lock,
		LeaseDuration:   c.leaseDuration,
		RenewDeadline:   c.renewDeadline,
		RetryPeriod:     c.retryPeriod,
		ReleaseOnCancel: true,
		Name:            c.lock.Describe(),
		Callbacks: leaderelection.LeaderCallbacks{
			// Called once per elector, with a context that ends when the
			// Lease is lost.
			OnStartedLeading: func(leadCtx context.Context) { leading <- leadCtx },
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return false, fmt.Errorf("configuring leader election: %w", err)
	}
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		elector.Run(electorCtx)
	}()

	var leadCtx context.Context
	select {
	case <-ctx.Done():
		release()
		<-ran
		return false, nil
	case <-ran: // cannot happen before electorCtx ends; campaign again
		return false, nil
	case leadCtx = <-leading:
	}

	c.log.Info("Leading: starting the reconcilers")
	workCtx, stop := context.WithCancel(leadCtx)
	stopOnShutdown := context.AfterFunc(ctx, stop)
	workErr := c.lead(workCtx)
	stopOnShutdown()
	stop()
	switch {
	case ctx.Err() != nil:
		c.log.Info("Stopped leading: shutting down, releasing the Lease")
	case leadCtx.Err() != nil:
		c.log.Info("Lost the Lease: the reconcilers stopped; campaigning again")
	case workErr != nil:
		failed = true
		c.log.Error(workErr, "The leader's work failed: releasing the Lease and campaigning again")
	default:
		failed = true
		c.log.Error(errors.New("stopped by itself"), "The leader's work ended: releasing the Lease and campaigning again")
	}
	release()
	<-ran
	return failed, nil
}
