package webhook

import (
	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/statekeeper/statekeeper/internal/review"
)

// Webhook paths; the chart's webhook configurations point at them (docs/architecture.md).
const (
	PathMutate = "/mutate"
	// PathMutatePods is where pod identity stamping (SPEC §5) is served.
	PathMutatePods = "/mutate-pods"
	PathValidate   = "/validate"
)

// Register serves the workload paths on server: /mutate and /validate.
// Pod identity stamping registers PathMutatePods beside them.
func Register(server webhook.Server, engine *review.Engine, log logr.Logger, metrics *Metrics) {
	server.Register(PathMutate, &admission.Webhook{Handler: NewMutator(engine, log, metrics)})
	server.Register(PathValidate, &admission.Webhook{Handler: NewValidator(engine, log, metrics)})
}
