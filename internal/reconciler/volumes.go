package reconciler

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// VolumesControllerName names the claim-growth controller in logs and metrics.
const VolumesControllerName = "volumes"

// Reasons of the Events the claim-growth controller records on the StatefulSet.
const (
	ReasonClaimResizeRequested = "ClaimResizeRequested"
	ReasonClaimResizeRefused   = "ClaimResizeRefused"
)

const volumesEventAction = "GrowClaim"

// VolumesReconciler grows the claims of the templates statekeeper injected
// when statekeeper.io/storage-size is raised, and those of the templates
// whose larger size admission recorded in statekeeper.io/claim-sizes, and
// the claims of instances created later: a StatefulSet's claim templates are
// immutable, so a new instance's claim that the claim webhook did not size
// is made at the old size and raised here once bound.
// What to do is decided by policy.PlanClaimGrowth. Raising a claim's
// request is all it does: the storage provider's resizer (and the kubelet,
// for the file system) then grows the volume, and reports on the claim's
// conditions and status.capacity.
type VolumesReconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	InScope  func(ctx context.Context, namespace string) (bool, error)
	// Awaiting is the gauge of claims waiting for expansion, by namespace
	// and StatefulSet (policy.ClaimsAwaitingExpansion); nil counts nothing.
	Awaiting *prometheus.GaugeVec
}

// ClaimsAwaitingMetric is the name of the gauge of claims waiting for expansion.
const ClaimsAwaitingMetric = "statekeeper_claims_awaiting_expansion"

// NewClaimsAwaitingGauge registers the gauge of claims waiting for
// expansion on reg, for Options.ClaimsAwaiting. It outlives the terms of
// leadership: the server resets it when a term ends, so that the next
// leader's counts stand alone.
func NewClaimsAwaitingGauge(reg prometheus.Registerer) (*prometheus.GaugeVec, error) {
	gauge := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: ClaimsAwaitingMetric,
		Help: "Claims of a StatefulSet's sized claim templates that do not have their wanted size yet (requested or not), by the claims' namespace (resource_namespace: Prometheus keeps namespace for the target's) and statefulset.",
	}, []string{"resource_namespace", "statefulset"})
	if err := reg.Register(gauge); err != nil {
		return nil, fmt.Errorf("registering %s: %w", ClaimsAwaitingMetric, err)
	}
	return gauge, nil
}

func setupVolumes(mgr ctrl.Manager, opts Options) error {
	r := &VolumesReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder(EventSource), InScope: opts.InScope, Awaiting: opts.ClaimsAwaiting}
	return ctrl.NewControllerManagedBy(mgr).
		Named(VolumesControllerName).
		For(&appsv1.StatefulSet{}, builder.WithPredicates(
			predicate.NewPredicateFuncs(isStateful),
			specLabelsOrAnnotationsChanged(),
		)).
		// A new instance's claim, or one that just bound or grew. Claims of
		// the user's templates carry no mark of statekeeper's: the mapping
		// reads their names.
		Watches(&corev1.PersistentVolumeClaim{}, handler.EnqueueRequestsFromMapFunc(r.statefulSetOfClaim)).
		// A class that starts to allow expansion.
		Watches(&storagev1.StorageClass{}, handler.EnqueueRequestsFromMapFunc(r.statefulSetsWithSize)).
		Complete(r)
}

// isSizedStateful selects stateful StatefulSets whose claims have a wanted
// size (policy.WantedClaimSizes).
func isSizedStateful(obj client.Object) bool {
	sts, ok := obj.(*appsv1.StatefulSet)
	if !ok || !isStateful(sts) {
		return false
	}
	return len(policy.WantedClaimSizes(policy.FromStatefulSet(sts))) > 0
}

func (r *VolumesReconciler) statefulSetOfClaim(ctx context.Context, obj client.Object) []reconcile.Request {
	return r.statefulSets(ctx, obj.GetNamespace(), func(w policy.Workload) bool {
		return policy.IsSizedClaimOf(obj.GetName(), w)
	})
}

