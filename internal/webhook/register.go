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
	// PathMutatePods is where pod identity stamping (docs/spec.md §5) is served.
	PathMutatePods = "/mutate-pods"
	PathValidate   = "/validate"
	// PathValidateUnlabelled is where the kind-switch rule judges unlabelled
	// workload CREATEs (a webhook of its own that fails open).
	PathValidateUnlabelled = "/validate-unlabelled"
	// PathMutateClaims is where a StatefulSet's new claims get the size
	// recorded for their template (docs/spec.md §10).
	PathMutateClaims = "/mutate-claims"
)

// Register serves statekeeper's paths on server: /mutate and /validate for
// workloads, /mutate-pods for pod identity stamping, /validate-unlabelled
// for the kind-switch rule on unlabelled workloads, /mutate-claims for the
// size of a StatefulSet's new claims, each as Webhook serves it and timed by
// metrics (statekeeper_admission_duration_seconds); the server wraps them in
// controller-runtime's webhook metrics as well.
func Register(server webhook.Server, engine *review.Engine, log logr.Logger, metrics *Metrics) {
	for _, h := range []*Handler{
		NewMutator(engine, log, metrics),
		NewPodMutator(engine, log, metrics),
		NewValidator(engine, log, metrics),
		NewUnlabelledValidator(engine, log, metrics),
		NewClaimMutator(engine, log, metrics),
	} {
		server.Register(h.name, metrics.instrument(h.name, Webhook(h)))
	}
}

// Webhook serves h the stock way: controller-runtime's admission.Webhook
// reads the AdmissionReview (v1 or v1beta1, at most 7 MiB), recovers a
// panic as a 500 for that one request, and writes the answer. Its request
// logger is h's own, so that a decision is one log line with the keys
// Handle chooses rather than the request's keys twice.
func Webhook(h *Handler) *admission.Webhook {
	return &admission.Webhook{
		Handler:        h,
		LogConstructor: func(logr.Logger, *admission.Request) logr.Logger { return h.log },
	}
}
