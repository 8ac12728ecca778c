//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/statekeeper/statekeeper/test/podproc"
)

const (
	// localHost is where the local server listens and what its serving
	// certificate names.
	localHost = "127.0.0.1"
	// chartContainer is the chart's container whose flags the local server runs with.
	chartContainer = "statekeeper"
)

// localServer runs the statekeeper binary as a local process standing in for
// the chart's Deployment on a cluster that runs no containers.
type localServer struct {
	binary     string
	kubeconfig string // the cluster's, impersonated into workDir
	workDir    string
	certDir    string
	logPath    string
	caBundle   []byte
	port       int // HTTPS webhook port, fixed for the suite's life
	healthPort int

	cmd    *exec.Cmd
	exited chan error
}

func newLocalServer(s settings) *localServer {
	return &localServer{
		binary:     s.statekeeper,
		kubeconfig: s.kubeconfig,
		workDir:    s.workDir,
		certDir:    filepath.Join(s.workDir, "certs"),
		logPath:    filepath.Join(s.workDir, "statekeeper.log"),
	}
}

// url is the webhook URL of path on the local server.
func (s *localServer) url(path string) string {
	return fmt.Sprintf("https://%s:%d%s", localHost, s.port, path)
}

// start runs the binary with the flags of deploy's container, only the
// listening addresses, the certificate directory and the kubeconfig
// replaced, and waits until it reports ready.
func (s *localServer) start(ctx context.Context, deploy *appsv1.Deployment) error {
	if err := s.prepare(ctx); err != nil {
		return err
	}
	container, err := podproc.Container(deploy, chartContainer)
	if err != nil {
		return err
	}
	env, err := podproc.Env(container, deploy.Namespace)
	if err != nil {
		return err
	}
	kubeconfig, err := s.impersonatingKubeconfig(deploy.Namespace, deploy.Spec.Template.Spec.ServiceAccountName)
	if err != nil {
		return err
	}
	args := podproc.Args(container.Args, map[string]string{
		"webhook-host":              localHost,
		"webhook-port":              fmt.Sprint(s.port),
		"cert-dir":                  s.certDir,
		"health-probe-bind-address": fmt.Sprintf("%s:%d", localHost, s.healthPort),
		"metrics-bind-address":      "0",
		"kubeconfig":                kubeconfig,
	})

	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(logFile, "\n=== %s %s %s\n", time.Now().Format(time.RFC3339), s.binary, strings.Join(args, " "))
	cmd := exec.Command(s.binary, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	endWithSuite(cmd)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("starting %s: %w", s.binary, err)
	}
	exited := make(chan error, 1)
	go func() {
		exited <- cmd.Wait()
		logFile.Close()
	}()
	s.cmd, s.exited = cmd, exited
	return s.waitReady(ctx)
}

// prepare starts a fresh log and makes, once, the serving certificate for localHost (signed by the
// development CA, whose bundle the webhooks get) and picks the ports.
func (s *localServer) prepare(ctx context.Context) error {
	if s.caBundle != nil {
		return nil
	}
	// The log holds this run only; restarts within it append.
	if err := os.Remove(s.logPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	out, err := exec.CommandContext(ctx, devCAScript, s.certDir, localHost).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", devCAScript, err, out)
	}
	if s.caBundle, err = os.ReadFile(filepath.Join(s.certDir, "ca.crt")); err != nil {
		return err
	}
	if s.port, err = freePort(); err != nil {
		return err
	}
	s.healthPort, err = freePort()
	return err
}

func (s *localServer) waitReady(ctx context.Context) error {
	readyz := fmt.Sprintf("http://%s:%d/readyz", localHost, s.healthPort)
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-s.exited:
			s.cmd = nil
			return false, fmt.Errorf("statekeeper exited: %v", err)
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, readyz, nil)
		if err != nil {
			return false, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			lastErr = err
			return false, nil
		}
		resp.Body.Close()
		lastErr = fmt.Errorf("%s: %s", readyz, resp.Status)
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("statekeeper is not ready (log %s): %w (last: %v)", s.logPath, err, lastErr)
	}
	return nil
}

// stop ends the process as the kubelet would: SIGTERM, then SIGKILL after
// a grace period. Stopping a stopped server does nothing.
func (s *localServer) stop() error {
	if s.cmd == nil {
		return nil
	}
	defer func() { s.cmd = nil }()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("statekeeper did not stop within 30s of SIGTERM; killed it (log %s)", s.logPath)
	}
}

// impersonatingKubeconfig writes the cluster's kubeconfig with the chart's
// ServiceAccount as the impersonated user, so the server has exactly the
// permissions the chart's RBAC grants it.
func (s *localServer) impersonatingKubeconfig(namespace, serviceAccount string) (string, error) {
	path := filepath.Join(s.workDir, "kubeconfig-"+serviceAccount)
	return path, podproc.ImpersonatingKubeconfig(s.kubeconfig, path, namespace, serviceAccount, nil)
}

// dumpLog writes the last lines of the server's log.
func (s *localServer) dumpLog(w io.Writer) {
	f, err := os.Open(s.logPath)
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
	fmt.Fprintf(w, "--- the last %d lines of %s\n%s\n---\n", len(lines), s.logPath, strings.Join(lines, "\n"))
}

// freePort asks the kernel for a port no one listens on.
func freePort() (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(localHost, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
