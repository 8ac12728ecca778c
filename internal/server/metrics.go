package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

// The replica's state as metrics, one series per replica (docs/monitoring.md).
const (
	// LeadingMetric is 1 while the replica runs the leader's work.
	LeadingMetric = "statekeeper_leading"
	// ReadyMetric is 1 while the replica's readiness checks pass.
	ReadyMetric = "statekeeper_ready"
	// CertificateNotAfterMetric is when the served certificate expires.
	CertificateNotAfterMetric = "statekeeper_serving_certificate_not_after_timestamp_seconds"
	// AdmissionPoliciesMetric is 1 once this replica saw the chart's
	// ValidatingAdmissionPolicy act, 0 while it has not (or saw it not act).
	AdmissionPoliciesMetric = "statekeeper_admission_policies_active"
)

func registerLeading(reg prometheus.Registerer) (prometheus.Gauge, error) {
	leading := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: LeadingMetric,
		Help: "1 while this replica runs the reconcilers and the audit (it holds the Lease), else 0.",
	})
	if err := reg.Register(leading); err != nil {
		return nil, fmt.Errorf("registering %s: %w", LeadingMetric, err)
	}
	return leading, nil
}

func registerPoliciesActive(reg prometheus.Registerer) (prometheus.Gauge, error) {
	active := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: AdmissionPoliciesMetric,
		Help: "1 when a dry run the chart's ValidatingAdmissionPolicy must deny was denied by it at start (the rules that need no lookup hold without the webhook), else 0.",
	})
	if err := reg.Register(active); err != nil {
		return nil, fmt.Errorf("registering %s: %w", AdmissionPoliciesMetric, err)
	}
	return active, nil
}

// readinessCheck is one of /readyz's checks.
type readinessCheck struct {
	name  string
	check healthz.Checker
}

// readyCheckTimeout bounds the checks a scrape runs (the cache check waits
// up to a second of it).
const readyCheckTimeout = 2 * time.Second

// registerReady serves the readiness checks' verdict as a gauge, evaluated
// at each scrape: Prometheus then sees what the kubelet's probe sees,
// without kube-state-metrics.
func registerReady(reg prometheus.Registerer, checks []readinessCheck) error {
	ready := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: ReadyMetric,
		Help: "1 while this replica's readiness checks pass (webhook server started, caches synced, not shutting down), else 0; " +
			"evaluated at each scrape.",
	}, func() float64 {
		if passes(checks) {
			return 1
		}
		return 0
	})
	if err := reg.Register(ready); err != nil {
		return fmt.Errorf("registering %s: %w", ReadyMetric, err)
	}
	return nil
}

func passes(checks []readinessCheck) bool {
	ctx, cancel := context.WithTimeout(context.Background(), readyCheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "/readyz", http.NoBody)
	if err != nil {
		return false
	}
	for _, c := range checks {
		if c.check(req) != nil {
			return false
		}
	}
	return true
}

// watchServingCertificate keeps a gauge at the expiry of the certificate
// the webhook server serves, updated whenever certs reads a new one.
func watchServingCertificate(reg prometheus.Registerer, certs *certwatcher.CertWatcher) error {
	notAfter := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: CertificateNotAfterMetric,
		Help: "Expiry (notAfter) of the webhook server's serving certificate, in seconds since the Unix epoch.",
	})
	if err := reg.Register(notAfter); err != nil {
		return fmt.Errorf("registering %s: %w", CertificateNotAfterMetric, err)
	}
	// Called at once with the certificate read so far, then with each
	// rotated one.
	certs.RegisterCallback(func(c tls.Certificate) {
		if t, err := expiry(c); err == nil {
			notAfter.Set(float64(t.Unix()))
		}
	})
	return nil
}

// expiry is the notAfter of c's leaf certificate.
func expiry(c tls.Certificate) (time.Time, error) {
	if c.Leaf != nil {
		return c.Leaf.NotAfter, nil
	}
	if len(c.Certificate) == 0 {
		return time.Time{}, errors.New("no certificate")
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return time.Time{}, err
	}
	return leaf.NotAfter, nil
}
