//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
// the chart's Deployment on a cluster that runs no containers. Its serving
// certificate is the Secret the Deployment mounts, kept in a directory as
// the kubelet keeps a secret volume.
type localServer struct {
	process
	binary      string
	kubeconfig  string // the cluster's, impersonated into workDir
	workDir     string
	certs       *secretVolume
	port        int // HTTPS webhook port, fixed for the suite's life
	healthPort  int
	metricsPort int
}

func newLocalServer(s settings) (*localServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	healthPort, err := freePort()
	if err != nil {
		return nil, err
	}
	metricsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	server := &localServer{
		process:     process{name: "statekeeper", logPath: filepath.Join(s.workDir, "statekeeper.log")},
		binary:      s.statekeeper,
		kubeconfig:  s.kubeconfig,
		workDir:     s.workDir,
		port:        port,
		healthPort:  healthPort,
		metricsPort: metricsPort,
	}
	// The log holds this run only; restarts within it append.
	return server, server.freshLog()
}

// baseURL is what the chart's webhook.url is set to: the webhooks call the
// local server, and the serving certificate names its host.
func (s *localServer) baseURL() string {
	return fmt.Sprintf("https://%s:%d", localHost, s.port)
}

// start mounts the Deployment's serving certificate, runs the binary with
// the flags of deploy's container, only the listening addresses, the
// certificate directory and the kubeconfig replaced, and waits until it
// reports ready.
func (s *localServer) start(ctx context.Context, deploy *appsv1.Deployment) error {
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
	secret, _, err := servingSecret(deploy)
	if err != nil {
		return err
	}
	s.certs = &secretVolume{
		key:  client.ObjectKey{Namespace: deploy.Namespace, Name: secret.SecretName},
		dir:  filepath.Join(s.workDir, "certs"),
		mode: os.FileMode(ptr.Deref(secret.DefaultMode, 0o644)),
	}
	if err := s.certs.mount(ctx); err != nil {
		return err
	}
	args := podproc.Args(container.Args, map[string]string{
		"webhook-host":              localHost,
		"webhook-port":              fmt.Sprint(s.port),
		"cert-dir":                  s.certs.dir,
		"health-probe-bind-address": fmt.Sprintf("%s:%d", localHost, s.healthPort),
		"metrics-bind-address":      fmt.Sprintf("%s:%d", localHost, s.metricsPort),
		"kubeconfig":                kubeconfig,
	})
	if err := s.process.start(s.binary, args, env); err != nil {
		s.certs.unmount()
		return err
	}
	return s.running.WaitReady(ctx, fmt.Sprintf("http://%s:%d/readyz", localHost, s.healthPort), time.Minute)
}

// metricsURL is where the local server serves /metrics.
func (s *localServer) metricsURL() string {
	return fmt.Sprintf("http://%s:%d/metrics", localHost, s.metricsPort)
}

// stop ends the process as the kubelet would and stops following its
// certificate. Stopping a stopped server does nothing.
func (s *localServer) stop() error {
	err := s.process.stop()
	if s.certs != nil {
		s.certs.unmount()
	}
	return err
}

// servedCertificate is the DER of the leaf certificate the server presents
// now, verified against the CA bundle as the API server verifies it.
func (s *localServer) servedCertificate(ctx context.Context, caBundle []byte) ([]byte, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caBundle) {
		return nil, errors.New("no certificate in the CA bundle")
	}
	dialer := &tls.Dialer{Config: &tls.Config{RootCAs: roots, ServerName: localHost, MinVersion: tls.VersionTLS12}}
	conn, err := dialer.DialContext(ctx, "tcp", net.JoinHostPort(localHost, fmt.Sprint(s.port)))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0].Raw, nil
}

// impersonatingKubeconfig writes the cluster's kubeconfig with the chart's
// ServiceAccount as the impersonated user, so the server has exactly the
// permissions the chart's RBAC grants it.
func (s *localServer) impersonatingKubeconfig(namespace, serviceAccount string) (string, error) {
	path := filepath.Join(s.workDir, "kubeconfig-"+serviceAccount)
	return path, podproc.ImpersonatingKubeconfig(s.kubeconfig, path, namespace, serviceAccount, nil)
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
