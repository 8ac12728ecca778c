package review

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// Audit judges a stored object by the rules admission applies to it, for the
// background audit of `serve` and for `statekeeper audit`: a Deployment or
// StatefulSet as an UPDATE that changes nothing (so the rules about a
// transition, kind-switch and type-change, have nothing to say, and every rule
// about the object's state speaks as it would on the next write), an HPA by
// its target, and a stateful StatefulSet's headless Service
// (policy.AuditService). The findings are Decision.Verdict, whatever the
// namespace mode; a Skipped decision was not audited (excluded or off
// namespace, unmanaged object). Other objects are an ErrInvalidRequest.
//
// obj is only read: it may be an informer cache's own copy.
func (e *Engine) Audit(ctx context.Context, obj client.Object) (Decision, error) {
	// Objects read from a cache or a list carry no kind, which the engine
	// checks; a shallow copy gets it without writing to obj.
	stored := func(typed runtime.Object) Request {
		return Request{Operation: policy.OpUpdate, Namespace: obj.GetNamespace(), Name: obj.GetName(),
			DecodedObject: typed, DecodedOldObject: typed}
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		c := *o
		c.TypeMeta = metav1.TypeMeta{APIVersion: appsv1.SchemeGroupVersion.String(), Kind: string(policy.KindDeployment)}
		return e.workload(ctx, stored(&c), policy.KindDeployment, e.validateWorkload)
	case *appsv1.StatefulSet:
		c := *o
		c.TypeMeta = metav1.TypeMeta{APIVersion: appsv1.SchemeGroupVersion.String(), Kind: string(policy.KindStatefulSet)}
		d, err := e.workload(ctx, stored(&c), policy.KindStatefulSet, e.validateWorkload)
		if err != nil || d.Skipped {
			return d, err
		}
		svc, err := e.lookup.Service(ctx, o.Namespace, policy.ServiceNameOf(o))
		if err != nil {
			return d, fmt.Errorf("looking up the service of %s: %w", policy.FromStatefulSet(o).Ref(), err)
		}
		d.Verdict.Add(policy.AuditService(o, svc))
		sts := policy.FromStatefulSet(o)
		claims, err := e.templateClaims(ctx, sts)
		if err != nil {
			return d, err
		}
		d.Verdict.Add(policy.AuditClaimExpansion(sts, claims, time.Now()))
		return d, nil
	case *autoscalingv2.HorizontalPodAutoscaler:
		c := *o
		c.TypeMeta = metav1.TypeMeta{APIVersion: autoscalingv2.SchemeGroupVersion.String(), Kind: "HorizontalPodAutoscaler"}
		return e.hpa(ctx, stored(&c))
	default:
		return Decision{}, fmt.Errorf("%w: %T is not audited", ErrInvalidRequest, obj)
	}
}
