package main

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/statekeeper/statekeeper/internal/server"
	"github.com/statekeeper/statekeeper/test/podproc"
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

// startBaseline runs this binary with args (a server subcommand) and waits
// until addr takes connections. Its log holds this run only.
func startBaseline(ctx context.Context, logFile, addr string, args ...string) (*podproc.Process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if err := podproc.FreshLog(logFile); err != nil {
		return nil, err
	}
	p, err := podproc.Start(podproc.Command{Name: args[0], Binary: self, Args: args, Log: logFile, EndWithParent: syscall.SIGKILL})
	if err != nil {
		return nil, err
	}
	err = p.Poll(ctx, args[0]+" to listen", 100*time.Millisecond, 30*time.Second, func(context.Context) (bool, error) {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false, nil
		}
		_ = conn.Close()
		return true, nil
	})
	if err != nil {
		p.Kill()
		return nil, err
	}
	return p, nil
}
