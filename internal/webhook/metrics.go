package webhook

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of an admission decision, the values of the outcome label.
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

// Metrics counts admission decisions.
type Metrics struct {
	decisions *prometheus.CounterVec
}

// NewMetrics registers statekeeper's decision counter on reg (the server
// passes controller-runtime's metrics.Registry, so it is served beside the
// webhook latency histograms).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "statekeeper_admission_decisions_total",
		Help: "Admission decisions by rule, resource and outcome. A request counts once per rule that denied or warned, " +
			"once as mutated when it was patched, and once with rule=none otherwise.",
	}, []string{"rule", "resource", "outcome"})
	if err := reg.Register(decisions); err != nil {
		return nil, fmt.Errorf("registering the decisions counter: %w", err)
	}
	return &Metrics{decisions: decisions}, nil
}

func (m *Metrics) count(rule, resource, outcome string) {
	if m == nil {
		return
	}
	if rule == "" {
		rule = noRule
	}
	m.decisions.WithLabelValues(rule, resource, outcome).Inc()
}
