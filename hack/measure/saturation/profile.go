package main

import (
	"context"
	"time"

	"github.com/statekeeper/statekeeper/hack/measure/internal/cpuprofile"
)

// startProfile asks statekeeper's pprof endpoint for a CPU profile of the
// measured part of a run (after the warm-up, while the load runs) and
// returns a function that waits for it and writes it to file.
func startProfile(ctx context.Context, pprofAddr string, warmup, duration time.Duration, file string) func() error {
	done := make(chan error, 1)
	go func() {
		if err := sleep(ctx, warmup); err != nil {
			done <- err
			return
		}
		done <- cpuprofile.Start(ctx, pprofAddr, duration, file)()
	}()
	return func() error {
		if err := <-done; err != nil {
			return err
		}
		log("CPU profile in %s", file)
		return nil
	}
}
