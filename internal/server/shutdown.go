package server

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
)

// A replica that is told to stop is still routed to for a moment: the
// endpoint controller marks it terminating, and the API server (or
// kube-proxy) sees that a little later. Open keep-alive connections keep
// reaching it after that, since the endpoint is chosen only when a
// connection is dialled. Stopping at once would refuse those requests, and
// with a failurePolicy of Fail every refusal is a refused write.
//
// So shutdown has two phases. While draining, readiness fails, every
// webhook answer carries "Connection: close" (so that each connection
// that brings a request is closed after it, and the client dials a ready
// replica for the next one), and the server otherwise answers as before.
// After the drain period the manager stops: the webhook server finishes
// the requests in flight and closes the idle connections
// (http.Server.Shutdown), and the leader releases its Lease.

// drain is the state of the first phase, shared by the readiness check and
// the webhook handlers.
type drain struct {
	draining atomic.Bool
}

func (d *drain) begin() { d.draining.Store(true) }

// readyz fails once draining has begun.
func (d *drain) readyz() healthz.Checker {
	return func(*http.Request) error {
		if d.draining.Load() {
			return errors.New("shutting down")
		}
		return nil
	}
}

// closeWhileDraining makes h's answers close their connection once
// draining has begun.
func (d *drain) closeWhileDraining(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// drainingWebhookServer registers every webhook handler behind the drain.
type drainingWebhookServer struct {
	webhook.Server
	drain *drain
}

func (s drainingWebhookServer) Register(path string, hook http.Handler) {
	s.Server.Register(path, s.drain.closeWhileDraining(hook))
}

// starter is what Server runs: the manager.
type starter interface {
	Start(ctx context.Context) error
}

// runWithDrain starts m and, once ctx is done, drains for period (until
// after(period) fires) before it cancels m's context; it returns m's
// result. m stops at once when period is zero.
func runWithDrain(ctx context.Context, m starter, d *drain, period time.Duration, after func(time.Duration) <-chan time.Time, log logr.Logger) error {
	// The manager's context outlives ctx by the drain period.
	managerCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	done := make(chan error, 1)
	go func() { done <- m.Start(managerCtx) }()

	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	if period > 0 {
		d.begin()
		log.Info("Shutting down: not ready, answering with Connection: close until the drain period ends", "drain", period)
		select {
		case <-after(period):
		case err := <-done:
			return err
		}
	}
	log.Info("Stopping: finishing the requests in flight and releasing the Lease")
	stop()
	return <-done
}
