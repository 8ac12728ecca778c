package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// pprofAddress is where statekeeper serves /debug/pprof when --profile-dir
// is set.
const pprofAddress = "127.0.0.1:18082"

// saveProfile writes, for one reading, statekeeper's heap profile (read with
// `go tool pprof -sample_index=inuse_space`) and its /proc smaps_rollup: what
// of the RSS is file-backed (the binary's pages) and what anonymous (heap,
// stacks, the runtime's own structures).
func saveProfile(ctx context.Context, dir, reading string, pid int) error {
	name := strings.Map(func(r rune) rune {
		if r == ' ' || r == ',' {
			return '-'
		}
		return r
	}, reading)
	resp, err := get(ctx, "http://"+pprofAddress+"/debug/pprof/heap")
	if err != nil {
		return fmt.Errorf("reading the heap profile: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".heap.pb.gz"), resp, 0o644); err != nil {
		return err
	}
	smaps, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".smaps_rollup"), smaps, 0o644)
}

func get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}
