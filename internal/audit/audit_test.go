package audit_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/statekeeper/statekeeper/internal/audit"
	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/internal/review"
	"github.com/statekeeper/statekeeper/test/workloads"
)

// cluster holds the audit cases in one namespace per mode; off and an
// excluded namespace hold them too, and must not be audited.
func cluster(t *testing.T) client.Client {
	t.Helper()
	b := fake.NewClientBuilder().WithScheme(scheme.Scheme)
	for _, ns := range []struct {
		name string
		mode policy.Mode
	}{{"enforced", ""}, {"warned", policy.ModeWarn}, {"audited", policy.ModeAudit}, {"skipped", policy.ModeOff}, {"kube-system", ""}} {
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.name}}
		if ns.mode != "" {
			n.Labels = map[string]string{policy.LabelMode: string(ns.mode)}
		}
		b.WithObjects(n)
		objects, _ := workloads.AuditCases()
		for _, obj := range objects {
			obj.SetNamespace(ns.name)
			obj.SetUID(types.UID(ns.name + "/" + obj.GetName() + "/" + fmt.Sprintf("%T", obj)))
			b.WithObjects(obj)
		}
	}
	return b.Build()
}

func engineOf(s *audit.Snapshot) *review.Engine {
	return review.New(s.Lookup(), review.Settings{ExcludedNamespaces: []string{"kube-system"}, ClusterDomain: "cluster.local"})
}

// Every rule of the list is found, with the rule's own message, in
// each mode that is not off: the mode decides what admission does, not
// whether a rule is broken.
func TestNamespaceFindsEveryCase(t *testing.T) {
	snap, err := audit.Read(t.Context(), cluster(t), "")
	require.NoError(t, err)
	engine := engineOf(snap)
	_, want := workloads.AuditCases()
	for _, ns := range []string{"enforced", "warned", "audited"} {
		t.Run(ns, func(t *testing.T) {
			a, err := audit.Namespace(t.Context(), engine, snap, ns)
			require.NoError(t, err)
			var got []workloads.Finding
			for _, f := range a.Findings {
				got = append(got, workloads.Finding{Kind: f.Object.Kind, Name: f.Object.Name, Rule: f.Rule, Result: string(f.Result)})
				assert.Equal(t, ns, f.Object.Namespace)
				assert.NotEmpty(t, f.Object.UID)
			}
			assert.ElementsMatch(t, want, got)
			// Every managed object is audited, the unmanaged one is not.
			assert.Len(t, a.Audited, 11)
			for _, o := range a.Audited {
				assert.NotEqual(t, "unmanaged", o.Name)
			}
		})
	}
	for _, ns := range []string{"skipped", "kube-system"} {
		a, err := audit.Namespace(t.Context(), engine, snap, ns)
		require.NoError(t, err)
		assert.Empty(t, a.Audited, ns)
		assert.Empty(t, a.Findings, ns)
	}
}

// The findings carry admission's own words, field and rule.
func TestFindingMessages(t *testing.T) {
	snap, err := audit.Read(t.Context(), cluster(t), "enforced")
	require.NoError(t, err)
	assert.Equal(t, []string{"enforced"}, snap.Namespaces())
	a, err := audit.Namespace(t.Context(), engineOf(snap), snap, "enforced")
	require.NoError(t, err)
	byName := map[string]audit.Finding{}
	for _, f := range a.Findings {
		byName[f.Object.Kind+"/"+f.Object.Name] = f
	}
	assert.Equal(t, audit.Finding{
		Object: audit.Object{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "enforced", Name: "single-web", UID: "enforced/single-web/*v1.Deployment"},
		Rule:   policy.RuleSingleInstance, Result: audit.Fail, Field: "spec.replicas",
		Message: `deployment "single-web" is stateless-single: replicas must be 0 or 1, got 2`,
	}, byName["Deployment/single-web"])
	assert.Equal(t, audit.Finding{
		Object: audit.Object{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler", Namespace: "enforced", Name: "single-db",
			UID: "enforced/single-db/*v2.HorizontalPodAutoscaler"},
		Rule: policy.RuleSingleInstance, Result: audit.Fail, Field: "spec.maxReplicas",
		Message: `horizontalpodautoscaler "single-db" targets statefulset "single-db", which is stateful-single: maxReplicas must be 1, got 5`,
	}, byName["HorizontalPodAutoscaler/single-db"])
	assert.Equal(t, `deployment "rwo" runs 2 replicas but mounts ReadWriteOnce claim "rwo-data" (volume "data"), which instances on other nodes cannot attach: `+
		`use a ReadWriteMany claim, or run it as a stateful-multi StatefulSet for one volume per instance`, byName["Deployment/rwo"].Message)
}
