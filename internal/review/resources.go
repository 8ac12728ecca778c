package review

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// Step is one of the admission webhooks a request goes through; each is one
// of the engine's entry points (Mutate, StampPod, Validate) and one webhook
// path.
type Step int

const (
	// StepMutate is /mutate: workload mutations (docs/spec.md §2).
	StepMutate Step = 1 << iota
	// StepStamp is /mutate-pods: pod identity stamping (docs/spec.md §5).
	StepStamp
	// StepValidate is /validate: the rules of docs/spec.md §4.
	StepValidate
	// StepUnlabelled is /validate-unlabelled: the kind-switch rule on the
	// CREATE of an unlabelled workload, which the other webhooks' object
	// selector never sends. A webhook of its own, failing open, so that an
	// outage of statekeeper never blocks unmanaged workloads.
	StepUnlabelled
	// StepClaim is /mutate-claims: a claim the StatefulSet controller creates
	// gets the size recorded for its template (docs/spec.md §10).
	StepClaim
)

// Reviewed is one resource statekeeper reviews: what the API server calls it
// in an admission request, the kind its body carries, and which steps judge
// it.
type Reviewed struct {
	Group, Resource, SubResource string
	Kind                         schema.GroupKind
	// Steps are the webhooks that review it.
	Steps Step
	// Deletes are the steps that judge a DELETE of it (deletion protection);
	// other steps let deletions through untouched.
	Deletes Step
	// judge is the engine's decision for the resource, whichever step asks.
	judge func(e *Engine, step Step) judgeFunc
}

// Resources is every resource statekeeper reviews, one row each: the webhook
// handlers, the engine and `statekeeper check` all read this table, and the
// chart's webhook rules must register exactly these (its tests compare
// them). Adding a resource is adding a row.
var Resources = []Reviewed{
	{Group: appsv1.GroupName, Resource: "deployments", Kind: kindDeployment,
		Steps: StepMutate | StepValidate | StepUnlabelled, Deletes: StepValidate,
		judge: workloadJudge(policy.KindDeployment)},
	{Group: appsv1.GroupName, Resource: "statefulsets", Kind: kindStatefulSet,
		Steps: StepMutate | StepValidate | StepUnlabelled, Deletes: StepValidate,
		judge: workloadJudge(policy.KindStatefulSet)},
	{Group: appsv1.GroupName, Resource: "deployments", SubResource: "scale", Kind: kindScale,
		Steps: StepValidate,
		judge: scaleJudge(policy.KindDeployment)},
	{Group: appsv1.GroupName, Resource: "statefulsets", SubResource: "scale", Kind: kindScale,
		Steps: StepValidate,
		judge: scaleJudge(policy.KindStatefulSet)},
	// With matchPolicy Equivalent an autoscaling/v1 HPA arrives converted to
	// v2; both name their target and bound it the same way.
	{Group: autoscalingv2.GroupName, Resource: "horizontalpodautoscalers", Kind: kindHPA,
		Steps: StepValidate,
		judge: func(e *Engine, _ Step) judgeFunc { return e.hpa }},
	{Group: corev1.GroupName, Resource: "pods", Kind: kindPod,
		Steps: StepStamp,
		judge: func(e *Engine, _ Step) judgeFunc { return e.stampPod }},
	{Group: corev1.GroupName, Resource: "persistentvolumeclaims", Kind: kindClaim,
		Steps: StepClaim,
		judge: func(e *Engine, _ Step) judgeFunc { return e.sizeClaim }},
}

var (
	kindDeployment  = schema.GroupKind{Group: appsv1.GroupName, Kind: string(policy.KindDeployment)}
	kindStatefulSet = schema.GroupKind{Group: appsv1.GroupName, Kind: string(policy.KindStatefulSet)}
	kindScale       = schema.GroupKind{Group: autoscalingv1.GroupName, Kind: "Scale"}
	kindHPA         = schema.GroupKind{Group: autoscalingv2.GroupName, Kind: "HorizontalPodAutoscaler"}
	kindPod         = schema.GroupKind{Group: corev1.GroupName, Kind: "Pod"}
	kindClaim       = schema.GroupKind{Group: corev1.GroupName, Kind: "PersistentVolumeClaim"}
)

// judgeFunc decides one request of a reviewed resource.
type judgeFunc func(ctx context.Context, req Request) (Decision, error)

func workloadJudge(kind policy.Kind) func(*Engine, Step) judgeFunc {
	return func(e *Engine, step Step) judgeFunc {
		return func(ctx context.Context, req Request) (Decision, error) {
			if req.Operation == policy.OpDelete && step == StepValidate {
				return e.deletion(ctx, req, kind)
			}
			switch step {
			case StepMutate:
				return e.workload(ctx, req, kind, e.mutateWorkload)
			case StepUnlabelled:
				return e.unlabelled(ctx, req, kind)
			default:
				return e.workload(ctx, req, kind, e.validateWorkload)
			}
		}
	}
}

func scaleJudge(kind policy.Kind) func(*Engine, Step) judgeFunc {
	return func(e *Engine, _ Step) judgeFunc {
		return func(ctx context.Context, req Request) (Decision, error) { return e.scale(ctx, req, kind) }
	}
}

// Matches reports whether a request's resource is this row's. With
// matchPolicy Equivalent the API server converts to the registered version,
// so the version does not take part.
func (r Reviewed) Matches(res Resource) bool {
	return r.Group == res.Group && r.Resource == res.Resource && r.SubResource == res.SubResource
}

// Label is "deployments" or "deployments/scale", as metrics name it.
func (r Reviewed) Label() string {
	if r.SubResource == "" {
		return r.Resource
	}
	return r.Resource + "/" + r.SubResource
}

// String is "deployments.apps" or "deployments.apps/scale".
func (r Reviewed) String() string {
	return Resource{Group: r.Group, Resource: r.Resource, SubResource: r.SubResource}.String()
}

// ResourceOf returns the row of a request's resource.
func ResourceOf(res Resource) (Reviewed, bool) {
	for _, r := range Resources {
		if r.Matches(res) {
			return r, true
		}
	}
	return Reviewed{}, false
}

// ResourceOfKind returns the row of the objects of kind written directly
// (not through a subresource): how `check` knows what a manifest is.
func ResourceOfKind(kind schema.GroupKind) (Reviewed, bool) {
	for _, r := range Resources {
		if r.Kind == kind && r.SubResource == "" {
			return r, true
		}
	}
	return Reviewed{}, false
}

// stepNames name the steps in errors.
var stepNames = map[Step]string{
	StepMutate: "mutated", StepStamp: "stamped", StepValidate: "validated", StepUnlabelled: "guarded unlabelled",
	StepClaim: "sized",
}

// judgeOf returns the decision of step for the request's resource.
func (e *Engine) judgeOf(step Step, res Resource) (judgeFunc, error) {
	r, ok := ResourceOf(res)
	if !ok || r.Steps&step == 0 {
		return nil, fmt.Errorf("%w: %s is not %s by statekeeper", ErrInvalidRequest, res, stepNames[step])
	}
	return r.judge(e, step), nil
}
