package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/statekeeper/statekeeper/internal/config"
	"github.com/statekeeper/statekeeper/internal/lookup"
)

func TestHTTP2IsOffUnlessEnabled(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		cfg := config.Default()
		cfg.EnableHTTP2 = enabled
		opts := managerOptions(cfg, nil, nil)

		server, ok := opts.WebhookServer.(*webhook.DefaultServer)
		require.True(t, ok)
		tlsConfig := &tls.Config{NextProtos: []string{"h2"}} // what the webhook server starts from
		for _, opt := range server.Options.TLSOpts {
			opt(tlsConfig)
		}
		want := []string{"http/1.1"}
		if enabled {
			want = []string{"h2"}
		}
		assert.Equal(t, want, tlsConfig.NextProtos, "enable-http2=%v", enabled)
	}
}

func TestManagerOptions(t *testing.T) {
	cfg := config.Default()
	cfg.WebhookHost, cfg.WebhookPort, cfg.CertDir = "127.0.0.1", 10443, "/certs"
	cfg.LeaderElect, cfg.Namespace = true, "statekeeper-system"
	opts := managerOptions(cfg, nil, nil)

	server := opts.WebhookServer.(*webhook.DefaultServer)
	assert.Equal(t, "127.0.0.1", server.Options.Host)
	assert.Equal(t, 10443, server.Options.Port)
	assert.Equal(t, "/certs", server.Options.CertDir)
	assert.Equal(t, ":8080", opts.Metrics.BindAddress)
	assert.Equal(t, ":8081", opts.HealthProbeBindAddress)
	assert.False(t, opts.LeaderElection, "the manager runs on every replica; the leader's work campaigns on its own")
	assert.Equal(t, "statekeeper-system", leaseNamespace(cfg), "the Lease defaults to statekeeper's own namespace")

	cfg.LeaderElectionNamespace = "leases"
	assert.Equal(t, "leases", leaseNamespace(cfg))
}

func TestCheckCertificates(t *testing.T) {
	dir := t.TempDir()
	require.EqualError(t, CheckCertificates(dir),
		"--cert-dir: "+filepath.Join(dir, "tls.crt")+" is missing\n--cert-dir: "+filepath.Join(dir, "tls.key")+" is missing")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "tls.crt"), []byte("cert"), 0o600))
	require.EqualError(t, CheckCertificates(dir), "--cert-dir: "+filepath.Join(dir, "tls.key")+" is missing")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "tls.key"), []byte("key"), 0o600))
	require.NoError(t, CheckCertificates(dir))
}

