package review

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/lookup"
	"github.com/statekeeper/statekeeper/internal/policy"
)

// decideAlike runs call on an engine over cluster and on one over what the
// informer cache holds of it (lookup.Memory.AsCached: workloads trimmed to
// what policy reads of them, policy/stored.go), checks that both decide
// alike and that req's object, when a workload, is audited alike whole and
// as cached, and returns the decision over cluster. The table tests judge
// through it, so that every fixture guards the cache's trim.
func decideAlike(t *testing.T, cluster *lookup.Memory, mode policy.Mode, req Request, call func(*Engine, context.Context, Request) (Decision, error)) (Decision, error) {
	t.Helper()
	ctx := context.Background()
	cached := cluster.AsCached()
	d, err := call(newEngine(cluster, mode), ctx, req)
	dCached, errCached := call(newEngine(cached, mode), ctx, req)
	assert.Equal(t, err, errCached, "the cached cluster fails otherwise")
	assert.Equal(t, d, dCached, "the cached cluster decides otherwise")
	if obj := storedWorkload(req.Object); obj != nil {
		a, err := newEngine(cluster, mode).Audit(ctx, obj)
		aCached, errCached := newEngine(cached, mode).Audit(ctx, lookup.AsCached(obj))
		assert.Equal(t, err, errCached, "the audit of the cached copy fails otherwise")
		assert.Equal(t, a, aCached, "the audit of the cached copy finds otherwise")
	}
	return d, err
}

// storedWorkload decodes a Deployment or StatefulSet as if it were stored;
// nil for anything else.
func storedWorkload(raw []byte) client.Object {
	var typed struct{ Kind string }
	if json.Unmarshal(raw, &typed) != nil {
		return nil
	}
	var obj client.Object
	switch typed.Kind {
	case string(policy.KindDeployment):
		obj = &appsv1.Deployment{}
	case string(policy.KindStatefulSet):
		obj = &appsv1.StatefulSet{}
	default:
		return nil
	}
	if json.Unmarshal(raw, obj) != nil {
		return nil
	}
	return obj
}

// The cluster's own workloads, audited whole and as cached.
func TestStoredWorkloadsAuditedAlike(t *testing.T) {
	cluster := podCluster()
	ctx := context.Background()
	for _, name := range []string{"queue", "single-db", "unmanaged", "redis"} {
		sts, err := cluster.StatefulSet(ctx, "shop", name, "")
		require.NoError(t, err)
		if sts == nil {
			continue
		}
		decideAlike(t, cluster, "", Request{Object: raw(t, sts)}, func(*Engine, context.Context, Request) (Decision, error) { return Decision{}, nil })
	}
}
