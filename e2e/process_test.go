//go:build e2e

package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// process is a program the suite runs on the local cluster in place of a
// pod, its output appended to a log that holds this run only.
type process struct {
	name    string
	logPath string

	cmd    *exec.Cmd
	exited chan error
}

// start runs binary with args and extra environment, appending its output
// to the log.
func (p *process) start(binary string, args, env []string) error {
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(logFile, "\n=== %s %s %s\n", time.Now().Format(time.RFC3339), binary, strings.Join(args, " "))
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	endWithSuite(cmd)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("starting %s: %w", binary, err)
	}
	exited := make(chan error, 1)
	go func() {
		exited <- cmd.Wait()
		logFile.Close()
	}()
	p.cmd, p.exited = cmd, exited
	return nil
}

// freshLog removes the log of an earlier run.
func (p *process) freshLog() error {
	if err := os.Remove(p.logPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// exitedEarly reports an exit of the running process, if it has exited.
func (p *process) exitedEarly() error {
	if p.cmd == nil {
		return fmt.Errorf("%s is not running", p.name)
	}
	select {
	case err := <-p.exited:
		p.cmd = nil
		return fmt.Errorf("%s exited: %v (log %s)", p.name, err, p.logPath)
	default:
		return nil
	}
}

// stop ends the process as the kubelet would: SIGTERM, then SIGKILL after
// a grace period. Stopping a stopped process does nothing.
func (p *process) stop() error {
	if p.cmd == nil {
		return nil
	}
	defer func() { p.cmd = nil }()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%s did not stop within 30s of SIGTERM; killed it (log %s)", p.name, p.logPath)
	}
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