// TestNewRegistersTheWebhookPaths builds the whole wiring and checks that
// each of the chart's paths serves its own handler: a request in an excluded
// namespace (decided without the cache, which is not started here) is
// admitted by the path that serves its resource and refused by the others;
// that each path closes its connections once the shutdown drain begins; and
// the replica's metrics before it starts. (New registers on the process's
// registry, so it is built once here.)
func TestNewRegistersTheWebhookPaths(t *testing.T) {
	cfg := config.Default()
	cfg.MetricsBindAddress, cfg.HealthProbeBindAddress = "0", "0"
	cfg.CertDir = t.TempDir()
	notAfter := writeServingCertificate(t, cfg.CertDir)
	// A fixed REST mapper stands in for the API server's discovery.
	mapper := meta.NewDefaultRESTMapper(nil)
	for _, gvk := range []schema.GroupVersionKind{
		appsv1.SchemeGroupVersion.WithKind("Deployment"), appsv1.SchemeGroupVersion.WithKind("StatefulSet"),
		corev1.SchemeGroupVersion.WithKind("Pod"), corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim"),
		corev1.SchemeGroupVersion.WithKind("Service"), policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget"),
		autoscalingv2.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler"),
	} {
		mapper.Add(gvk, meta.RESTScopeNamespace)
	}
	mapper.Add(corev1.SchemeGroupVersion.WithKind("Namespace"), meta.RESTScopeRoot)
	mapper.Add(storagev1.SchemeGroupVersion.WithKind("StorageClass"), meta.RESTScopeRoot)

	mgr, err := build(cfg, &rest.Config{Host: "https://127.0.0.1:1"}, func(o *manager.Options) {
		o.MapperProvider = func(*rest.Config, *http.Client) (meta.RESTMapper, error) { return mapper, nil }
	})
	require.NoError(t, err)
	mux := mgr.GetWebhookServer().WebhookMux()

	// The fields of an AdmissionRequest in kube-system, by the resource it is about.
	requests := map[string]string{
		"deployments": `"kind":{"group":"apps","version":"v1","kind":"Deployment"},` +
			`"resource":{"group":"apps","version":"v1","resource":"deployments"},"operation":"CREATE",` +
			`"object":{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x","namespace":"kube-system"}}`,
		"deployments/scale": `"kind":{"group":"autoscaling","version":"v1","kind":"Scale"},` +
			`"resource":{"group":"apps","version":"v1","resource":"deployments"},"subResource":"scale","operation":"UPDATE",` +
			`"object":{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"x","namespace":"kube-system"}}`,
		"pods": `"kind":{"group":"","version":"v1","kind":"Pod"},` +
			`"resource":{"group":"","version":"v1","resource":"pods"},"operation":"CREATE",` +
			`"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x","namespace":"kube-system"}}`,
	}
	admitted := &admissionv1.AdmissionResponse{UID: "u", Allowed: true, Result: &metav1.Status{Code: http.StatusOK}}
	refused := func(what string) *admissionv1.AdmissionResponse {
		return &admissionv1.AdmissionResponse{UID: "u", Result: &metav1.Status{
			Code: http.StatusBadRequest, Message: "statekeeper does not handle " + what + " on this path",
		}}
	}
	want := map[string]map[string]*admissionv1.AdmissionResponse{ // path → request → answer
		"/mutate": {
			"deployments": admitted, "deployments/scale": refused("deployments.apps/scale"), "pods": refused("pods"),
		},
		"/validate": {
			"deployments": admitted, "deployments/scale": admitted, "pods": refused("pods"),
		},
		"/mutate-pods": {
			"deployments": refused("deployments.apps"), "deployments/scale": refused("deployments.apps/scale"), "pods": admitted,
		},
	}
	for path, answers := range want {
		for what, request := range requests {
			body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u",` +
				`"name":"x","namespace":"kube-system",` + request + `}}`
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			mux.ServeHTTP(rec, req)
			require.Equal(t, http.StatusOK, rec.Code, "%s %s", path, what)
			var review admissionv1.AdmissionReview
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &review), "%s %s", path, what)
			assert.Equal(t, answers[what], review.Response, "%s %s", path, what)
		}
	}

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/nothing", strings.NewReader("")))
	assert.Equal(t, http.StatusNotFound, rec.Code)

	// Once the shutdown drain begins, every path's answer closes its
	// connection (shutdown.go).
	for path := range want {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader("")))
		assert.Empty(t, rec.Header().Get("Connection"), path)
	}
	mgr.drain.begin()
	for path := range want {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader("")))
		assert.Equal(t, "close", rec.Header().Get("Connection"), path)
	}

	// Not started: not ready, not leading; the certificate is read already.
	assert.Equal(t, map[string]float64{
		ReadyMetric:               0,
		LeadingMetric:             0,
		CertificateNotAfterMetric: float64(notAfter.Unix()),
	}, gauges(t, ReadyMetric, LeadingMetric, CertificateNotAfterMetric))
}

// gauges reads the named unlabelled gauges of the process's registry.
func gauges(t *testing.T, names ...string) map[string]float64 {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, f := range families {
		if slices.Contains(names, f.GetName()) {
			out[f.GetName()] = f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return out
}

// writeServingCertificate writes a self-signed serving certificate and its
// key into dir as the chart's Secret names them, and returns its expiry.
func writeServingCertificate(t *testing.T, dir string) time.Time {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	notAfter := time.Now().Add(90 * 24 * time.Hour).Truncate(time.Second)
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "statekeeper"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, CertName), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, KeyName), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return notAfter
}

// TestCacheOptions: pods are cached as metadata, and nothing is cached
// through a label selector: the lookups must see every Service, managed or
// not, and the reconciler reads the same cache. Services and namespaces
// have no entry of their own: the cache's defaults (no selector) apply.
func TestCacheOptions(t *testing.T) {
	byKind := map[string]string{}
	for obj, by := range lookup.CacheOptions().ByObject {
		selector := "<all>"
		if by.Label != nil {
			selector = by.Label.String()
		}
		byKind[fmt.Sprintf("%T", obj)] = selector
	}
	assert.Equal(t, map[string]string{
		"*v1.Deployment":            "<all>",
		"*v1.StatefulSet":           "<all>",
		"*v1.PartialObjectMetadata": "<all>",
	}, byKind)
	assert.Nil(t, lookup.CacheOptions().DefaultLabelSelector, "no selector for the kinds without an entry")
}
