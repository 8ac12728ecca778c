package reconciler

import (
	"context"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// PeersControllerName names the peers controller in logs and metrics.
const PeersControllerName = "peers"

// PeersReconciler keeps statekeeper.io/peers of the running pods of every
// stateful StatefulSet in step with its replica count (policy.PeersUpdate).
// It reads pods as metadata from the manager's cache, which keeps of their
// annotations only the ones it compares (lookup.CacheOptions).
type PeersReconciler struct {
	Client        client.Client
	InScope       func(ctx context.Context, namespace string) (bool, error)
	ClusterDomain string
}

func setupPeers(mgr ctrl.Manager, opts Options) error {
	r := &PeersReconciler{Client: mgr.GetClient(), InScope: opts.InScope, ClusterDomain: opts.ClusterDomain}
	return ctrl.NewControllerManagedBy(mgr).
		Named(PeersControllerName).
		For(&appsv1.StatefulSet{}, builder.WithPredicates(
			predicate.NewPredicateFuncs(isStateful),
			specOrLabelsChanged(),
		)).
		// A pod created while the StatefulSet was being scaled may have been
		// stamped with the count before the change.
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(statefulSetOfPod), builder.OnlyMetadata).
		Complete(r)
}

// statefulSetOfPod maps a pod to its StatefulSet controller.
func statefulSetOfPod(_ context.Context, obj client.Object) []reconcile.Request {
	ref := metav1.GetControllerOfNoCopy(obj)
	if ref == nil || ref.APIVersion != appsv1.SchemeGroupVersion.String() || ref.Kind != string(policy.KindStatefulSet) {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: ref.Name}}}
}

// Reconcile patches the annotations of every pod of the StatefulSet whose
// peers reflect another replica count.
func (r *PeersReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	sts, err := statefulSetToReconcile(ctx, r.Client, r.InScope, req.NamespacedName, isStateful)
	if err != nil || sts == nil {
		return reconcile.Result{}, err
	}
	selector, err := metav1.LabelSelectorAsSelector(sts.Spec.Selector)
	if err != nil || selector.Empty() {
		return reconcile.Result{}, nil
	}
	pods := &metav1.PartialObjectMetadataList{}
	pods.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PodList"))
	if err := r.Client.List(ctx, pods, client.InNamespace(sts.Namespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing the pods of statefulset %q: %w", sts.Name, err)
	}
	// The Service decides whether the pods have DNS names to list as peers.
	svc, err := currentService(ctx, r.Client, client.ObjectKey{Namespace: sts.Namespace, Name: policy.ServiceNameOf(sts)})
	if err != nil {
		return reconcile.Result{}, err
	}
	log := logf.FromContext(ctx)
	for i := range pods.Items {
		meta := &pods.Items[i]
		ref := metav1.GetControllerOfNoCopy(meta)
		if ref == nil || ref.UID != sts.UID || meta.DeletionTimestamp != nil {
			continue
		}
		pod := &corev1.Pod{ObjectMeta: meta.ObjectMeta}
		update, ok, err := policy.PeersUpdate(pod, sts, svc, r.ClusterDomain)
		if err != nil {
			log.Error(err, "cannot compute the peers of a pod", "pod", meta.Name)
			continue
		}
		if !ok {
			continue
		}
		body, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": update}})
		if err != nil {
			return reconcile.Result{}, err
		}
		target := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: meta.Namespace, Name: meta.Name}}
		if err := r.Client.Patch(ctx, target, client.RawPatch(types.MergePatchType, body)); client.IgnoreNotFound(err) != nil {
			return reconcile.Result{}, fmt.Errorf("updating the peers of pod %q: %w", meta.Name, err)
		}
		log.V(1).Info("updated the peers of a pod", "pod", meta.Name, "replicas", valueOr(update[policy.AnnotationPeersReplicas], "none"))
	}
	return reconcile.Result{}, nil
}

// valueOr is *p, or none when p is nil (a merge patch's removal).
func valueOr(p *string, none string) string {
	if p == nil {
		return none
	}
	return *p
}
