// Package cpuprofile takes a CPU profile of a running statekeeper through
// its /debug/pprof endpoint (`statekeeper serve --pprof-bind-address`), for
// the measurements that profile what they measure.
package cpuprofile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// Start asks the pprof endpoint at addr for a CPU profile over d (whole
// seconds, at least one) and returns a function that waits for it and
// writes it to path.
func Start(ctx context.Context, addr string, d time.Duration, path string) func() error {
	done := make(chan error, 1)
	go func() { done <- fetch(ctx, addr, d, path) }()
	return func() error {
		if err := <-done; err != nil {
			return fmt.Errorf("profiling statekeeper: %w", err)
		}
		return nil
	}
}

func fetch(ctx context.Context, addr string, d time.Duration, path string) error {
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, max(1, int(d.Seconds())))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, resp.Body)
	return errors.Join(err, out.Close())
}
