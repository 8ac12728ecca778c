package audit

import (
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/internal/review"
	"github.com/statekeeper/statekeeper/test/workloads"
)

// An Event per new finding, none on later passes while it stays, a new one
// when its message changes; the gauge follows the current findings.
func TestReconcileAnnouncesOnceAndCounts(t *testing.T) {
	web := workloads.Deployment("web", policy.StatelessSingle, 3)
	web.Namespace, web.UID = "shop", "uid-web"
	c := fake.NewClientBuilder().WithScheme(scheme.Scheme).
		WithObjects(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, web).Build()

	snap, err := Read(t.Context(), c, "")
	require.NoError(t, err)
	engine := review.New(snap.Lookup(), review.Settings{ClusterDomain: "cluster.local"})
	recorder := events.NewFakeRecorder(10)
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg)
	require.NoError(t, err)
	clock := time.Unix(1_700_000_000, 0)
	a := &Controller{
		engine: engine, source: snap, recorder: recorder, metrics: metrics, interval: time.Hour, log: logr.Discard(),
		state: map[string]*namespaceState{}, now: func() time.Time { return clock },
	}
	pass := func() reconcile.Result {
		t.Helper()
		res, err := a.Reconcile(t.Context(), reconcile.Request{NamespacedName: types.NamespacedName{Name: "shop"}})
		require.NoError(t, err)
		return res
	}

	assert.Equal(t, reconcile.Result{RequeueAfter: time.Hour}, pass())
	assert.Equal(t, []string{`Warning single-instance deployment "web" is stateless-single: replicas must be 0 or 1, got 3 [single-instance]`}, drain(recorder))
	assert.Equal(t, map[string]float64{"shop/single-instance/fail": 1}, gauges(t, reg))

	// A replica that stops leading forgets its counts, and counts anew in
	// its next term.
	metrics.Forget()
	assert.Empty(t, gauges(t, reg))
	metrics.set("shop", map[[2]string]int{{"single-instance", "fail"}: 1})
	assert.Equal(t, map[string]float64{"shop/single-instance/fail": 1}, gauges(t, reg))

	// Too soon after the last pass: put off, not audited.
	clock = clock.Add(time.Second)
	assert.Equal(t, reconcile.Result{RequeueAfter: time.Second}, pass())

	clock = clock.Add(time.Minute)
	pass()
	assert.Empty(t, drain(recorder), "an unchanged finding is announced again")

	// Another replica count: a new message, a new Event.
	web.Spec.Replicas = ptr.To[int32](4)
	a.source = reread(t, web)
	a.engine = review.New(a.source.(*Snapshot).Lookup(), review.Settings{ClusterDomain: "cluster.local"})
	clock = clock.Add(time.Minute)
	pass()
	assert.Equal(t, []string{`Warning single-instance deployment "web" is stateless-single: replicas must be 0 or 1, got 4 [single-instance]`}, drain(recorder))

	// Fixed: no Event, and the gauge's series is gone.
	web.Spec.Replicas = ptr.To[int32](1)
	a.source = reread(t, web)
	a.engine = review.New(a.source.(*Snapshot).Lookup(), review.Settings{ClusterDomain: "cluster.local"})
	clock = clock.Add(time.Minute)
	pass()
	assert.Empty(t, drain(recorder))
	assert.Empty(t, gauges(t, reg))
}

func reread(t *testing.T, objects ...client.Object) *Snapshot {
	t.Helper()
	c := fake.NewClientBuilder().WithScheme(scheme.Scheme).
		WithObjects(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}).WithObjects(objects...).Build()
	snap, err := Read(t.Context(), c, "")
	require.NoError(t, err)
	return snap
}

func drain(r *events.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-r.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// gauges reads statekeeper_audit_violations by resource_namespace/rule/result.
func gauges(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != ViolationsMetric {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out[labels["resource_namespace"]+"/"+labels["rule"]+"/"+labels["result"]] = m.GetGauge().GetValue()
		}
	}
	return out
}
