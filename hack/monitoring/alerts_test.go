package monitoring

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/util/teststorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/statekeeper/statekeeper/internal/config"
	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/internal/server"
	"github.com/statekeeper/statekeeper/test/workloads"
)

const (
	// scrapeInterval is the time between two scrapes on the test's clock.
	scrapeInterval = 30 * time.Second
	// appNamespace holds the workloads the test judges.
	appNamespace = "shop"
	// instance is the target's instance label, the same on every run.
	instance = "sk-statekeeper-0"
	// slowBody is how long a slow request's body takes to arrive: under
	// the timeout the chart is rendered with, over 80 % of it.
	slowBody = 900 * time.Millisecond
)

// TestAlertsFire runs a real statekeeper (the server `statekeeper serve`
// runs, against envtest's kube-apiserver), scrapes its /metrics into
// Prometheus's storage every 30 s of a clock of the test's own, and drives
// it through phases that make each alert's condition true, evaluating the
// chart's rules with Prometheus's rule engine after each scrape. Each alert
// must fire when its `for` says, and not otherwise:
//
//  1. another identity holds the Lease: no leader;
//  2. statekeeper leads: its audit finds a stored Deployment that breaks
//     single-instance; a denied request every other minute for an hour;
//     the serving certificate, two days from expiry, stays inside the
//     renewal margin (360h) all along;
//  3. twenty denied requests per scrape: denials rising;
//  4. a quiet spell, then requests whose body takes 0.9 s against the 1 s
//     timeout: latency near the timeout;
//  5. the process stopped: its scrapes fail, no ready replica.
func TestAlertsFire(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is unset: envtest's kube-apiserver and etcd are needed (make test sets it)")
	}
	groups := parseRules(t, renderChart(t).rules)
	ctrllog.SetLogger(logr.Discard())
	klog.SetLogger(logr.Discard())
	ctx := t.Context()

	env := &envtest.Environment{}
	restConfig, err := env.Start()
	require.NoError(t, err)
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(restConfig, client.Options{})
	require.NoError(t, err)
	for _, ns := range []string{namespace, appNamespace} {
		require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	}
	// Stored before statekeeper runs (no webhook is registered here): the
	// audit finds it.
	require.NoError(t, c.Create(ctx, namespaced(workloads.Deployment("stored", policy.StatelessSingle, 3))))
	// Another identity holds the Lease, renewed a moment ago for an hour.
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: server.LeaderElectionID},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity: ptr.To("another-replica"), LeaseDurationSeconds: ptr.To[int32](3600),
			AcquireTime: &metav1.MicroTime{Time: time.Now()}, RenewTime: &metav1.MicroTime{Time: time.Now()},
		},
	}
	require.NoError(t, c.Create(ctx, lease))

	sk := startStatekeeper(t, restConfig, time.Now().Add(48*time.Hour))
	db := teststorage.New(t)
	scrapes := newScraper(sk.metricsURL, db, map[string]string{"job": job, "namespace": namespace, "instance": instance})
	ev := newEvaluator(t, groups, db)

	start := time.Now().Truncate(time.Minute)
	clock := start
	var exposed map[string]bool
	// step scrapes and evaluates at the clock's time, then moves it on.
	step := func(n int, before func()) {
		t.Helper()
		for range n {
			if before != nil {
				before()
			}
			names, err := scrapes.scrape(ctx, clock)
			require.NoError(t, err)
			if names != nil {
				exposed = names
			}
			ev.eval(ctx, clock)
			clock = clock.Add(scrapeInterval)
		}
	}
	since := func(at time.Time) time.Duration { return at.Sub(start) }

	waitForMetric(t, sk.metricsURL, `statekeeper_ready 1`)
	noLeader := clock
	step(12, nil)

	leading := clock
	require.NoError(t, c.Delete(ctx, lease))
	waitForMetric(t, sk.metricsURL, `statekeeper_leading 1`)
	waitForMetric(t, sk.metricsURL, `statekeeper_audit_violations{resource_namespace="shop",result="fail",rule="single-instance"} 1`)
	// Denials at half the alert's floor of one a minute.
	baseline := 0
	step(120, func() {
		if baseline%4 == 0 {
			sk.admit(t, deniedCreate, 0)
		}
		baseline++
	})

	burst := clock
	step(20, func() {
		for range 20 {
			sk.admit(t, deniedCreate, 0)
		}
	})

	step(12, nil) // the burst leaves the latency window
	slow := clock
	step(24, func() {
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() { sk.admit(t, allowedCreate, slowBody) })
		}
		wg.Wait()
	})
	// Every metric the alerts and the dashboard read is exposed.
	for _, name := range usedMetrics(t, renderChart(t)) {
		assert.True(t, name == "up" || exposed[name], "%s is not exposed by statekeeper", name)
	}

	stopped := clock
	sk.stop(t)
	step(6, nil)

	assert.Equal(t, map[string]time.Duration{
		`StatekeeperNoLeader{severity="warning"}`:                                                                                                    since(noLeader) + 5*time.Minute,
		`StatekeeperAuditFindingsFail{resource_namespace="shop", rule="single-instance", severity="warning"}`:                                        since(leading) + 15*time.Minute,
		`StatekeeperServingCertificateNotRenewed{instance="` + instance + `", job="` + job + `", namespace="` + namespace + `", severity="warning"}`: time.Hour,
		`StatekeeperDenialsRising{rule="single-instance", severity="warning"}`:                                                                       since(burst) + 5*time.Minute,
		`StatekeeperAdmissionLatencyNearTimeout{severity="warning", webhook="/validate"}`:                                                            since(slow) + 5*time.Minute,
		`StatekeeperNoReadyReplica{job="` + job + `", namespace="` + namespace + `", severity="critical"}`:                                           since(stopped) + time.Minute,
	}, ev.firstFired(start))
	t.Logf("firing after the process stopped:\n%s", ev.describe("StatekeeperNoReadyReplica"))
}

