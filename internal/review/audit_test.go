package review

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// Audit mode admits unchanged and silently: no patch, no denial, no
// warning, no pod identity, no Service; the verdict is kept for the audit
// annotations.
func TestAuditModeAdmitsUnchanged(t *testing.T) {
	engine := newEngine(testCluster(), policy.ModeAudit)
	ctx := context.Background()
	fresh := inNamespace(statefulSet("mysql", "stateful-single", 3), "shop")
	fresh.Spec.ServiceName, fresh.Spec.VolumeClaimTemplates = "", nil
	req := Request{Operation: policy.OpCreate, Resource: statefulSetsResource, Namespace: "shop", Name: "mysql", Object: raw(t, fresh)}

	a, err := engine.Admit(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, Admission{Mode: policy.ModeAudit, Object: req.Object}, a)

	validated, err := engine.Validate(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, outcome{Mode: policy.ModeAudit, Name: "mysql"}, outcomeOf(validated))
	require.Len(t, validated.Verdict.Denials, 1)
	assert.Equal(t, `statefulset "mysql" is stateful-single: replicas must be 0 or 1, got 3 [single-instance]`, validated.Verdict.Denials[0].String())

	in, err := engine.InScope(ctx, "shop")
	require.NoError(t, err)
	assert.False(t, in, "an audit namespace gets no headless Service")

	pod := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "single-db-0",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "single-db", Controller: new(true)}}}}
	stamped, err := engine.StampPod(ctx, Request{Operation: policy.OpCreate, Resource: Resource{Version: "v1", Resource: "pods"},
		Namespace: "shop", Name: "single-db-0", Object: raw(t, pod)})
	require.NoError(t, err)
	assert.Equal(t, outcome{Skipped: true, Mode: policy.ModeAudit, Name: "single-db-0", Reason: reasonAuditOnly}, outcomeOf(stamped))
}

// Audit judges a stored object whatever the mode, without writing to it
// (it may be an informer cache's own copy).
func TestAuditStoredObject(t *testing.T) {
	engine := newEngine(testCluster(), "")
	stored := inNamespace(statefulSet("cache", "stateful-multi", 2), "relaxed")
	stored.Spec.ServiceName = "cache-headless"
	stored.TypeMeta = metav1.TypeMeta{}

	d, err := engine.Audit(context.Background(), stored)
	require.NoError(t, err)
	assert.Equal(t, metav1.TypeMeta{}, stored.TypeMeta)
	assert.Equal(t, policy.ModeWarn, d.Mode)
	require.Len(t, d.Verdict.Denials, 1, "a warn namespace's findings are still denials")
	assert.Equal(t, policy.RuleHeadlessMissing, d.Verdict.Denials[0].Rule)

	off := inNamespace(statefulSet("cache", "stateful-multi", 2), "quiet")
	d, err = engine.Audit(context.Background(), off)
	require.NoError(t, err)
	assert.True(t, d.Skipped)

	_, err = engine.Audit(context.Background(), &appsv1.ReplicaSet{})
	assert.EqualError(t, err, "invalid admission request: *v1.ReplicaSet is not audited")
}
