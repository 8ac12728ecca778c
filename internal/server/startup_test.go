package server

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/statekeeper/statekeeper/internal/exepages"
)

// syncedCache is a cache whose informers have synced.
type syncedCache struct{ cache.Cache }

func (syncedCache) WaitForCacheSync(context.Context) bool { return true }

// The executable's pages are released once the caches have synced and
// again after each term has started.
func TestStartupPagesAreReleasedAfterEachPhase(t *testing.T) {
	if !exepages.Supported {
		t.Skip("releases nothing here")
	}
	var mu sync.Mutex
	var lines []string
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, args)
	}, funcr.Options{})
	released := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, l := range lines {
			if strings.Contains(l, "Released the executable's start-up pages") {
				n++
			}
		}
		return n
	}
	r := newReleaseStartupPages(syncedCache{}, log)
	r.settle = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Start(ctx) }()
	waitFor := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for released() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d releases, want %d: %q", released(), n, lines)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor(1)
	r.termStarted()
	r.termStarted() // a second signal before the release: one release
	waitFor(2)
	time.Sleep(50 * time.Millisecond)
	if n := released(); n != 2 {
		t.Errorf("%d releases, want 2", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
