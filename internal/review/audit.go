package review

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
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
func (e *Engine) Audit(ctx context.Context, obj client.Object) (Decision, error) {
	req := Request{
		Operation: Update, Namespace: obj.GetNamespace(), Name: obj.GetName(),
		DecodedObject: obj, DecodedOldObject: obj,
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		req.Resource = deployments
		return e.Validate(ctx, req)
	case *appsv1.StatefulSet:
		req.Resource = statefulSets
		d, err := e.Validate(ctx, req)
		if err != nil || d.Skipped {
			return d, err
		}
		svc, err := e.lookup.Service(ctx, o.Namespace, policy.ServiceNameOf(o))
		if err != nil {
			return d, fmt.Errorf("looking up the service of %s: %w", policy.FromStatefulSet(o).Ref(), err)
		}
		d.Verdict.Add(policy.AuditService(o, svc))
		return d, nil
	case *autoscalingv2.HorizontalPodAutoscaler:
		req.Resource = hpas
		return e.Validate(ctx, req)
	default:
		return Decision{}, fmt.Errorf("%w: %T is not audited", ErrInvalidRequest, obj)
	}
}
