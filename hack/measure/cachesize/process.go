package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/statekeeper/statekeeper/internal/server"
)

// serverOptions say how to run `statekeeper serve` for the measurement.
type serverOptions struct {
	Binary, Kubeconfig, CertDir, LogFile string
	// Namespace is statekeeper's own: its leader-election Lease lives there.
	Namespace                     string
	WebhookPort                   int
	MetricsAddress, HealthAddress string
}

// process is a running `statekeeper serve`.
type process struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	metrics metricsClient
	readyz  string
	logFile *os.File
}

// startServer starts statekeeper with leader election on, so that the
// reconciler runs and its cache is filled as in a real deployment. No
// webhook configuration points at it: the measurement is of the caches.
func startServer(opts serverOptions) (*process, error) {
	logFile, err := os.Create(opts.LogFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(opts.Binary, "serve",
		"--kubeconfig", opts.Kubeconfig,
		"--cert-dir", opts.CertDir,
		"--webhook-host", "127.0.0.1",
		"--webhook-port", fmt.Sprint(opts.WebhookPort),
		"--metrics-bind-address", opts.MetricsAddress,
		"--health-probe-bind-address", opts.HealthAddress,
		"--namespace", opts.Namespace,
		"--leader-elect",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", opts.Binary, err)
	}
	p := &process{
		cmd:     cmd,
		exited:  make(chan struct{}),
		metrics: metricsClient{url: "http://" + opts.MetricsAddress + "/metrics", http: &http.Client{Timeout: 10 * time.Second}},
		readyz:  "http://" + opts.HealthAddress + "/readyz",
		logFile: logFile,
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// errExited says statekeeper stopped while it was being measured.
var errExited = errors.New("statekeeper exited")

// alive reports errExited (with the exit status) once the process is gone.
func (p *process) alive() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%w (%v); see %s", errExited, p.waitErr, p.logFile.Name())
	default:
		return nil
	}
}

// waitLeading waits until statekeeper is ready (caches synced, webhook
// server listening) and has won the election, so its reconciler runs.
func (p *process) waitLeading(ctx context.Context, timeout time.Duration) error {
	ready := func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.readyz, nil)
		if err != nil {
			return false, err
		}
		resp, err := p.metrics.http.Do(req)
		if err != nil {
			return false, nil // not listening yet
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	}
	leading := func(ctx context.Context) (bool, error) {
		s, err := p.metrics.scrape(ctx)
		if err != nil {
			return false, nil
		}
		v, _ := s.value(metricLeader, map[string]string{"name": server.LeaderElectionID})
		return v == 1, nil
	}
	if err := p.poll(ctx, "statekeeper to be ready", timeout, ready); err != nil {
		return err
	}
	return p.poll(ctx, "statekeeper to lead", timeout, leading)
}

// poll calls done every half second until it is true, the process exits,
// or timeout passes.
func (p *process) poll(ctx context.Context, what string, timeout time.Duration, done func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := p.alive(); err != nil {
			return err
		}
		ok, err := done(ctx)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// stop asks statekeeper to stop (it releases its Lease on the way out) and
// kills it when it has not stopped in grace.
func (p *process) stop(grace time.Duration) {
	defer func() { _ = p.logFile.Close() }()
	if p.alive() != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}