// namespaced puts a workload in the test's application namespace.
func namespaced(d *appsv1.Deployment) *appsv1.Deployment {
	d.Namespace = appNamespace
	return d
}

// Requests the test sends to /validate: a Deployment CREATE that breaks
// single-instance, and one that breaks nothing.
var (
	deniedCreate  = namespaced(workloads.Deployment("web", policy.StatelessSingle, 3))
	allowedCreate = namespaced(workloads.Deployment("api", policy.StatelessMulti, 3))
)

// evaluator evaluates the chart's alerting rules as Prometheus's rule
// manager does, one evaluation per scrape, and records when each alert
// first fired.
type evaluator struct {
	t      *testing.T
	rules  []*rules.AlertingRule
	query  rules.QueryFunc
	fired  map[string]time.Time
	alerts map[string]*rules.Alert
}

func newEvaluator(t *testing.T, groups *rulefmt.RuleGroups, db *teststorage.TestStorage) *evaluator {
	engine := promql.NewEngine(promql.EngineOpts{
		MaxSamples: 10_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute, Parser: promqlParser,
	})
	t.Cleanup(func() { _ = engine.Close() })
	return &evaluator{
		t: t, rules: alertingRules(t, groups), query: rules.EngineQueryFunc(engine, db),
		fired: map[string]time.Time{}, alerts: map[string]*rules.Alert{},
	}
}

func (e *evaluator) eval(ctx context.Context, ts time.Time) {
	e.t.Helper()
	for _, r := range e.rules {
		_, err := r.Eval(ctx, 0, ts, e.query, nil, 0)
		require.NoError(e.t, err, r.Name())
		for _, a := range r.ActiveAlerts() {
			if a.State != rules.StateFiring {
				continue
			}
			key := alertKey(a.Labels)
			if _, seen := e.fired[key]; !seen {
				e.fired[key] = ts
				e.alerts[key] = a
			}
		}
	}
}

// alertKey is an alert's name and its other labels: `Name{label="value", …}`.
func alertKey(l labels.Labels) string {
	return l.Get(labels.AlertName) + labels.NewBuilder(l).Del(labels.AlertName).Labels().String()
}

func (e *evaluator) firstFired(start time.Time) map[string]time.Duration {
	out := map[string]time.Duration{}
	for k, at := range e.fired {
		out[k] = at.Sub(start)
	}
	return out
}

// describe prints the first firing of the named alert as Alertmanager
// would receive it: labels and annotations.
func (e *evaluator) describe(name string) string {
	var keys []string
	for k := range e.alerts {
		if strings.HasPrefix(k, name+"{") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		a := e.alerts[k]
		fmt.Fprintf(&b, "%s\n  state: %s, active since %s, value %g\n", k, a.State, a.ActiveAt.UTC().Format(time.RFC3339), a.Value)
		a.Annotations.Range(func(l labels.Label) { fmt.Fprintf(&b, "  %s: %s\n", l.Name, l.Value) })
	}
	return b.String()
}

