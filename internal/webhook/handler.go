// Package webhook holds statekeeper's admission handlers: thin adapters that
// check what a request is, hand it to the review engine, and turn the
// engine's decision into an AdmissionResponse, a log line and metrics.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/internal/review"
)

// reviewFunc is Engine.Mutate, Engine.StampPod or Engine.Validate.
type reviewFunc func(context.Context, review.Request) (review.Decision, error)

// Handler is the admission handler of one webhook path.
type Handler struct {
	// name is the webhook's path, for logs and metrics.
	name   string
	step   review.Step
	review reviewFunc
	// log is the base logger with the webhook's name, made once rather
	// than per request.
	log     logr.Logger
	metrics *Metrics
}

var _ admission.Handler = (*Handler)(nil)

func newHandler(name string, step review.Step, judge reviewFunc, log logr.Logger, metrics *Metrics) *Handler {
	return &Handler{name: name, step: step, review: judge, log: log.WithValues("webhook", name), metrics: metrics}
}

// NewMutator returns the handler of /mutate: workload mutations (docs/spec.md §2).
// log is the base logger; Handle logs through the request logger in the
// context when there is one (Webhook puts h's own there). metrics may be
// nil (nothing is counted).
func NewMutator(engine *review.Engine, log logr.Logger, metrics *Metrics) *Handler {
	return newHandler(PathMutate, review.StepMutate, engine.Mutate, log, metrics)
}

// NewPodMutator returns the handler of /mutate-pods: identity stamping of
// the pods of stateful-* StatefulSets (docs/spec.md §5).
func NewPodMutator(engine *review.Engine, log logr.Logger, metrics *Metrics) *Handler {
	return newHandler(PathMutatePods, review.StepStamp, engine.StampPod, log, metrics)
}

// NewClaimMutator returns the handler of /mutate-claims: the size recorded
// for a StatefulSet's claim template on the claims created from it
// (docs/spec.md §10).
func NewClaimMutator(engine *review.Engine, log logr.Logger, metrics *Metrics) *Handler {
	return newHandler(PathMutateClaims, review.StepClaim, engine.SizeClaim, log, metrics)
}

// NewValidator returns the handler of /validate: workload rules, /scale and
// HPAs (docs/spec.md §4).
func NewValidator(engine *review.Engine, log logr.Logger, metrics *Metrics) *Handler {
	return newHandler(PathValidate, review.StepValidate, engine.Validate, log, metrics)
}

// NewUnlabelledValidator returns the handler of /validate-unlabelled: the
// kind-switch rule on unlabelled workload CREATEs (docs/spec.md §1, §4).
func NewUnlabelledValidator(engine *review.Engine, log logr.Logger, metrics *Metrics) *Handler {
	return newHandler(PathValidateUnlabelled, review.StepUnlabelled, engine.UnlabelledCreate, log, metrics)
}

// Handle implements admission.Handler.
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	log := h.log
	if l, err := logr.FromContext(ctx); err == nil {
		log = l
	}
	op := policy.Operation(req.Operation)
	res := review.Resource{
		Group: req.Resource.Group, Version: req.Resource.Version,
		Resource: req.Resource.Resource, SubResource: req.SubResource,
	}
	row, known := review.ResourceOf(res)
	dl := decisionLog{log: log, req: &req.AdmissionRequest, resource: resourceLabel(row, known, res)}
	switch {
	case op == policy.OpCreate, op == policy.OpUpdate:
	case op == policy.OpDelete && known && row.Deletes&h.step != 0:
	default:
		// CONNECT changes nothing statekeeper guards, nor DELETE but of a
		// protected workload (deletion protection, on /validate).
		h.observe(dl, review.Decision{Skipped: true}, OutcomeSkipped)
		return admission.Allowed("")
	}
	if err := h.checkKind(req, row, known); err != nil {
		h.observeError(dl, err)
		return admission.Errored(http.StatusBadRequest, err)
	}

	d, err := h.review(ctx, review.Request{
		Operation: op,
		Resource:  res,
		Namespace: req.Namespace,
		Name:      req.Name,
		Object:    req.Object.Raw,
		OldObject: req.OldObject.Raw,
	})
	if err != nil {
		h.observeError(dl, err)
		if errors.Is(err, review.ErrInvalidRequest) {
			return admission.Errored(http.StatusBadRequest, err)
		}
		// The API server applies the webhook's failure policy.
		return admission.Errored(http.StatusInternalServerError, err)
	}
	resp, outcome := response(req, d)
	h.observe(dl, d, outcome)
	return resp
}

// checkKind refuses a request whose resource (r, when known) this path does
// not serve or whose kind is not the resource's (review.Resources).
func (h *Handler) checkKind(req admission.Request, r review.Reviewed, known bool) error {
	if !known || r.Steps&h.step == 0 {
		res := review.Resource{Group: req.Resource.Group, Resource: req.Resource.Resource, SubResource: req.SubResource}
		return fmt.Errorf("statekeeper does not handle %s on this path", res)
	}
	if got := (schema.GroupKind{Group: req.Kind.Group, Kind: req.Kind.Kind}); got != r.Kind {
		return fmt.Errorf("%s requests must carry a %s, got kind %q", r, r.Kind, got)
	}
	return nil
}

