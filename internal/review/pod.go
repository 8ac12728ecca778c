package review

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// Why a pod was not stamped (Decision.Reason).
const (
	reasonNotCreate       = "only pod creations are stamped"
	reasonNoOwner         = "the pod has no statefulset controller"
	reasonOwnerNotFound   = "its statefulset does not exist: the pod is admitted unstamped"
	reasonOwnerUnmanaged  = "its statefulset is not stateful-*"
	reasonOwnerIncarnated = "its statefulset has another uid than the pod's controller reference: the pod is admitted unstamped"
	reasonAuditOnly       = "its namespace is in audit mode, where statekeeper changes nothing"
)

// stampPod stamps the stable identity of docs/spec.md §5 on a pod CREATE (the
// /mutate-pods webhook, Engine.StampPod): the pod's controller is looked up by name, so pods
// of StatefulSets created before statekeeper was installed are stamped too.
//
// A pod whose identity statekeeper cannot give is admitted as it is: no
// StatefulSet controller, an owner that is not stateful-*, or an owner the
// lookup does not hold (yet). The webhook fails open by design (a StatefulSet
// must be able to recreate its pods), and Decision.Reason says why nothing
// was done. Stamping applies in enforce and warn mode alike.
func (e *Engine) stampPod(ctx context.Context, req Request) (Decision, error) {
	d := Decision{Name: req.Name}
	skip := func(reason string) (Decision, error) {
		d.Skipped, d.Reason = true, reason
		return d, nil
	}
	if req.Operation != policy.OpCreate {
		return skip(reasonNotCreate)
	}
	if e.excluded[req.Namespace] {
		d.Skipped = true
		return d, nil
	}
	pod, err := objectOf[corev1.Pod](req.DecodedObject, req.Object, "Pod")
	if err != nil {
		return d, err
	}
	// The API server fills in the namespace before admission; check and
	// hand-built requests may not.
	pod.Namespace = nonEmpty(pod.Namespace, req.Namespace)
	pod.Name = nonEmpty(pod.Name, req.Name)
	d.Name = pod.Name

	ownerName, ok := policy.StatefulSetOwner(pod)
	if !ok {
		return skip(reasonNoOwner)
	}
	ownerUID := metav1.GetControllerOfNoCopy(pod).UID
	if _, err := e.resolveMode(ctx, &d, pod.Namespace); err != nil || d.Skipped {
		return d, err
	}
	if !d.Mode.Acts() {
		return skip(reasonAuditOnly)
	}
	owner, err := e.lookup.StatefulSet(ctx, pod.Namespace, ownerName, ownerUID)
	if err != nil {
		return d, fmt.Errorf("looking up statefulset %q, the owner of pod %q: %w", ownerName, pod.Name, err)
	}
	if owner == nil {
		return skip(reasonOwnerNotFound)
	}
	if !sameIncarnation(ownerUID, owner) {
		return skip(reasonOwnerIncarnated)
	}
	// The Service decides whether the pods get DNS names to stamp; a miss
	// (none yet) is the headless one statekeeper's reconciler creates.
	svcName := policy.ServiceNameOf(owner)
	svc, err := e.lookup.Service(ctx, pod.Namespace, svcName)
	if err != nil {
		return d, fmt.Errorf("looking up service %q of statefulset %q: %w", svcName, ownerName, err)
	}
	patch, managed, err := policy.StampStatefulPod(pod, owner, svc, e.settings.ClusterDomain)
	if !managed {
		return skip(reasonOwnerUnmanaged)
	}
	if err != nil {
		// Only a pod that does not look like its StatefulSet's (no ordinal in
		// its name or labels) gets here; the API server then applies the
		// webhook's failure policy, which admits it.
		return d, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	d.Patch = patch
	return d, nil
}

// sameIncarnation is false when the pod's controller reference names a uid
// and the StatefulSet found has another: a StatefulSet deleted and created
// again under the same name, which the lookup has not seen yet. Manifests
// that `statekeeper check` reads carry no uids, and then the name decides.
func sameIncarnation(ownerUID types.UID, owner *appsv1.StatefulSet) bool {
	return ownerUID == "" || owner.UID == "" || ownerUID == owner.UID
}
