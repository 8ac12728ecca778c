//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/statekeeper/statekeeper/test/podproc"
)

// process is a program the suite runs on the local cluster in place of a
// pod, its output appended to a log that holds this run only.
type process struct {
	name    string
	logPath string

	running *podproc.Process // nil when not started or stopped
}

// start runs binary with args and extra environment, appending its output
// to the log. Should the test binary die without its teardown, the kernel
// stops the process too: an orphaned server would keep the leader-election
// Lease and starve the next run's reconciler.
func (p *process) start(binary string, args, env []string) error {
	running, err := podproc.Start(podproc.Command{
		Name: p.name, Binary: binary, Args: args, Env: env, Log: p.logPath,
		EndWithParent: syscall.SIGTERM,
	})
	p.running = running
	return err
}

// freshLog removes the log of an earlier run.
func (p *process) freshLog() error { return podproc.FreshLog(p.logPath) }

// exitedEarly reports an exit of the running process, if it has exited.
func (p *process) exitedEarly() error {
	if p.running == nil {
		return fmt.Errorf("%s is not running", p.name)
	}
	err := p.running.Exited()
	if err != nil {
		p.running = nil
	}
	return err
}

// stop ends the process as the kubelet would: SIGTERM, then SIGKILL after
// a grace period. Stopping a stopped process does nothing.
func (p *process) stop() error {
	if p.running == nil {
		return nil
	}
	defer func() { p.running = nil }()
	return p.running.Stop(30 * time.Second)
}

// dumpLog writes the last lines of the log.
func (p *process) dumpLog(w io.Writer) {
	f, err := os.Open(p.logPath)
	if err != nil {
		return
	}
	defer f.Close()
	const keep = 40
	var lines []string
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for scanner.Scan() {
		lines = append(lines, scanner.Text())
		if len(lines) > keep {
			lines = lines[1:]
		}
	}
	fmt.Fprintf(w, "--- the last %d lines of %s\n%s\n---\n", len(lines), p.logPath, strings.Join(lines, "\n"))
}
