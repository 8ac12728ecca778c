package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/statekeeper/statekeeper/internal/server"
)

// The baselines run as child processes of this tool (the same binary with
// a server subcommand), so each server has the machine's cores as
// statekeeper has them, and none shares a Go runtime with the load.
const (
	serveNoopTLS     = "serve-noop-tls"
	serveNoopWebhook = "serve-noop-webhook"
	noopPath         = "/validate"
)

// http11Only is what statekeeper's webhook server offers (HTTP/2 off by
// default); the baselines offer the same.
func http11Only(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }

// noopAnswer is what the no-op TLS server answers to any request: an
// AdmissionReview allowing it, written without reading the request.
var noopAnswer = []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"","allowed":true}}` + "\n")

// runNoopTLS serves the cheapest HTTPS answer: the body read and dropped,
// a constant AdmissionReview written. It is what the transport costs.
func runNoopTLS(addr, certDir string) error {
	cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, server.CertName), filepath.Join(certDir, server.KeyName))
	if err != nil {
		return err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	http11Only(cfg)
	srv := &http.Server{
		Addr:              addr,
		TLSConfig:         cfg,
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(noopAnswer)
		}),
	}
	return srv.ListenAndServeTLS("", "")
}

// runNoopWebhook serves controller-runtime's stock admission.Webhook with a
// handler that allows everything, on controller-runtime's webhook server
// (with its metrics), as a webhook built with controller-runtime does: what
// decoding the review and answering it costs.
func runNoopWebhook(host string, port int, certDir string) error {
	ctrllog.SetLogger(logr.Discard())
	srv := webhook.NewServer(webhook.Options{
		Host: host, Port: port, CertDir: certDir,
		CertName: server.CertName, KeyName: server.KeyName,
		TLSOpts: []func(*tls.Config){http11Only},
	})
	srv.Register(noopPath, &admission.Webhook{
		Handler: admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
			return admission.Allowed("")
		}),
	})
	return srv.Start(context.Background())
}

// child is a baseline server running as a child process.
type child struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// startChild runs this binary with args and waits until addr takes TLS
// connections.
func startChild(ctx context.Context, logFile string, addr string, args ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	log, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return nil, err
	}
	c := &child{cmd: cmd, exited: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		_ = log.Close()
		close(c.exited)
	}()
	if err := waitListening(ctx, addr, c); err != nil {
		c.stop()
		return nil, fmt.Errorf("%s: %w (see %s)", args[0], err, logFile)
	}
	return c, nil
}

func waitListening(ctx context.Context, addr string, c *child) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-c.exited:
			return fmt.Errorf("exited: %v", c.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = conn.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("not listening after 30s")
}

func (c *child) stop() {
	_ = c.cmd.Process.Kill()
	<-c.exited
}
