// Package skprocess runs `statekeeper serve` as a separate process for the
// measurements under hack/measure: the real binary, its real flags, its own
// log file, stopped the way a kubelet stops it.
package skprocess

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Options say how to run `statekeeper serve`.
type Options struct {
	Binary, Kubeconfig, CertDir, LogFile string
	// Namespace is statekeeper's own (--namespace): its Lease lives there.
	Namespace                     string
	WebhookPort                   int
	MetricsAddress, HealthAddress string
	// LeaderElect runs the reconciler (it is leader-elected).
	LeaderElect bool
	// Env is added to the process's environment (GOMEMLIMIT, for one).
	Env []string
	// Args are more flags of serve.
	Args []string
}

// Process is a running `statekeeper serve`.
type Process struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	readyz  string
	logFile *os.File
	http    *http.Client
	// MetricsURL is where the process serves /metrics.
	MetricsURL string
}

// Start starts statekeeper with opts. No webhook configuration points at it:
// the measurements call it (or its caches) directly.
func Start(opts Options) (*Process, error) {
	logFile, err := os.Create(opts.LogFile)
	if err != nil {
		return nil, err
	}
	args := []string{"serve",
		"--kubeconfig", opts.Kubeconfig,
		"--cert-dir", opts.CertDir,
		"--webhook-host", "127.0.0.1",
		"--webhook-port", fmt.Sprint(opts.WebhookPort),
		"--metrics-bind-address", opts.MetricsAddress,
		"--health-probe-bind-address", opts.HealthAddress,
		"--namespace", opts.Namespace,
		fmt.Sprintf("--leader-elect=%t", opts.LeaderElect),
	}
	cmd := exec.Command(opts.Binary, append(args, opts.Args...)...)
	cmd.Env = append(os.Environ(), opts.Env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", opts.Binary, err)
	}
	p := &Process{
		cmd:        cmd,
		exited:     make(chan struct{}),
		readyz:     "http://" + opts.HealthAddress + "/readyz",
		logFile:    logFile,
		http:       &http.Client{Timeout: 10 * time.Second},
		MetricsURL: "http://" + opts.MetricsAddress + "/metrics",
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// ErrExited says statekeeper stopped while it was being measured.
var ErrExited = errors.New("statekeeper exited")

// Alive reports ErrExited (with the exit status) once the process is gone.
func (p *Process) Alive() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%w (%v); see %s", ErrExited, p.waitErr, p.logFile.Name())
	default:
		return nil
	}
}

// Pid is the process's id, for reading /proc.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// WaitReady waits until /readyz answers 200: caches synced, webhook server
// listening.
func (p *Process) WaitReady(ctx context.Context, timeout time.Duration) error {
	return p.Poll(ctx, "statekeeper to be ready", timeout, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.readyz, nil)
		if err != nil {
			return false, err
		}
		resp, err := p.http.Do(req)
		if err != nil {
			return false, nil // not listening yet
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// Poll calls done every half second until it is true, the process exits,
// or timeout passes.
func (p *Process) Poll(ctx context.Context, what string, timeout time.Duration, done func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := p.Alive(); err != nil {
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

// Stop asks statekeeper to stop (SIGTERM: it releases its Lease on the way
// out) and kills it when it has not stopped in grace.
func (p *Process) Stop(grace time.Duration) {
	defer func() { _ = p.logFile.Close() }()
	if p.Alive() != nil {
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
