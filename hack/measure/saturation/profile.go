package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// startProfile asks statekeeper's pprof endpoint for a CPU profile of the
// measured part of a run (after the warm-up) and returns a function that
// waits for it and writes it to file.
func startProfile(ctx context.Context, pprofAddr string, warmup, duration time.Duration, file string) func() error {
	done := make(chan error, 1)
	go func() {
		if err := sleep(ctx, warmup); err != nil {
			done <- err
			return
		}
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddr, max(1, int(duration.Seconds())))
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			done <- err
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- err
			return
		}
		defer func() { _ = resp.Body.Close() }()
		if resp.StatusCode != http.StatusOK {
			done <- fmt.Errorf("GET %s: %s", url, resp.Status)
			return
		}
		out, err := os.Create(file)
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(out, resp.Body)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		done <- err
	}()
	return func() error {
		if err := <-done; err != nil {
			return fmt.Errorf("profiling statekeeper: %w", err)
		}
		log("CPU profile in %s", file)
		return nil
	}
}
