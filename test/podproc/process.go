package podproc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Command says what to run and where its output goes.
type Command struct {
	// Name names the process in errors ("statekeeper", "cert-manager").
	Name   string
	Binary string
	Args   []string
	// Env is added to this process's environment.
	Env []string
	// Log is the file the output is appended to, each start headed by a
	// line with the time and the command line, so that the log of a
	// restarted process tells its runs apart.
	Log string
	// EndWithParent, when not 0, is the signal the kernel sends the process
	// when the program that started it dies without stopping it (a test
	// binary killed by its timeout): an orphaned statekeeper would keep the
	// leader-election Lease. Only Linux has it; elsewhere it is ignored.
	EndWithParent syscall.Signal
}

// Process is a running (or exited) program started by Start.
type Process struct {
	name, log string
	cmd       *exec.Cmd
	done      chan struct{} // closed once cmd.ProcessState is set
	// terminated keeps a second SIGTERM from being sent: controller-runtime's
	// signal handler exits at once, without its shutdown, on the second.
	terminated, killed atomic.Bool
}

// ErrExited says the process is gone while it was expected to run.
var ErrExited = errors.New("exited")

// Start starts c.
func Start(c Command) (*Process, error) {
	logFile, err := os.OpenFile(c.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logFile, "\n=== %s %s %s\n", time.Now().Format(time.RFC3339Nano), c.Binary, strings.Join(c.Args, " "))
	cmd := exec.Command(c.Binary, c.Args...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	endWithParent(cmd, c.EndWithParent)
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", c.Binary, err)
	}
	p := &Process{name: c.Name, log: c.Log, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // the exit status is in cmd.ProcessState
		_ = logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// FreshLog removes the log at path of earlier runs, so that it holds only
// the runs started from now on.
func FreshLog(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited is nil while the process runs; once it is gone, an ErrExited
// with its exit status and where its log is.
func (p *Process) Exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s %w (%s; log %s)", p.name, ErrExited, p.cmd.ProcessState, p.log)
	default:
		return nil
	}
}

// Poll calls done every interval until it is true, it fails, the process
// exits, or timeout passes.
func (p *Process) Poll(ctx context.Context, what string, interval, timeout time.Duration, done func(context.Context) (bool, error)) error {
	err := wait.PollUntilContextTimeout(ctx, interval, timeout, true, func(ctx context.Context) (bool, error) {
		if err := p.Exited(); err != nil {
			return false, err
		}
		return done(ctx)
	})
	if err != nil && !errors.Is(err, ErrExited) {
		return fmt.Errorf("waiting for %s (log %s): %w", what, p.log, err)
	}
	return err
}

// WaitReady waits until url (a readiness probe's) answers 200 OK.
func (p *Process) WaitReady(ctx context.Context, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: 5 * time.Second}
	last := "no answer yet"
	err := p.Poll(ctx, p.name+" to be ready", 200*time.Millisecond, timeout, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			last = err.Error() // not listening yet
			return false, nil
		}
		_ = resp.Body.Close()
		last = url + ": " + resp.Status
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil && !errors.Is(err, ErrExited) {
		return fmt.Errorf("%w (last: %s)", err, last)
	}
	return err
}

// Terminate stops the process as the kubelet stops a container: SIGTERM
// now, SIGKILL when it has not exited after grace. It returns at once; Done
// tells when the process is gone. Only the first call does anything.
func (p *Process) Terminate(grace time.Duration) {
	if p.Exited() != nil || !p.terminated.CompareAndSwap(false, true) {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	go func() {
		select {
		case <-p.done:
		case <-time.After(grace):
			p.killed.Store(true)
			_ = p.cmd.Process.Kill()
		}
	}()
}

// Stop terminates the process and waits until it is gone; it says so when
// the process had to be killed. Stopping an exited process does nothing.
func (p *Process) Stop(grace time.Duration) error {
	p.Terminate(grace)
	<-p.done
	if p.killed.Load() {
		return fmt.Errorf("%s did not stop within %s of SIGTERM; killed it (log %s)", p.name, grace, p.log)
	}
	return nil
}

// Kill ends the process at once (SIGKILL), as a crash or an OOM kill would.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
}
