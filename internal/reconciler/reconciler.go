// Package reconciler keeps the headless Service of every stateful StatefulSet
// (docs/spec.md §3). It is level-triggered, so it heals a deleted or edited Service
// and makes up for an admission call that never happened (a StatefulSet
// created before statekeeper was installed). What the Service should be, and
// what to do about the one that exists, is decided by policy.PlanHeadlessService;
// this package only reads and writes.
package reconciler

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// ControllerName names the controller in logs and metrics.
const ControllerName = "headless-service"

// EventSource is the reporting controller of the Events the reconciler records.
const EventSource = "statekeeper"

// Reasons of the Events recorded on the StatefulSet.
const (
	ReasonServiceCreated   = "ServiceCreated"
	ReasonServiceRepaired  = "ServiceRepaired"
	ReasonServiceRecreated = "ServiceRecreated"
	ReasonServiceConflict  = "ServiceConflict"
	ReasonServiceInvalid   = "ServiceInvalid"
)

// eventAction is the events.k8s.io "action" of every Event recorded here.
const eventAction = "ReconcileHeadlessService"

// foreignRecheckInterval bounds how long a Service statekeeper does not
// manage goes unnoticed: only owned Services are watched for this controller,
// so deleting or fixing a foreign one raises no event here.
const foreignRecheckInterval = 10 * time.Minute

// Options tunes the controllers.
type Options struct {
	// InScope tells whether statekeeper acts in a namespace (not excluded,
	// mode not off); nil means every namespace.
	InScope func(ctx context.Context, namespace string) (bool, error)
	// ClusterDomain builds the pods' peer FQDNs (the --cluster-domain flag).
	ClusterDomain string
	// ClaimsAwaiting is the gauge of claims waiting for expansion
	// (NewClaimsAwaitingGauge); nil counts nothing.
	ClaimsAwaiting *prometheus.GaugeVec
}

// Reconciler creates and repairs the headless Service of a stateful StatefulSet.
//
// It reads only from the manager's cache, which must hold every Service (the
// lookups' cache options do): a Service missing from it may still exist,
// unmanaged and not yet delivered, and creating one then fails with
// AlreadyExists and is retried once the cache has it.
type Reconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	Client   client.Client
	Recorder events.EventRecorder
	// InScope is Options.InScope.
	InScope func(ctx context.Context, namespace string) (bool, error)
}

// SetupWithManager registers statekeeper's controllers with mgr: the
// headless Service (docs/spec.md §3), the disruption budget, the pods' peers and the
// growth of injected claims. The manager's leader election applies: only
// the leader reconciles. RBAC: the chart's ClusterRole.
func SetupWithManager(mgr ctrl.Manager, opts Options) error {
	controllers := []struct {
		name  string
		setup func(ctrl.Manager, Options) error
	}{
		{ControllerName, setupHeadlessService},
		{DisruptionBudgetControllerName, setupDisruptionBudgets},
		{PeersControllerName, setupPeers},
		{VolumesControllerName, setupVolumes},
	}
	for _, c := range controllers {
		if err := c.setup(mgr, opts); err != nil {
			return fmt.Errorf("setting up the %s controller: %w", c.name, err)
		}
	}
	return nil
}

// setupHeadlessService registers the headless-Service controller. It needs
// RBAC to get, list and watch StatefulSets; get, list, watch, create, patch
// and delete Services; and create and patch events.k8s.io Events.
func setupHeadlessService(mgr ctrl.Manager, opts Options) error {
	r := &Reconciler{
		Client:   mgr.GetClient(),
		Recorder: mgr.GetEventRecorder(EventSource),
		InScope:  opts.InScope,
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named(ControllerName).
		For(&appsv1.StatefulSet{}, builder.WithPredicates(
			predicate.NewPredicateFuncs(isStateful),
			specOrLabelsChanged(),
		)).
		Owns(&corev1.Service{}, builder.WithPredicates(predicate.NewPredicateFuncs(isManaged))).
		// A namespace whose mode changes (off → enforce) gets its Services
		// now, not at the next resync.
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.statefulSetsIn),
			builder.WithPredicates(modeChanged())).
		Complete(r)
}

// modeChanged passes namespace updates that change the statekeeper.io/mode
// label. Creations pass nothing: a new namespace holds no StatefulSets yet,
// and at start-up every StatefulSet is reconciled anyway.
func modeChanged() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			if e.ObjectOld == nil || e.ObjectNew == nil {
				return false
			}
			oldMode, oldOK := e.ObjectOld.GetLabels()[policy.LabelMode]
			newMode, newOK := e.ObjectNew.GetLabels()[policy.LabelMode]
			return oldMode != newMode || oldOK != newOK
		},
	}
}