// response turns a decision into the AdmissionResponse and names its outcome.
func response(req admission.Request, d review.Decision) (admission.Response, string) {
	if d.Skipped {
		return admission.Allowed(""), OutcomeSkipped
	}
	var resp admission.Response
	var outcome string
	switch {
	case len(d.Result.Denials) > 0:
		resp, outcome = denial(req, d), OutcomeDenied
	case len(d.Patch) > 0:
		resp, outcome = admission.Patched("", d.Patch...), OutcomeMutated
	case len(d.Result.Warnings) > 0:
		resp, outcome = admission.Allowed(""), OutcomeWarned
	default:
		resp, outcome = admission.Allowed(""), OutcomeAllowed
	}
	for _, w := range d.Result.Warnings {
		resp.Warnings = append(resp.Warnings, w.String())
	}
	resp.AuditAnnotations = auditAnnotations(d.Verdict)
	return resp, outcome
}

// auditAnnotations records what the rules said, whatever the namespace mode,
// in the API server's audit log: one annotation per rule (the API server
// prefixes the key with the webhook's name), its messages joined.
func auditAnnotations(verdict policy.Result) map[string]string {
	if len(verdict.Denials)+len(verdict.Warnings) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, v := range slices.Concat(verdict.Denials, verdict.Warnings) {
		key := string(v.Rule)
		if prev, ok := out[key]; ok {
			out[key] = prev + "; " + v.String()
			continue
		}
		out[key] = v.String()
	}
	return out
}

// denial is a 422 Invalid status whose causes carry the fields, so that
// kubectl prints `<Kind>.<group> "<name>" is invalid: <field>: Forbidden: <message> [<rule>]`.
func denial(req admission.Request, d review.Decision) admission.Response {
	errs := make(field.ErrorList, 0, len(d.Result.Denials))
	for _, v := range d.Result.Denials {
		path := v.Field
		if path == nil {
			path = field.NewPath("metadata")
		}
		errs = append(errs, field.Forbidden(path, v.String()))
	}
	gk := schema.GroupKind{Group: req.Kind.Group, Kind: req.Kind.Kind}
	status := apierrors.NewInvalid(gk, d.Name, errs).ErrStatus
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &status}}
}

// decisionLog is what a decision's log line and metrics say about its
// request.
type decisionLog struct {
	log logr.Logger
	req *admissionv1.AdmissionRequest
	// resource is the metrics label (resourceLabel).
	resource string
}

// info writes the decision's one log line: the request's keys, then
// keysAndValues. One call, rather than a logger made per request with
// WithValues, which would encode the request's keys twice.
func (l decisionLog) info(log logr.Logger, keysAndValues ...any) {
	log.Info("admission decision", l.withRequest(keysAndValues)...)
}

func (l decisionLog) withRequest(keysAndValues []any) []any {
	r := l.req
	return append([]any{
		"uid", string(r.UID), "resource", r.Resource.Resource, "subresource", r.SubResource,
		"namespace", r.Namespace, "name", r.Name, "operation", string(r.Operation),
	}, keysAndValues...)
}

// observe counts a decision (once per rule that denied or warned, once as
// mutated when patched, once with rule "none" otherwise) and writes its one
// log line. Skipped decisions are logged at debug level: every pod of every
// StatefulSet reaches /mutate-pods, and most of them are not statekeeper's.
func (h *Handler) observe(l decisionLog, d review.Decision, outcome string) {
	for _, v := range d.Result.Denials {
		h.count(l, OutcomeDenied, string(v.Rule))
	}
	for _, v := range d.Result.Warnings {
		h.count(l, OutcomeWarned, string(v.Rule))
	}
	switch {
	case outcome == OutcomeMutated:
		h.count(l, OutcomeMutated, noRule)
	case len(d.Result.Denials)+len(d.Result.Warnings) == 0:
		h.count(l, outcome, noRule)
	}
	log := l.log
	if outcome == OutcomeSkipped {
		log = log.V(1)
	}
	if d.Reason != "" {
		l.info(log, "rule", ruleList(d.Result), "outcome", outcome, "mode", string(d.Mode), "reason", d.Reason)
		return
	}
	l.info(log, "rule", ruleList(d.Result), "outcome", outcome, "mode", string(d.Mode))
}

func (h *Handler) count(l decisionLog, outcome, rule string) {
	h.metrics.count(h.name, string(l.req.Operation), l.resource, outcome, rule)
}

func (h *Handler) observeError(l decisionLog, err error) {
	h.count(l, OutcomeError, noRule)
	l.log.Error(err, "admission decision", l.withRequest([]any{"rule", noRule, "outcome", OutcomeError, "mode", ""})...)
}

// ruleList names the rules that denied or warned, comma-separated, or "none".
func ruleList(r policy.Result) string {
	if len(r.Denials)+len(r.Warnings) == 0 {
		return noRule
	}
	rules := make([]string, 0, len(r.Denials)+len(r.Warnings))
	for _, v := range r.Denials {
		rules = append(rules, string(v.Rule))
	}
	for _, v := range r.Warnings {
		rules = append(rules, string(v.Rule))
	}
	return strings.Join(rules, ",")
}

// resourceLabel is "deployments" or "deployments/scale", the metrics label
// of a request's resource.
func resourceLabel(row review.Reviewed, known bool, res review.Resource) string {
	if known {
		return row.Label()
	}
	if res.SubResource == "" {
		return res.Resource
	}
	return res.Resource + "/" + res.SubResource
}
