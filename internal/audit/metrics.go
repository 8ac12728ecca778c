package audit

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names, documented in docs/monitoring.md.
const (
	ViolationsMetric = "statekeeper_audit_violations"
	DurationMetric   = "statekeeper_audit_namespace_duration_seconds"
)

// Metrics are the audit's gauges and histogram.
type Metrics struct {
	violations *prometheus.GaugeVec
	duration   prometheus.Histogram

	mu sync.Mutex
	// labels remembers the label sets set per namespace, so that a rule no
	// longer broken there drops to absent rather than lingering.
	labels map[string][]prometheus.Labels
}

// NewMetrics registers the audit's metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		violations: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: ViolationsMetric,
			Help: "Rules currently broken by stored objects, by the objects' namespace (resource_namespace), rule and result " +
				"(fail: a rule admission enforces; warn: a warning).",
			// Not "namespace": Prometheus renames a scraped label that a
			// target label (the pod's namespace) already names.
		}, []string{"resource_namespace", "rule", "result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    DurationMetric,
			Help:    "Time to audit one namespace and write its reports.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}),
		labels: map[string][]prometheus.Labels{},
	}
	for _, c := range []prometheus.Collector{m.violations, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering the audit metrics: %w", err)
		}
	}
	return m, nil
}

// set replaces the violation counts of one namespace.
func (m *Metrics) set(namespace string, counts map[[2]string]int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var now []prometheus.Labels
	for k, n := range counts {
		l := prometheus.Labels{"resource_namespace": namespace, "rule": k[0], "result": k[1]}
		m.violations.With(l).Set(float64(n))
		now = append(now, l)
	}
	for _, l := range m.labels[namespace] {
		if counts[[2]string{l["rule"], l["result"]}] == 0 {
			m.violations.Delete(l)
		}
	}
	if len(now) == 0 {
		delete(m.labels, namespace)
		return
	}
	m.labels[namespace] = now
}

// Forget drops every violation count: a replica that stops leading no
// longer audits, and its last counts would be counted beside the new
// leader's.
func (m *Metrics) Forget() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.violations.Reset()
	m.labels = map[string][]prometheus.Labels{}
}

func (m *Metrics) observe(seconds float64) {
	if m != nil {
		m.duration.Observe(seconds)
	}
}
