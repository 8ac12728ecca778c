package server

import (
	"context"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/statekeeper/statekeeper/internal/exepages"
)

// releaseStartupPages hands back the pages of the executable that only
// start-up used (package exepages), once the caches have synced: by then
// every package's init, the flag parsing, the manager's wiring and the
// informers' first lists have run, and what the steady state runs (watch
// events, admission reviews, reconciles) comes back on its first use.
// About 22 of the 28 MiB of the executable's resident pages are start-up's
// alone (docs/performance.md, "What the caches cost").
type releaseStartupPages struct {
	cache cache.Cache
	log   logr.Logger
}

// NeedLeaderElection is false: every replica started.
func (r releaseStartupPages) NeedLeaderElection() bool { return false }

// Start releases the pages once the caches have synced, and returns.
func (r releaseStartupPages) Start(ctx context.Context) error {
	if !exepages.Supported || !r.cache.WaitForCacheSync(ctx) {
		return nil
	}
	st, err := exepages.Release()
	if err != nil {
		// Nothing is lost: the pages stay mapped, as without Release.
		r.log.Error(err, "Releasing the executable's start-up pages")
		return nil
	}
	r.log.Info("Released the executable's start-up pages", "mappings", st.Mappings,
		"residentBeforeKiB", st.Before>>10, "residentAfterKiB", st.After>>10)
	return nil
}