func (r *VolumesReconciler) statefulSetsWithSize(ctx context.Context, _ client.Object) []reconcile.Request {
	return r.statefulSets(ctx, "", func(w policy.Workload) bool {
		return len(policy.WantedClaimSizes(w)) > 0
	})
}

// statefulSets maps to the stateful StatefulSets of namespace ("" for all) that match.
func (r *VolumesReconciler) statefulSets(ctx context.Context, namespace string, match func(policy.Workload) bool) []reconcile.Request {
	return statefulSetRequests(ctx, r.Client, namespace, func(sts *appsv1.StatefulSet) bool {
		return isStateful(sts) && match(policy.FromStatefulSet(sts))
	})
}

// Reconcile raises the request of every injected claim of the StatefulSet
// that is bound, smaller than statekeeper.io/storage-size and of a class
// that allows expansion, and says on the StatefulSet's Events what it did or
// why it could not.
func (r *VolumesReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	sts, err := statefulSetToReconcile(ctx, r.Client, r.InScope, req.NamespacedName, isSizedStateful)
	if err != nil || sts == nil {
		if r.Awaiting != nil && err == nil {
			r.Awaiting.DeleteLabelValues(req.Namespace, req.Name)
		}
		return reconcile.Result{}, err
	}
	w := policy.FromStatefulSet(sts)
	// The cache's own copies, only read (the patches are built anew).
	var claims corev1.PersistentVolumeClaimList
	if err := r.Client.List(ctx, &claims, client.InNamespace(sts.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing claims: %w", err)
	}
	var classes storagev1.StorageClassList
	if err := r.Client.List(ctx, &classes, client.UnsafeDisableDeepCopy); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing storage classes: %w", err)
	}
	log := logf.FromContext(ctx)
	if r.Awaiting != nil {
		r.Awaiting.WithLabelValues(sts.Namespace, sts.Name).Set(float64(policy.ClaimsAwaitingExpansion(w, claims.Items)))
	}
	for _, step := range policy.PlanClaimGrowth(w, claims.Items, classes.Items) {
		claim := &corev1.PersistentVolumeClaim{}
		claim.Namespace, claim.Name = sts.Namespace, step.Claim
		switch step.Action {
		case policy.ClaimWaitBound:
			// Only a bound claim can be expanded; its binding raises an event here.
			log.V(1).Info("waiting for a claim to bind before growing it", "claim", step.Claim)
		case policy.ClaimRefused:
			r.Recorder.Eventf(sts, claim, corev1.EventTypeWarning, ReasonClaimResizeRefused, volumesEventAction, "%s", step.Reason)
		case policy.ClaimGrow:
			body, err := json.Marshal(map[string]any{"spec": map[string]any{"resources": map[string]any{
				"requests": map[string]string{string(corev1.ResourceStorage): step.To.String()},
			}}})
			if err != nil {
				return reconcile.Result{}, err
			}
			if err := r.Client.Patch(ctx, claim, client.RawPatch(types.MergePatchType, body)); client.IgnoreNotFound(err) != nil {
				r.Recorder.Eventf(sts, claim, corev1.EventTypeWarning, ReasonClaimResizeRefused, volumesEventAction,
					"cannot grow claim %q to %s: %v", step.Claim, step.To.String(), err)
				return reconcile.Result{}, fmt.Errorf("growing claim %q: %w", step.Claim, err)
			}
			log.Info("requested a larger volume", "claim", step.Claim, "from", step.From.String(), "to", step.To.String())
			r.Recorder.Eventf(sts, claim, corev1.EventTypeNormal, ReasonClaimResizeRequested, volumesEventAction,
				"claim %q now requests %s (was %s); the storage provider grows the volume and reports progress on the claim's conditions and status.capacity",
				step.Claim, step.To.String(), step.From.String())
		}
	}
	return reconcile.Result{}, nil
}
