package webhook

import (
	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/statekeeper/statekeeper/internal/review"
)

// Webhook paths; the chart's webhook configurations point at them (docs/architecture.md).
const (
	PathMutate = "/mutate"
	// PathMutatePods is where pod identity stamping (SPEC §5) is served.
	PathMutatePods = "/mutate-pods"
	PathValidate   = "/validate"
	// PathValidateUnlabelled is where the kind-switch rule judges unlabelled
	// workload CREATEs (a webhook of its own that fails open).
	PathValidateUnlabelled = "/validate-unlabelled"
)

// Register serves statekeeper's paths on server: /mutate and /validate for
// workloads, /mutate-pods for pod identity stamping, /validate-unlabelled
// for the kind-switch rule on unlabelled workloads. The handlers read the
// AdmissionReview themselves (see Handler.ServeHTTP); the server still wraps
// them in controller-runtime's webhook latency and in-flight metrics.
func Register(server webhook.Server, engine *review.Engine, log logr.Logger, metrics *Metrics) {
	server.Register(PathMutate, NewMutator(engine, log, metrics))
	server.Register(PathMutatePods, NewPodMutator(engine, log, metrics))
	server.Register(PathValidate, NewValidator(engine, log, metrics))
	server.Register(PathValidateUnlabelled, NewUnlabelledValidator(engine, log, metrics))
}
