package reconciler

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
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

// DisruptionBudgetControllerName names the disruption-budget controller in logs and metrics.
const DisruptionBudgetControllerName = "disruption-budget"

// Reasons of the Events the disruption-budget controller records on the StatefulSet.
const (
	ReasonBudgetCreated = "DisruptionBudgetCreated"
	ReasonBudgetUpdated = "DisruptionBudgetUpdated"
	ReasonBudgetDeleted = "DisruptionBudgetDeleted"
	ReasonBudgetForeign = "DisruptionBudgetForeign"
)

const budgetEventAction = "ReconcileDisruptionBudget"

// DisruptionBudgetReconciler keeps the PodDisruptionBudget of every
// stateful-multi StatefulSet in step with its replica count and quorum
// annotation; what to do is decided by policy.PlanDisruptionBudget.
type DisruptionBudgetReconciler struct {
	// Client reads from the manager's cache (every budget, to see the
	// users' own) and writes to the API server.
	Client   client.Client
	Recorder events.EventRecorder
	InScope  func(ctx context.Context, namespace string) (bool, error)
}

func setupDisruptionBudgets(mgr ctrl.Manager, opts Options) error {
	r := &DisruptionBudgetReconciler{
		Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder(EventSource), InScope: opts.InScope,
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named(DisruptionBudgetControllerName).
		// Every managed StatefulSet, not only stateful-multi ones: one that
		// stops being stateful-multi must lose its budget.
		For(&appsv1.StatefulSet{}, builder.WithPredicates(
			predicate.NewPredicateFuncs(isManagedWorkload),
			specLabelsOrAnnotationsChanged(),
		)).
		Watches(&policyv1.PodDisruptionBudget{}, handler.EnqueueRequestsFromMapFunc(r.statefulSetsOfBudget)).
		Complete(r)
}

// statefulSetsOfBudget maps a budget to the StatefulSets it concerns: the
// one of its name (statekeeper's own, or a user's that holds the name) and
// every managed one whose pods it selects.
func (r *DisruptionBudgetReconciler) statefulSetsOfBudget(ctx context.Context, obj client.Object) []reconcile.Request {
	pdb, ok := obj.(*policyv1.PodDisruptionBudget)
	if !ok {
		return nil
	}
	return statefulSetRequests(ctx, r.Client, pdb.Namespace, func(sts *appsv1.StatefulSet) bool {
		return isManagedWorkload(sts) && policy.BudgetConcerns(pdb, sts)
	})
}

// Reconcile makes the StatefulSet's budget right, or says on its Events why
// statekeeper keeps none.
func (r *DisruptionBudgetReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	// Any managed StatefulSet: one that is no longer stateful-multi loses its budget.
	sts, err := statefulSetToReconcile(ctx, r.Client, r.InScope, req.NamespacedName, isManagedWorkload)
	if err != nil || sts == nil {
		return reconcile.Result{}, err
	}
	// The cache's own copies: PlanDisruptionBudget copies a budget before
	// changing it, and Delete and the Events only read it.
	var budgets policyv1.PodDisruptionBudgetList
	if err := r.Client.List(ctx, &budgets, client.InNamespace(sts.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing disruption budgets: %w", err)
	}
	plan := policy.PlanDisruptionBudget(sts, budgets.Items)
	log := logf.FromContext(ctx).WithValues("budget", sts.Name, "action", plan.Action)

	switch plan.Action {
	case policy.BudgetInSync:
	case policy.BudgetForeign:
		log.V(1).Info("leaving the pods to the user's disruption budget", "reason", plan.Reason)
		r.Recorder.Eventf(sts, nil, corev1.EventTypeNormal, ReasonBudgetForeign, budgetEventAction, "%s", plan.Reason)
	case policy.BudgetCreate:
		if err := r.Client.Create(ctx, plan.Budget); err != nil {
			return reconcile.Result{}, fmt.Errorf("creating disruption budget %q: %w", plan.Budget.Name, err)
		}
		log.Info("created the disruption budget")
		r.Recorder.Eventf(sts, plan.Budget, corev1.EventTypeNormal, ReasonBudgetCreated, budgetEventAction,
			"created pod disruption budget %q (%s)", plan.Budget.Name, describeBudget(plan.Budget))
	case policy.BudgetUpdate:
		if err := r.Client.Update(ctx, plan.Budget); err != nil {
			return reconcile.Result{}, fmt.Errorf("updating disruption budget %q: %w", plan.Budget.Name, err)
		}
		log.Info("updated the disruption budget")
		r.Recorder.Eventf(sts, plan.Budget, corev1.EventTypeNormal, ReasonBudgetUpdated, budgetEventAction,
			"updated pod disruption budget %q (%s)", plan.Budget.Name, describeBudget(plan.Budget))
	case policy.BudgetDelete:
		uid, version := plan.Budget.UID, plan.Budget.ResourceVersion
		precondition := client.Preconditions{UID: &uid, ResourceVersion: &version}
		if err := r.Client.Delete(ctx, plan.Budget, precondition); client.IgnoreNotFound(err) != nil {
			return reconcile.Result{}, fmt.Errorf("deleting disruption budget %q: %w", plan.Budget.Name, err)
		}
		log.Info("deleted the disruption budget", "reason", plan.Reason)
		r.Recorder.Eventf(sts, nil, corev1.EventTypeNormal, ReasonBudgetDeleted, budgetEventAction, "%s", plan.Reason)
	default:
		return reconcile.Result{}, reconcile.TerminalError(fmt.Errorf("unknown disruption budget action %q", plan.Action))
	}
	return reconcile.Result{}, nil
}

func describeBudget(pdb *policyv1.PodDisruptionBudget) string {
	if pdb.Spec.MinAvailable != nil {
		return "minAvailable " + pdb.Spec.MinAvailable.String()
	}
	return "maxUnavailable " + pdb.Spec.MaxUnavailable.String()
}
