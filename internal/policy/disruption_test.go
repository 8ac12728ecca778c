package policy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// budgetSTS is a stateful-multi "db" of replicas whose pods are app=db.
func budgetSTS(replicas int32, annotations map[string]string) *appsv1.StatefulSet {
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: "db", Namespace: "shop", UID: "uid-db", Annotations: annotations,
			Labels: map[string]string{LabelDeployType: string(StatefulMulti)},
		},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
		},
	}
	sts.Spec.Template.Labels = map[string]string{"app": "db", "tier": "data"}
	return sts
}

func wantBudget(spec func(*policyv1.PodDisruptionBudgetSpec)) *policyv1.PodDisruptionBudget {
	pdb := &policyv1.PodDisruptionBudget{
		TypeMeta: metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "db", Namespace: "shop",
			Labels: map[string]string{LabelManagedBy: ManagerName},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: "uid-db", Controller: ptr.To(true),
			}},
		},
		Spec: policyv1.PodDisruptionBudgetSpec{
			Selector:                   &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			UnhealthyPodEvictionPolicy: ptr.To(policyv1.AlwaysAllow),
		},
	}
	spec(&pdb.Spec)
	return pdb
}

func minAvailable(n int32) func(*policyv1.PodDisruptionBudgetSpec) {
	return func(s *policyv1.PodDisruptionBudgetSpec) { s.MinAvailable = ptr.To(intstr.FromInt32(n)) }
}

func oneUnavailable(s *policyv1.PodDisruptionBudgetSpec) {
	s.MaxUnavailable = ptr.To(intstr.FromInt32(1))
}

func TestDisruptionBudget(t *testing.T) {
	quorum := map[string]string{AnnotationQuorum: "true"}
	tests := []struct {
		name string
		sts  *appsv1.StatefulSet
		want *policyv1.PodDisruptionBudget
	}{
		{"no quorum: one instance down at a time", budgetSTS(4, nil), wantBudget(oneUnavailable)},
		{"quorum of 1 keeps 1 (a budget statekeeper does not keep, see PlanDisruptionBudget)", budgetSTS(1, quorum), wantBudget(minAvailable(1))},
		{"quorum at rest keeps 1 of none", budgetSTS(0, quorum), wantBudget(minAvailable(1))},
		{"quorum of 3 keeps 2", budgetSTS(3, quorum), wantBudget(minAvailable(2))},
		{"quorum of 5 keeps 3", budgetSTS(5, quorum), wantBudget(minAvailable(3))},
		{"quorum of 7 keeps 4", budgetSTS(7, quorum), wantBudget(minAvailable(4))},
		// The external voters (an arbiter) count as up: a majority of 3
		// votes is 2, of which the arbiter is 1.
		{"2 data members and an arbiter keep 1", budgetSTS(2, withVotes("1")), wantBudget(minAvailable(1))},
		{"4 data members and an arbiter keep 2", budgetSTS(4, withVotes("1")), wantBudget(minAvailable(2))},
		{"3 members and 2 external votes keep 1", budgetSTS(3, withVotes("2")), wantBudget(minAvailable(1))},
		{"1 member and 2 external votes keep none", budgetSTS(1, withVotes("2")), wantBudget(minAvailable(0))},
		{"unusable external votes count as none", budgetSTS(3, map[string]string{AnnotationQuorum: "true", AnnotationQuorumExternalVotes: "one"}), wantBudget(minAvailable(2))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, DisruptionBudget(tt.sts))
		})
	}
}

// withVotes are the annotations of a quorum workload with external voters.
func withVotes(n string) map[string]string {
	return map[string]string{AnnotationQuorum: "true", AnnotationQuorumExternalVotes: n}
}