// statefulSetsIn lists the stateful StatefulSets of a namespace from the cache.
func (r *Reconciler) statefulSetsIn(ctx context.Context, ns client.Object) []reconcile.Request {
	var list appsv1.StatefulSetList
	if err := r.Client.List(ctx, &list, client.InNamespace(ns.GetName())); err != nil {
		logf.FromContext(ctx).Error(err, "listing the statefulsets of a relabelled namespace", "namespace", ns.GetName())
		return nil
	}
	var requests []reconcile.Request
	for i := range list.Items {
		if isStateful(&list.Items[i]) {
			requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return requests
}

// isStateful selects StatefulSets of a stateful-* deploy type, labelled on
// themselves or their pod template (policy.FromStatefulSet).
func isStateful(obj client.Object) bool {
	sts, ok := obj.(*appsv1.StatefulSet)
	if !ok {
		return false
	}
	t, _, err := policy.FromStatefulSet(sts).DeployType()
	return err == nil && t.Stateful()
}

// isManagedWorkload selects StatefulSets that carry the deploy-type label,
// on themselves or their pod template.
func isManagedWorkload(obj client.Object) bool {
	sts, ok := obj.(*appsv1.StatefulSet)
	return ok && policy.FromStatefulSet(sts).Managed()
}

// statefulSetToReconcile reads the StatefulSet of key from the cache and
// returns it when a reconciler acts on it now: it exists (a deleted one's
// dependents go with it through their owner references), is not being
// deleted (the garbage collector would delete anything made now), lies in a
// namespace statekeeper acts in (an excluded or off one is left as it is),
// and wanted accepts it. Otherwise it returns nil.
func statefulSetToReconcile(ctx context.Context, c client.Reader, check func(context.Context, string) (bool, error),
	key client.ObjectKey, wanted func(client.Object) bool) (*appsv1.StatefulSet, error) {
	var sts appsv1.StatefulSet
	if err := c.Get(ctx, key, &sts); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	if sts.DeletionTimestamp != nil || !wanted(&sts) {
		return nil, nil
	}
	if in, err := inScope(ctx, check, sts.Namespace); err != nil || !in {
		return nil, err
	}
	return &sts, nil
}

// inScope asks check (Options.InScope) about namespace; a nil check means every namespace.
func inScope(ctx context.Context, check func(context.Context, string) (bool, error), namespace string) (bool, error) {
	if check == nil {
		return true, nil
	}
	return check(ctx, namespace)
}

// isManaged selects the Services statekeeper manages: only their changes
// concern the StatefulSet that owns them.
func isManaged(obj client.Object) bool {
	return obj.GetLabels()[policy.LabelManagedBy] == policy.ManagerName
}

// specOrLabelsChanged drops StatefulSet updates that touch only the status,
// which changes with every pod transition and never affects the Service.
// Periodic resyncs (old and new at the same resourceVersion) still pass, as
// the level-triggered safety net.
func specOrLabelsChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		if e.ObjectOld == nil || e.ObjectNew == nil {
			return true
		}
		return e.ObjectOld.GetResourceVersion() == e.ObjectNew.GetResourceVersion() ||
			e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() ||
			!maps.Equal(e.ObjectOld.GetLabels(), e.ObjectNew.GetLabels())
	}}
}

// specLabelsOrAnnotationsChanged is specOrLabelsChanged that also passes
// annotation changes, which do not bump the generation
// (statekeeper.io/quorum, statekeeper.io/storage-size, ...).
func specLabelsOrAnnotationsChanged() predicate.Predicate {
	specOrLabels := specOrLabelsChanged()
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		if specOrLabels.Update(e) {
			return true
		}
		return !maps.Equal(e.ObjectOld.GetAnnotations(), e.ObjectNew.GetAnnotations())
	}}
}

