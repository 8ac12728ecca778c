package integration

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/internal/server"
	"github.com/statekeeper/statekeeper/test/workloads"
)

// leaseTimeout bounds the wait for statekeeper to notice the Lease changed
// hands: a leader that cannot renew stops after the renew deadline (10 s).
const leaseTimeout = time.Minute

// TestLosingTheLeaseStopsOnlyTheReconcilers: another identity takes the
// Lease, as a replica that saw it expire would. statekeeper's reconcilers
// stop, without a restart: the same process keeps deciding admission
// requests. Once the Lease is free again, a new term reconciles what
// happened meanwhile.
//
// Not parallel: Go runs it before the parallel tests resume, so no other
// test needs the reconcilers while they are stopped.
func TestLosingTheLeaseStopsOnlyTheReconcilers(t *testing.T) {
	tn := newTenant(t, "")
	db := workloads.StatefulSet("db", policy.StatefulMulti, 1)
	tn.mustCreate(db)
	tn.awaitService(db)
	require.Equal(t, 1.0, leading(t), "statekeeper leads")

	setLeaseHolder(t, "intruder")
	require.Eventually(t, func() bool { return leading(t) == 0 }, leaseTimeout, settlePoll,
		"statekeeper stops leading once another identity holds the Lease")

	// The webhooks still decide: a managed create is mutated, a denial denied.
	late := workloads.StatefulSet("late", policy.StatefulMulti, 1)
	tn.mustCreate(late)
	assert.Equal(t, "late-headless", late.Spec.ServiceName, "the create was mutated")
	requireDenial(t, tn.create(workloads.Deployment("web", policy.StatelessSingle, 3), false),
		denial{validateWorkloads, deploymentKind, "web", replicasPath,
			singleInstanceMessage(policy.KindDeployment, "web", policy.StatelessSingle, 3)})

	// Nothing reconciles: a deleted Service stays deleted, a new
	// StatefulSet gets none.
	dbService := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: tn.ns, Name: policy.ServiceNameOf(db)}}
	require.NoError(t, tn.c.Delete(tn.ctx, dbService))
	hasService := func(sts *appsv1.StatefulSet) bool {
		key := client.ObjectKey{Namespace: tn.ns, Name: policy.ServiceNameOf(sts)}
		return tn.c.Get(tn.ctx, key, &corev1.Service{}) == nil
	}
	assert.Never(t, func() bool { return hasService(db) || hasService(late) }, 3*time.Second, settlePoll,
		"a Service made while another identity held the Lease")
	assert.Equal(t, "intruder", leaseHolder(t))

	// The Lease is free again: statekeeper takes it and reconciles both.
	require.NoError(t, tn.c.Delete(tn.ctx, lease()))
	tn.awaitService(db)
	tn.awaitService(late)
	assert.Equal(t, 1.0, leading(t))
	assert.Contains(t, leaseHolder(t), "_", "statekeeper's identity, hostname_uuid")
}

func lease() *coordinationv1.Lease {
	return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNamespace, Name: server.LeaderElectionID}}
}

func leaseClient(t *testing.T) client.Client {
	c, err := client.New(shared.config, client.Options{Scheme: shared.scheme, HTTPClient: shared.httpClient, Mapper: shared.mapper})
	require.NoError(t, err)
	return c
}

// setLeaseHolder writes the Lease as identity's, held for an hour.
func setLeaseHolder(t *testing.T, identity string) {
	t.Helper()
	c := leaseClient(t)
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		l := lease()
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(l), l); err != nil {
			return err
		}
		now := metav1.NewMicroTime(time.Now())
		l.Spec.HolderIdentity = ptr.To(identity)
		l.Spec.LeaseDurationSeconds = ptr.To[int32](3600)
		l.Spec.AcquireTime, l.Spec.RenewTime = &now, &now
		return c.Update(t.Context(), l)
	}))
}

func leaseHolder(t *testing.T) string {
	t.Helper()
	l := lease()
	require.NoError(t, leaseClient(t).Get(t.Context(), client.ObjectKeyFromObject(l), l))
	return ptr.Deref(l.Spec.HolderIdentity, "")
}

// leading reads statekeeper's own gauge: it runs in this process.
func leading(t *testing.T) float64 {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == server.LeadingMetric {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s metric", server.LeadingMetric)
	return 0
}