func TestPlanDisruptionBudget(t *testing.T) {
	quorum := map[string]string{AnnotationQuorum: "true"}
	stored := func(spec func(*policyv1.PodDisruptionBudgetSpec)) policyv1.PodDisruptionBudget {
		pdb := wantBudget(spec)
		pdb.TypeMeta = metav1.TypeMeta{}
		pdb.ResourceVersion = "7"
		return *pdb
	}
	users := func(name string, selector *metav1.LabelSelector) policyv1.PodDisruptionBudget {
		return policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"},
			Spec:       policyv1.PodDisruptionBudgetSpec{Selector: selector, MaxUnavailable: ptr.To(intstr.FromInt32(1))},
		}
	}
	byTier := &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "data"}}
	otherApp := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	single := budgetSTS(1, nil)
	single.Labels[LabelDeployType] = string(StatefulSingle)

	grown := stored(minAvailable(2))
	updated := stored(minAvailable(3))

	tests := []struct {
		name     string
		sts      *appsv1.StatefulSet
		existing []policyv1.PodDisruptionBudget
		want     BudgetPlan
	}{
		{"none: created", budgetSTS(3, quorum), nil,
			BudgetPlan{Action: BudgetCreate, Budget: wantBudget(minAvailable(2))}},
		{"as desired: in sync", budgetSTS(3, quorum), []policyv1.PodDisruptionBudget{stored(minAvailable(2))},
			BudgetPlan{Action: BudgetInSync}},
		{"scaled from 3 to 5: updated", budgetSTS(5, quorum), []policyv1.PodDisruptionBudget{grown},
			BudgetPlan{Action: BudgetUpdate, Budget: &updated}},
		{"other budgets that select other pods are ignored", budgetSTS(2, nil),
			[]policyv1.PodDisruptionBudget{users("web", otherApp), users("nothing", nil)},
			BudgetPlan{Action: BudgetCreate, Budget: wantBudget(oneUnavailable)}},
		{"the user's budget selects the pods: none of statekeeper's", budgetSTS(3, nil),
			[]policyv1.PodDisruptionBudget{users("mine", byTier)},
			BudgetPlan{Action: BudgetForeign, Reason: msgBudgetForeign("db", []string{"mine"})}},
		{"the user's budget holds the name", budgetSTS(3, nil),
			[]policyv1.PodDisruptionBudget{users("db", otherApp)},
			BudgetPlan{Action: BudgetForeign, Reason: msgBudgetForeign("db", []string{"db"})}},
		{"the user's budget appears beside statekeeper's: statekeeper's goes", budgetSTS(3, quorum),
			[]policyv1.PodDisruptionBudget{stored(minAvailable(2)), users("mine", byTier)},
			BudgetPlan{Action: BudgetDelete, Budget: ptr.To(stored(minAvailable(2))), Reason: msgBudgetForeign("db", []string{"mine"})}},
		{"opted out: deleted", budgetSTS(3, map[string]string{AnnotationDisruptionBudget: "false"}),
			[]policyv1.PodDisruptionBudget{stored(oneUnavailable)},
			BudgetPlan{Action: BudgetDelete, Budget: ptr.To(stored(oneUnavailable)), Reason: msgBudgetNotWanted("db")}},
		{"opted out, none: nothing", budgetSTS(3, map[string]string{AnnotationDisruptionBudget: "false"}), nil,
			BudgetPlan{Action: BudgetInSync}},
		{"stateful-single gets none", single, nil, BudgetPlan{Action: BudgetInSync}},
		{"a quorum of 1 gets none: it would block every drain", budgetSTS(1, quorum), nil, BudgetPlan{Action: BudgetInSync}},
		{"scaled from 3 to 1: deleted, and says why", budgetSTS(1, quorum), []policyv1.PodDisruptionBudget{stored(minAvailable(2))},
			BudgetPlan{Action: BudgetDelete, Budget: ptr.To(stored(minAvailable(2))), Reason: `statefulset "db" runs 1 replica with statekeeper.io/quorum: "true": ` +
				`a pod disruption budget keeping its quorum (minAvailable 1) would refuse every eviction and block every node drain, ` +
				`so its pod disruption budget is removed and a drain evicts it like any other pod; ` +
				`statekeeper keeps one again once it runs enough replicas that its quorum survives an eviction`}},
		{"scaled from 1 to 3: created", budgetSTS(3, quorum), nil, BudgetPlan{Action: BudgetCreate, Budget: wantBudget(minAvailable(2))}},
		{"a quorum at rest keeps its budget", budgetSTS(0, quorum), []policyv1.PodDisruptionBudget{stored(minAvailable(1))}, BudgetPlan{Action: BudgetInSync}},
		{"without quorum one replica keeps a budget that allows its eviction", budgetSTS(1, nil), nil,
			BudgetPlan{Action: BudgetCreate, Budget: wantBudget(oneUnavailable)}},
		{"2 data members and an arbiter: a budget that allows one eviction", budgetSTS(2, withVotes("1")), nil,
			BudgetPlan{Action: BudgetCreate, Budget: wantBudget(minAvailable(1))}},
		{"1 data member and an arbiter (even, denied by the quorum rule): none", budgetSTS(1, withVotes("1")), nil, BudgetPlan{Action: BudgetInSync}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, PlanDisruptionBudget(tt.sts, tt.existing))
		})
	}
}

// An applied plan plans nothing more.
func TestPlanDisruptionBudgetConverges(t *testing.T) {
	sts := budgetSTS(5, map[string]string{AnnotationQuorum: "true"})
	created := PlanDisruptionBudget(sts, nil).Budget
	assert.Equal(t, BudgetPlan{Action: BudgetInSync}, PlanDisruptionBudget(sts, []policyv1.PodDisruptionBudget{*created}))
}
