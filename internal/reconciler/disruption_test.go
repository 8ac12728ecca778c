package reconciler

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// The disruption-budget reconciler over a fake client: it creates the
// budget, follows a scale, and gives way to a budget of the user's.
func TestDisruptionBudgetReconciler(t *testing.T) {
	ctx := context.Background()
	sts := redis("stateful-multi")
	sts.Annotations = map[string]string{policy.AnnotationQuorum: "true"}
	sts.Spec.Replicas = ptr.To[int32](3)
	sts.Spec.Template.Labels = map[string]string{"app": "redis"}
	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(sts).Build()
	recorder := events.NewFakeRecorder(10)
	r := &DisruptionBudgetReconciler{Client: c, Recorder: recorder}
	key := types.NamespacedName{Namespace: "shop", Name: "redis"}
	reconcileOnce := func() {
		t.Helper()
		res, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: key})
		require.NoError(t, err)
		assert.Equal(t, reconcile.Result{}, res)
	}
	minAvailable := func() *intstr.IntOrString {
		t.Helper()
		var pdb policyv1.PodDisruptionBudget
		require.NoError(t, c.Get(ctx, key, &pdb))
		return pdb.Spec.MinAvailable
	}

	reconcileOnce()
	assert.Equal(t, ptr.To(intstr.FromInt32(2)), minAvailable())
	assert.Equal(t, `Normal DisruptionBudgetCreated created pod disruption budget "redis" (minAvailable 2)`, <-recorder.Events)

	require.NoError(t, c.Get(ctx, key, sts))
	sts.Spec.Replicas = ptr.To[int32](5)
	require.NoError(t, c.Update(ctx, sts))
	reconcileOnce()
	assert.Equal(t, ptr.To(intstr.FromInt32(3)), minAvailable())
	assert.Equal(t, `Normal DisruptionBudgetUpdated updated pod disruption budget "redis" (minAvailable 3)`, <-recorder.Events)

	reconcileOnce() // in sync: nothing written, nothing said
	assert.Empty(t, recorder.Events)

	// Scaled down to one instance, a quorum budget would refuse every
	// eviction: it goes, and comes back with a majority to keep.
	require.NoError(t, c.Get(ctx, key, sts))
	sts.Spec.Replicas = ptr.To[int32](1)
	require.NoError(t, c.Update(ctx, sts))
	reconcileOnce()
	err := c.Get(ctx, key, &policyv1.PodDisruptionBudget{})
	assert.True(t, apierrors.IsNotFound(err), "a budget that blocks every drain: %v", err)
	assert.Equal(t, `Normal DisruptionBudgetDeleted statefulset "redis" runs 1 replica with statekeeper.io/quorum: "true": `+
		`a pod disruption budget keeping its quorum (minAvailable 1) would refuse every eviction and block every node drain, `+
		`so its pod disruption budget is removed and a drain evicts it like any other pod; `+
		`statekeeper keeps one again once it runs enough replicas that its quorum survives an eviction`, <-recorder.Events)
	reconcileOnce() // none wanted, none there: nothing said
	assert.Empty(t, recorder.Events)
	require.NoError(t, c.Get(ctx, key, sts))
	sts.Spec.Replicas = ptr.To[int32](5)
	require.NoError(t, c.Update(ctx, sts))
	reconcileOnce()
	assert.Equal(t, ptr.To(intstr.FromInt32(3)), minAvailable())
	assert.Equal(t, `Normal DisruptionBudgetCreated created pod disruption budget "redis" (minAvailable 3)`, <-recorder.Events)

	mine := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: "shop"},
		Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "redis"}}},
	}
	require.NoError(t, c.Create(ctx, mine))
	reconcileOnce()
	err = c.Get(ctx, key, &policyv1.PodDisruptionBudget{})
	assert.True(t, apierrors.IsNotFound(err), "statekeeper's budget beside the user's: %v", err)
	assert.Equal(t, "Normal DisruptionBudgetDeleted "+foreignBudgetReason, <-recorder.Events)
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(mine), &policyv1.PodDisruptionBudget{}), "the user's budget is left alone")
}

// foreignBudgetReason is the Event's note, quoted whole.
const foreignBudgetReason = `pod disruption budget "mine", not managed by statekeeper, covers the pods of statefulset "redis"; statekeeper keeps no budget of its own for them ` +
	`(the eviction API refuses pods covered by two budgets): delete yours to get one that follows the replica count, or set statekeeper.io/disruption-budget: "false" to silence this`
