package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	admissionv1 "k8s.io/api/admission/v1"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	skserver "github.com/statekeeper/statekeeper/internal/server"
	skwebhook "github.com/statekeeper/statekeeper/internal/webhook"
	"github.com/statekeeper/statekeeper/test/podproc"
)

// The baselines run as child processes of this tool (the same binary with
// the serveBaseline subcommand), so that their CPU is their own and none
// shares a Go runtime with the load.
const serveBaseline = "serve-baseline"

// Baseline modes.
const (
	// modeNoop allows everything.
	modeNoop = "noop"
	// modeSamePatch first forwards every review to statekeeper and records
	// its patch (the priming round), then, after POST /replay on its metrics
	// address, answers each request with the patch statekeeper gave the
	// same request: what the API server's applying the patch costs, without
	// statekeeper's work.
	modeSamePatch = "same-patch"
)

// paths are statekeeper's webhook paths; every server serves all of them.
var paths = []string{skwebhook.PathMutate, skwebhook.PathMutatePods, skwebhook.PathValidate, skwebhook.PathValidateUnlabelled}

// http11Only is what statekeeper's webhook server offers (HTTP/2 off by
// default); the baselines offer the same.
func http11Only(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }

// runBaseline serves controller-runtime's admission.Webhook on its webhook
// server, as statekeeper does, with its request metrics on metricsAddr.
// upstream is statekeeper's webhook base URL (same-patch mode).
func runBaseline(mode string, port int, metricsAddr, certDir, upstream string) error {
	ctrllog.SetLogger(logr.Discard())
	srv := webhook.NewServer(webhook.Options{
		Host: "127.0.0.1", Port: port, CertDir: certDir,
		CertName: skserver.CertName, KeyName: skserver.KeyName,
		TLSOpts: []func(*tls.Config){http11Only},
	})
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}))
	switch mode {
	case modeNoop:
		for _, p := range paths {
			srv.Register(p, &admission.Webhook{Handler: admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
				return admission.Allowed("")
			})})
		}
	case modeSamePatch:
		rp, err := newReplayer(certDir, upstream)
		if err != nil {
			return err
		}
		for _, p := range paths {
			srv.Register(p, &admission.Webhook{Handler: rp.handler(p)})
		}
		mux.HandleFunc("/replay", func(w http.ResponseWriter, _ *http.Request) {
			rp.replaying.Store(true)
			fmt.Fprintf(w, "%d patches recorded\n", rp.count())
		})
	default:
		return fmt.Errorf("unknown baseline mode %q", mode)
	}
	metricsServer := &http.Server{Addr: metricsAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = metricsServer.ListenAndServe() }()
	return srv.Start(context.Background())
}

// replayer records statekeeper's answers, then replays their patches.
type replayer struct {
	client    *http.Client
	upstream  string
	replaying atomic.Bool
	mu        sync.Mutex
	patches   map[string][]byte
}

func newReplayer(certDir, upstream string) (*replayer, error) {
	caPEM, err := os.ReadFile(filepath.Join(certDir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificate in %s/ca.crt", certDir)
	}
	return &replayer{
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, MaxIdleConnsPerHost: 64,
		}},
		upstream: upstream,
		patches:  map[string][]byte{},
	}, nil
}

// requestKey names a request as the rounds repeat it: the objects' names
// and the order of the writes are the same in every round, their namespace
// and UIDs are not.
func requestKey(path string, r admissionv1.AdmissionRequest) string {
	return fmt.Sprintf("%s %s/%s %s %s", path, r.Resource.Resource, r.SubResource, r.Operation, r.Name)
}

func (rp *replayer) count() int {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return len(rp.patches)
}

func (rp *replayer) handler(path string) admission.HandlerFunc {
	return func(ctx context.Context, req admission.Request) admission.Response {
		key := requestKey(path, req.AdmissionRequest)
		if rp.replaying.Load() {
			rp.mu.Lock()
			patch := rp.patches[key]
			rp.mu.Unlock()
			resp := admission.Allowed("")
			if patch != nil {
				pt := admissionv1.PatchTypeJSONPatch
				resp.Patch, resp.PatchType = patch, &pt
			}
			return resp
		}
		resp, err := rp.forward(ctx, path, req)
		if err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
		if len(resp.Patch) > 0 {
			rp.mu.Lock()
			rp.patches[key] = resp.Patch
			rp.mu.Unlock()
		}
		return admission.Response{AdmissionResponse: *resp}
	}
}

// forward asks statekeeper and returns its answer.
func (rp *replayer) forward(ctx context.Context, path string, req admission.Request) (*admissionv1.AdmissionResponse, error) {
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metaReview, Request: &req.AdmissionRequest,
	})
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, rp.upstream+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := rp.client.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(out, &review); err != nil || review.Response == nil {
		return nil, fmt.Errorf("statekeeper answered %s: %s", resp.Status, out)
	}
	return review.Response, nil
}

// startBaseline runs this binary as a baseline server and waits until it
// answers on its metrics address.
func startBaseline(ctx context.Context, o options, mode string, port, metricsPort int, upstream string) (*server, *podproc.Process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	logFile := filepath.Join(o.logDir, "throughapi-"+mode+".log")
	if err := podproc.FreshLog(logFile); err != nil {
		return nil, nil, err
	}
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", metricsPort)
	p, err := podproc.Start(podproc.Command{
		Name: mode, Binary: self, Log: logFile, EndWithParent: syscall.SIGKILL,
		Args: []string{serveBaseline, mode, strconv.Itoa(port), metricsAddr, o.certDir, upstream},
	})
	if err != nil {
		return nil, nil, err
	}
	s := &server{name: mode, base: fmt.Sprintf("https://127.0.0.1:%d", port), metricsURL: "http://" + metricsAddr + "/metrics", pid: p.Pid()}
	err = p.Poll(ctx, mode+" to listen", 100*time.Millisecond, 30*time.Second, func(ctx context.Context) (bool, error) {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return false, nil
		}
		_ = conn.Close()
		_, err = s.admissions(ctx)
		return err == nil, nil
	})
	if err != nil {
		p.Kill()
		return nil, nil, err
	}
	return s, p, nil
}

// replay turns the same-patch server from recording to replaying and says
// how many patches it holds.
func replay(ctx context.Context, s *server) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(s.metricsURL, "/metrics")+"/replay", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(out)), err
}
