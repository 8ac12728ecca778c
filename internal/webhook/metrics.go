package webhook

import (
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of an admission decision, the values of the outcome label (and
// of the decision log line's outcome key).
const (
	OutcomeAllowed = "allowed"
	OutcomeDenied  = "denied"
	OutcomeWarned  = "warned"
	OutcomeMutated = "mutated"
	OutcomeSkipped = "skipped"
	OutcomeError   = "error"
)

// noRule is the rule label of a decision that no rule made.
const noRule = "none"

// Metric names, documented in docs/monitoring.md; the chart's alerts and
// dashboard read them.
const (
	DecisionsMetric = "statekeeper_admission_decisions_total"
	DurationMetric  = "statekeeper_admission_duration_seconds"
)

// DurationBuckets are the admission duration histogram's upper bounds, in
// seconds. The scale that matters is the API server's timeout for the
// webhook (timeoutSeconds, 1 to 30): a p99 near it is a refused write in
// waiting. controller-runtime's controller_runtime_webhook_latency_seconds
// has a bucket per power of ten (1 s, then 10 s), too coarse to tell 4 s
// from 9 s.
var DurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 2, 3, 4, 5, 7.5, 10, 15, 20, 25, 30}

// Metrics counts and times admission requests.
type Metrics struct {
	decisions *prometheus.CounterVec
	duration  *prometheus.HistogramVec
}

// NewMetrics registers statekeeper's admission metrics on reg (the server
// passes controller-runtime's metrics.Registry, so they are served beside
// controller-runtime's webhook metrics).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: DecisionsMetric,
			Help: "Admission decisions by webhook path, operation, resource, outcome and rule. A request counts once " +
				"per rule that denied or warned, once as mutated when it was patched, and once with rule=none otherwise.",
		}, []string{"webhook", "operation", "resource", "outcome", "rule"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: DurationMetric,
			Help: "Time from an admission request's headers read to its answer written, by webhook path; " +
				"the buckets reach the API server's longest webhook timeout (30 s).",
			Buckets: DurationBuckets,
		}, []string{"webhook"}),
	}
	for _, c := range []prometheus.Collector{m.decisions, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering the admission metrics: %w", err)
		}
	}
	return m, nil
}

func (m *Metrics) count(webhook, operation, resource, outcome, rule string) {
	if m == nil {
		return
	}
	if rule == "" {
		rule = noRule
	}
	m.decisions.WithLabelValues(webhook, operation, resource, outcome, rule).Inc()
}

// instrument times every request of h: the request body is read inside,
// so a slow client or network counts, as it does against the API server's
// timeout.
func (m *Metrics) instrument(path string, h http.Handler) http.Handler {
	if m == nil {
		return h
	}
	observer := m.duration.WithLabelValues(path)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.ServeHTTP(w, r)
		observer.Observe(time.Since(start).Seconds())
	})
}