// Reconcile makes the StatefulSet's headless Service right, or says why it
// cannot on the StatefulSet's Events.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	log := logf.FromContext(ctx)

	sts, err := statefulSetToReconcile(ctx, r.Client, r.InScope, req.NamespacedName, isStateful)
	if err != nil || sts == nil {
		return reconcile.Result{}, err
	}

	key := client.ObjectKey{Namespace: sts.Namespace, Name: policy.ServiceNameOf(sts)}
	current, err := currentService(ctx, r.Client, key)
	if err != nil {
		return reconcile.Result{}, err
	}
	plan := policy.PlanHeadlessService(sts, current)
	log = log.WithValues("service", key.Name, "action", plan.Action)

	switch plan.Action {
	case policy.ServiceInSync:
		return reconcile.Result{}, nil
	case policy.ServiceForeign:
		log.V(1).Info("leaving a headless service statekeeper does not manage")
		return reconcile.Result{RequeueAfter: foreignRecheckInterval}, nil
	case policy.ServiceConflict:
		log.Info("leaving a conflicting service alone", "reason", plan.Reason)
		r.Recorder.Eventf(sts, current, corev1.EventTypeWarning, ReasonServiceConflict, eventAction, "%s", plan.Reason)
		return reconcile.Result{RequeueAfter: foreignRecheckInterval}, nil
	case policy.ServiceCreate:
		if err := r.create(ctx, sts, plan.Service); err != nil {
			return reconcile.Result{}, err
		}
		log.Info("created the headless service")
		r.Recorder.Eventf(sts, plan.Service, corev1.EventTypeNormal, ReasonServiceCreated, eventAction,
			"created headless service %q", key.Name)
	case policy.ServiceUpdate:
		patch := client.MergeFromWithOptions(current, client.MergeFromWithOptimisticLock{})
		if err := r.Client.Patch(ctx, plan.Service, patch); err != nil {
			return reconcile.Result{}, fmt.Errorf("repairing service %q: %w", key.Name, err)
		}
		log.Info("repaired the headless service")
		r.Recorder.Eventf(sts, plan.Service, corev1.EventTypeNormal, ReasonServiceRepaired, eventAction,
			"repaired headless service %q (selector, ports, publishNotReadyAddresses, labels or owner)", key.Name)
	case policy.ServiceRecreate:
		// clusterIP is immutable: a managed Service that is no longer
		// headless can only be replaced. The preconditions make sure the
		// object deleted is the one judged.
		uid, version := current.UID, current.ResourceVersion
		precondition := client.Preconditions{UID: &uid, ResourceVersion: &version}
		if err := r.Client.Delete(ctx, current, precondition); client.IgnoreNotFound(err) != nil {
			return reconcile.Result{}, fmt.Errorf("deleting non-headless service %q: %w", key.Name, err)
		}
		// Until the old Service is gone (finalizers), creating fails with
		// AlreadyExists and the request is retried with backoff.
		if err := r.create(ctx, sts, plan.Service); err != nil {
			return reconcile.Result{}, err
		}
		log.Info("recreated the headless service", "previousClusterIP", current.Spec.ClusterIP)
		r.Recorder.Eventf(sts, plan.Service, corev1.EventTypeNormal, ReasonServiceRecreated, eventAction,
			"recreated service %q as headless: its clusterIP was %q and a clusterIP cannot be changed", key.Name, current.Spec.ClusterIP)
	default:
		return reconcile.Result{}, reconcile.TerminalError(fmt.Errorf("unknown service action %q", plan.Action))
	}
	return reconcile.Result{}, nil
}

// currentService reads the Service from the cache; nil when it has none.
func currentService(ctx context.Context, c client.Reader, key client.ObjectKey) (*corev1.Service, error) {
	var svc corev1.Service
	if err := c.Get(ctx, key, &svc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading service %q: %w", key.Name, err)
	}
	return &svc, nil
}

// create creates svc. A Service the API server refuses as invalid (a
// spec.serviceName that is not a valid Service name) will not become valid by
// retrying, so it is reported on the StatefulSet and not retried. One that
// already exists was not in the cache yet: the retry judges it from there.
func (r *Reconciler) create(ctx context.Context, sts *appsv1.StatefulSet, svc *corev1.Service) error {
	err := r.Client.Create(ctx, svc)
	if apierrors.IsInvalid(err) {
		r.Recorder.Eventf(sts, nil, corev1.EventTypeWarning, ReasonServiceInvalid, eventAction,
			"cannot create headless service %q: %v", svc.Name, err)
		return reconcile.TerminalError(fmt.Errorf("creating service %q: %w", svc.Name, err))
	}
	if err != nil {
		return fmt.Errorf("creating service %q: %w", svc.Name, err)
	}
	return nil
}

// statefulSetRequests maps to the StatefulSets of namespace ("" for all)
// that match. It reads the cache without copying (match must not keep or
// change what it is given): a copy of every StatefulSet of the namespace per
// event would make creating N budgets or claims cost N² copies.
func statefulSetRequests(ctx context.Context, c client.Reader, namespace string, match func(*appsv1.StatefulSet) bool) []reconcile.Request {
	var list appsv1.StatefulSetList
	if err := c.List(ctx, &list, client.InNamespace(namespace), client.UnsafeDisableDeepCopy); err != nil {
		logf.FromContext(ctx).Error(err, "listing statefulsets", "namespace", namespace)
		return nil
	}
	var out []reconcile.Request
	for i := range list.Items {
		if sts := &list.Items[i]; match(sts) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(sts)})
		}
	}
	return out
}
