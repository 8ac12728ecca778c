package policy

import (
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// AnnotationDisruptionBudget set to "false" on a stateful-multi StatefulSet
// opts it out of the PodDisruptionBudget statekeeper keeps for it.
const AnnotationDisruptionBudget = "statekeeper.io/disruption-budget"

// BudgetAction is what the disruption-budget reconciler does about a StatefulSet's budget.
type BudgetAction string

const (
	// BudgetInSync: the managed budget is as desired, or none is wanted and none exists.
	BudgetInSync BudgetAction = "in-sync"
	// BudgetCreate: a budget is wanted and none exists.
	BudgetCreate BudgetAction = "create"
	// BudgetUpdate: the managed budget drifted (replicas or quorum changed).
	BudgetUpdate BudgetAction = "update"
	// BudgetDelete: the managed budget is no longer wanted (opted out, not
	// stateful-multi, or a budget of the user's now covers the pods).
	BudgetDelete BudgetAction = "delete"
	// BudgetForeign: a budget statekeeper does not manage covers the pods or
	// holds the name; it is left alone and Reason says so.
	BudgetForeign BudgetAction = "foreign"
)

// BudgetPlan is the reconciler's next step for one StatefulSet.
type BudgetPlan struct {
	Action BudgetAction
	// Budget is the object to create, the repaired one to write back, or the
	// one to delete; nil otherwise.
	Budget *policyv1.PodDisruptionBudget
	// Reason explains a Foreign or Delete plan to the user.
	Reason string
}

// WantsDisruptionBudget reports whether statekeeper keeps a budget for sts:
// a stateful-multi StatefulSet that did not opt out, unless its budget could
// never allow an eviction (blocksEveryEviction).
func WantsDisruptionBudget(sts *appsv1.StatefulSet) bool {
	return budgetUnwanted(sts) == ""
}

// budgetUnwanted says why statekeeper keeps no budget for sts, or "" when it keeps one.
func budgetUnwanted(sts *appsv1.StatefulSet) string {
	w := FromStatefulSet(sts)
	t, _, err := w.DeployType()
	switch {
	case err != nil || t != StatefulMulti || w.Annotations[AnnotationDisruptionBudget] == "false":
		return msgBudgetNotWanted(sts.Name)
	case blocksEveryEviction(w):
		return msgBudgetBlocksDrains(w, quorumMinAvailable(w.QuorumVotesAt(w.DesiredReplicas())))
	}
	return ""
}

// blocksEveryEviction reports whether the budget of a running quorum
// workload would keep all of its pods (one replica: minAvailable 1), and so
// refuse every eviction: a node drain would then wait forever, with nothing
// said. An operator expects a drain to take a lone instance down as it takes
// any unprotected pod, since no budget can keep one instance available
// through the loss of its node; so statekeeper keeps no budget then (and
// deletes its own when the workload is scaled down to it), and makes one
// again once the workload has a majority to keep. At 0 replicas the budget
// selects no pod and blocks nothing.
func blocksEveryEviction(w Workload) bool {
	replicas := w.DesiredReplicas()
	return w.Quorum() && replicas > 0 && quorumMinAvailable(w.QuorumVotesAt(replicas)) >= replicas
}

// DisruptionBudget is the PodDisruptionBudget statekeeper keeps for a
// stateful-multi StatefulSet, named after it. A quorum system keeps a
// majority of its n instances (minAvailable ⌊n/2⌋+1), which the replica count
// changes, and with voters declared outside it (an arbiter) as many as the
// whole quorum needs with those voters up (quorumMinAvailable); any other
// allows one instance down at a time (maxUnavailable 1).
//
// unhealthyPodEvictionPolicy is AlwaysAllow: a pod that is not Ready does not
// count towards the budget anyway, so evicting it costs no availability, and
// with the default IfHealthyBudget a crash-looping instance would block every
// node drain until someone intervenes.
//
// The owner reference has no blockOwnerDeletion: clusters with the
// OwnerReferencesPermissionEnforcement admission plugin refuse it without
// update on statefulsets/finalizers, and nothing needs it.
func DisruptionBudget(sts *appsv1.StatefulSet) *policyv1.PodDisruptionBudget {
	w := FromStatefulSet(sts)
	spec := policyv1.PodDisruptionBudgetSpec{
		Selector:                   sts.Spec.Selector.DeepCopy(),
		UnhealthyPodEvictionPolicy: ptr.To(policyv1.AlwaysAllow),
	}
	if w.Quorum() {
		spec.MinAvailable = ptr.To(intstr.FromInt32(quorumMinAvailable(w.QuorumVotesAt(w.DesiredReplicas()))))
	} else {
		spec.MaxUnavailable = ptr.To(intstr.FromInt32(1))
	}
	owner := ownerReference(sts)
	owner.BlockOwnerDeletion = nil
	return &policyv1.PodDisruptionBudget{
		TypeMeta: metav1.TypeMeta{APIVersion: policyv1.SchemeGroupVersion.String(), Kind: "PodDisruptionBudget"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            sts.Name,
			Namespace:       sts.Namespace,
			Labels:          map[string]string{LabelManagedBy: ManagerName},
			OwnerReferences: []metav1.OwnerReference{owner},
		},
		Spec: spec,
	}
}

// PlanDisruptionBudget compares the budgets of the StatefulSet's namespace
// (existing) with what statekeeper wants and says what to do.
//
// A budget of someone else's that selects the pods wins: the eviction API
// refuses to evict a pod covered by more than one budget, so statekeeper
// then keeps none of its own (and removes the one it had) rather than
// blocking every drain.
func PlanDisruptionBudget(sts *appsv1.StatefulSet, existing []policyv1.PodDisruptionBudget) BudgetPlan {
	var own *policyv1.PodDisruptionBudget
	var foreign []string
	for i := range existing {
		pdb := &existing[i]
		switch {
		case isOwnBudget(pdb, sts):
			own = pdb
		case BudgetConcerns(pdb, sts):
			foreign = append(foreign, pdb.Name)
		}
	}
	unwanted := budgetUnwanted(sts)
	switch {
	case unwanted != "" && own == nil:
		return BudgetPlan{Action: BudgetInSync}
	case unwanted != "":
		return BudgetPlan{Action: BudgetDelete, Budget: own, Reason: unwanted}
	case len(foreign) > 0 && own != nil:
		return BudgetPlan{Action: BudgetDelete, Budget: own, Reason: msgBudgetForeign(sts.Name, foreign)}
	case len(foreign) > 0:
		return BudgetPlan{Action: BudgetForeign, Reason: msgBudgetForeign(sts.Name, foreign)}
	}
	desired := DisruptionBudget(sts)
	if own == nil {
		return BudgetPlan{Action: BudgetCreate, Budget: desired}
	}
	repaired := own.DeepCopy()
	repaired.Labels = maps.Clone(own.Labels)
	if repaired.Labels == nil {
		repaired.Labels = map[string]string{}
	}
	repaired.Labels[LabelManagedBy] = ManagerName
	repaired.OwnerReferences = withControllerReference(own.OwnerReferences, desired.OwnerReferences[0])
	repaired.Spec = desired.Spec
	if equality.Semantic.DeepEqual(own.Labels, repaired.Labels) &&
		equality.Semantic.DeepEqual(own.OwnerReferences, repaired.OwnerReferences) &&
		equality.Semantic.DeepEqual(own.Spec, repaired.Spec) {
		return BudgetPlan{Action: BudgetInSync}
	}
	return BudgetPlan{Action: BudgetUpdate, Budget: repaired}
}

// isOwnBudget reports whether pdb is the budget statekeeper keeps for sts:
// managed, of its name, and controlled by it (or by an earlier incarnation
// of the same name, which sts adopts).
func isOwnBudget(pdb *policyv1.PodDisruptionBudget, sts *appsv1.StatefulSet) bool {
	if pdb.Name != sts.Name || pdb.Labels[LabelManagedBy] != ManagerName {
		return false
	}
	ref := metav1.GetControllerOfNoCopy(pdb)
	return ref == nil || ref.UID == sts.UID ||
		(ref.APIVersion == appsv1.SchemeGroupVersion.String() && ref.Kind == string(KindStatefulSet) && ref.Name == sts.Name)
}

// BudgetConcerns reports whether pdb has a say over the budget of sts: it
// holds the name statekeeper gives that budget, or it selects the pods.
func BudgetConcerns(pdb *policyv1.PodDisruptionBudget, sts *appsv1.StatefulSet) bool {
	return pdb.Name == sts.Name || selectsTemplate(pdb, sts)
}

// selectsTemplate reports whether pdb selects the pods of sts, judged by the
// labels of its pod template. A nil selector selects no pod (policy/v1); an
// empty one selects every pod of the namespace.
func selectsTemplate(pdb *policyv1.PodDisruptionBudget, sts *appsv1.StatefulSet) bool {
	if pdb.Spec.Selector == nil {
		return false
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		return false
	}
	return sel.Matches(labels.Set(sts.Spec.Template.Labels))
}