// alertingRules builds the groups' rules as Prometheus's rule manager
// loads them.
func alertingRules(t *testing.T, groups *rulefmt.RuleGroups) []*rules.AlertingRule {
	var out []*rules.AlertingRule
	for _, group := range groups.Groups {
		for _, r := range group.Rules {
			expr, err := promqlParser.ParseExpr(r.Expr)
			require.NoError(t, err, r.Alert)
			out = append(out, rules.NewAlertingRule(r.Alert, expr, time.Duration(r.For), time.Duration(r.KeepFiringFor),
				labels.FromMap(r.Labels), labels.FromMap(r.Annotations), labels.EmptyLabels(), "", false,
				slog.New(slog.DiscardHandler)))
		}
	}
	return out
}

// statekeeper is the server under test, in this process.
type statekeeper struct {
	metricsURL string
	webhookURL string
	client     *http.Client
	cancel     context.CancelFunc
	stopped    chan error
}

// startStatekeeper runs the server with a serving certificate that expires
// at notAfter, leader-elected in namespace as the chart runs it, and
// returns once it serves.
func startStatekeeper(t *testing.T, restConfig *rest.Config, notAfter time.Time) *statekeeper {
	t.Helper()
	certDir := t.TempDir()
	roots := servingCertificate(t, certDir, notAfter)
	host, webhookPort := freeAddress(t)
	_, metricsPort := freeAddress(t)
	cfg := config.Default()
	cfg.WebhookHost, cfg.WebhookPort, cfg.CertDir = host, webhookPort, certDir
	cfg.MetricsBindAddress = fmt.Sprintf("%s:%d", host, metricsPort)
	cfg.HealthProbeBindAddress = "0"
	cfg.LeaderElect, cfg.Namespace = true, namespace
	// No PolicyReport CRD here: the audit's findings are its metrics.
	cfg.AuditReports = false
	cfg.LogLevel = "error"
	srv, err := server.New(cfg, restConfig)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	s := &statekeeper{
		metricsURL: fmt.Sprintf("http://%s:%d/metrics", host, metricsPort),
		webhookURL: fmt.Sprintf("https://%s:%d", host, webhookPort),
		client: &http.Client{Timeout: time.Minute, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		}},
		cancel:  cancel,
		stopped: make(chan error, 1),
	}
	go func() { s.stopped <- srv.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-s.stopped
	})
	return s
}

// waitForMetric polls /metrics until a line of it is want.
func waitForMetric(t *testing.T, url, want string) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		resp, err := http.Get(url)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return false, nil
		}
		last = string(body)
		return slices.Contains(strings.Split(last, "\n"), want), nil
	})
	require.NoError(t, err, "waiting for %q on %s; last:\n%s", want, url, last)
}

// admit sends an AdmissionReview of a CREATE of d to /validate, its body
// held back for delay, and requires an answer.
func (s *statekeeper) admit(t *testing.T, d *appsv1.Deployment, delay time.Duration) {
	obj := d.DeepCopy()
	obj.APIVersion, obj.Kind = "apps/v1", "Deployment"
	raw, err := json.Marshal(obj)
	require.NoError(t, err)
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID("u"),
			Kind:      metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
			Resource:  metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
			Name:      obj.Name,
			Namespace: obj.Namespace,
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: raw},
		},
	})
	require.NoError(t, err)
	var reader io.Reader = bytes.NewReader(body)
	if delay > 0 {
		reader = &delayedReader{r: reader, delay: delay}
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.webhookURL+"/validate", reader)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var review admissionv1.AdmissionReview
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&review))
	require.NotNil(t, review.Response)
}

// delayedReader holds its first byte back for delay: a slow client or
// network, as the API server's call would see it.
type delayedReader struct {
	r       io.Reader
	delay   time.Duration
	started bool
}

func (d *delayedReader) Read(p []byte) (int, error) {
	if !d.started {
		d.started = true
		time.Sleep(d.delay)
	}
	return d.r.Read(p)
}

func (s *statekeeper) stop(t *testing.T) {
	s.cancel()
	require.NoError(t, <-s.stopped)
	s.stopped <- nil // for the cleanup
}

func freeAddress(t *testing.T) (string, int) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return "127.0.0.1", l.Addr().(*net.TCPAddr).Port
}

// servingCertificate writes a self-signed certificate for 127.0.0.1 and its
// key into dir, and returns the pool that trusts it.
func servingCertificate(t *testing.T, dir string, notAfter time.Time) *x509.CertPool {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "statekeeper"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, server.CertName), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, server.KeyName), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}
