package review

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// TestAdmitReportsEveryViolatedRule: a StatefulSet labelled stateless-single
// with 2 replicas and the quorum annotation breaks three rules. The mutating
// webhook, which the API server calls first, answers it with the whole
// validation verdict, so the server, Admit (and with it `check`) name all
// three, in the order of docs/spec.md §4.
func TestAdmitReportsEveryViolatedRule(t *testing.T) {
	engine := newEngine(testCluster(), "")
	sts := statefulSet("ledger", "stateless-single", 2)
	sts.Annotations = map[string]string{policy.AnnotationQuorum: "true"}
	req := Request{Operation: policy.OpCreate, Resource: statefulSetsResource, Namespace: "shop", Name: "ledger", Object: raw(t, sts)}
	want := []policy.Rule{policy.RuleSingleInstance, policy.RuleKindMismatch, policy.RuleQuorum}

	mutated, err := engine.Mutate(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, outcome{Mode: policy.ModeEnforce, Name: "ledger", Denied: want}, outcomeOf(mutated))

	admitted, err := engine.Admit(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, mutated.Result, admitted.Result)
	assert.Empty(t, admitted.Patch)
	assert.Equal(t, req.Object, admitted.Object)
}

// TestAdmitSequence: Admit patches, validates the patched object, and keeps
// a warning that two steps give once, as the API server does.
func TestAdmitSequence(t *testing.T) {
	engine := newEngine(testCluster(), "")
	ctx := context.Background()

	fresh := statefulSet("redis", "stateful-multi", 3)
	fresh.Spec.ServiceName, fresh.Spec.VolumeClaimTemplates = "", nil
	req := Request{Operation: policy.OpCreate, Resource: statefulSetsResource, Namespace: "shop", Name: "redis", Object: raw(t, fresh)}
	mutated, err := engine.Mutate(ctx, req)
	require.NoError(t, err)
	a, err := engine.Admit(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, mutated.Patch, a.Patch)
	patched, err := ApplyPatch(req.Object, mutated.Patch)
	require.NoError(t, err)
	assert.Equal(t, patched, a.Object)
	assert.Equal(t, Admission{Mode: policy.ModeEnforce, Patch: a.Patch, Object: a.Object}, a)

	// Warn mode: both webhooks warn kind-mismatch; the client reads it once.
	mismatch := inNamespace(statefulSet("cache", "stateless-multi", 1), "relaxed")
	mismatch.Spec.ServiceName, mismatch.Spec.VolumeClaimTemplates = "", nil
	a, err = engine.Admit(ctx, Request{Operation: policy.OpCreate, Resource: statefulSetsResource, Namespace: "relaxed", Name: "cache", Object: raw(t, mismatch)})
	require.NoError(t, err)
	require.Len(t, a.Result.Warnings, 1)
	assert.Equal(t, policy.RuleKindMismatch, a.Result.Warnings[0].Rule)
	assert.Empty(t, a.Result.Denials)

	// A resource only validated: an HPA.
	a, err = engine.Admit(ctx, Request{Operation: policy.OpCreate, Resource: hpaResource, Namespace: "shop", Name: "auto",
		Object: raw(t, hpa("auto", "apps/v1", "StatefulSet", "single-db", 3))})
	require.NoError(t, err)
	assert.Equal(t, []policy.Rule{policy.RuleSingleInstance}, outcomeOf(Decision{Result: a.Result}).Denied)

	_, err = engine.Admit(ctx, Request{Operation: policy.OpCreate, Resource: Resource{Resource: "configmaps"}, Object: []byte(`{}`)})
	assert.EqualError(t, err, "invalid admission request: configmaps is not reviewed by statekeeper")
}
