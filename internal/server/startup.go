package server

import (
	"context"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/statekeeper/statekeeper/internal/exepages"
)

// releaseSettle is how long after a start-up phase its pages are released:
// long enough for the phase's one-time work (a term's controllers starting
// and reconciling every object once) to have run.
const releaseSettle = 10 * time.Second

// releaseStartupPages hands back the pages of the executable that only
// start-up used (package exepages). A replica starts in two phases: the
// process (every package's init, the flags, the manager's wiring, the
// informers' first lists, the servers), done once the caches have synced;
// and, whenever it wins the Lease, a term of the leader's work (its
// controllers' start and first reconcile of every object). releaseSettle
// after each, the executable's pages are released; what the steady state
// runs (watch events, admission reviews, reconciles, metrics scrapes)
// comes back on its first use, from the page cache.
type releaseStartupPages struct {
	cache cache.Cache
	log   logr.Logger
	// started says that a term has started; buffered, so that the
	// campaign never waits.
	started chan struct{}
	settle  time.Duration
}

func newReleaseStartupPages(c cache.Cache, log logr.Logger) *releaseStartupPages {
	return &releaseStartupPages{cache: c, log: log, started: make(chan struct{}, 1), settle: releaseSettle}
}

// termStarted tells that the leader's work has started.
func (r *releaseStartupPages) termStarted() {
	select {
	case r.started <- struct{}{}:
	default:
	}
}

// NeedLeaderElection is false: every replica starts.
func (r *releaseStartupPages) NeedLeaderElection() bool { return false }

// Start releases the pages releaseSettle after the caches have synced and
// after each term has started, until ctx ends.
func (r *releaseStartupPages) Start(ctx context.Context) error {
	if !exepages.Supported || !r.cache.WaitForCacheSync(ctx) {
		return nil
	}
	due := time.NewTimer(r.settle)
	defer due.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.started:
			due.Reset(r.settle)
		case <-due.C:
			r.release()
		}
	}
}

func (r *releaseStartupPages) release() {
	st, err := exepages.Release()
	if err != nil {
		// Nothing is lost: the pages stay mapped, as without Release.
		r.log.Error(err, "Releasing the executable's start-up pages")
		return
	}
	r.log.Info("Released the executable's start-up pages", "mappings", st.Mappings,
		"residentBeforeKiB", st.Before>>10, "residentAfterKiB", st.After>>10)
}
