package integration

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/test/workloads"
)

// steadyCreates is how many managed StatefulSets the steady stream creates.
const steadyCreates = 40

// TestSteadyManagedWritesMakeNoGETs: admission reads caches only. A stream of
// managed StatefulSet creates (each a mutation, a validation with the
// headless-conflict Service lookup, and a Service the reconciler creates),
// scales of them (one denied), and pods of them (each stamped from its
// owner) costs the API server no GET by statekeeper, as its audit log counts.
//
// Not parallel: Go runs it before the parallel tests resume, so everything
// statekeeper's user does meanwhile is caused by this stream.
func TestSteadyManagedWritesMakeNoGETs(t *testing.T) {
	tn := newTenant(t, "")
	// Warm-up, outside the count: the namespace reaches statekeeper's cache
	// (its very first request may read a namespace the informer has not
	// delivered yet), and the reconciler creates a Service and records an
	// Event once (its REST mapper discovers the Event API on first use).
	warm := workloads.StatefulSet("warm", policy.StatefulMulti, 0)
	tn.mustCreate(warm)
	tn.awaitService(warm)

	from := shared.audit.mark(t)
	var created []string
	statefulSets := make([]*appsv1.StatefulSet, steadyCreates)
	for i := range statefulSets {
		deployType := policy.StatefulMulti
		if i%4 == 3 {
			deployType = policy.StatefulSingle
		}
		sts := workloads.StatefulSet(fmt.Sprintf("db-%d", i), deployType, 1)
		tn.mustCreate(sts)
		require.Equal(t, sts.Name+"-headless", sts.Spec.ServiceName, "statefulset %s was not mutated", sts.Name)
		statefulSets[i] = sts
		created = append(created, sts.Spec.ServiceName)
	}
	// The reconciler has read each StatefulSet from the cache once its
	// Service exists, so the lookups below find them there too.
	for _, sts := range statefulSets {
		tn.awaitService(sts)
	}
	for _, sts := range statefulSets {
		err := tn.scale(sts, 3, false)
		if sts.Labels[policy.LabelDeployType] == string(policy.StatefulSingle) {
			requireDenial(t, err, denial{validateScaling, scaleKind, sts.Name, replicasPath,
				singleInstanceMessage(policy.KindStatefulSet, sts.Name, policy.StatefulSingle, 3)})
		} else {
			require.NoError(t, err)
		}
		pod := podOf(sts, 0)
		tn.mustCreate(pod)
		assert.Equal(t, "0", pod.Annotations[policy.AnnotationOrdinal], "pod %s was not stamped", pod.Name)
	}
	to := shared.audit.mark(t)

	requests, found := shared.audit.between(t, from, to)
	require.True(t, found, "the marks are in the audit log")
	var gets []string
	var servicesCreated []string
	byKind := map[string]int{}
	for _, e := range requests {
		if e.ObjectRef != nil {
			byKind[e.Verb+" "+e.ObjectRef.Resource]++
		}
		switch {
		case e.Verb == "get" && e.ObjectRef != nil && e.ObjectRef.Resource == "leases":
			// Leader election's own reads, should a renewal take its slow path.
		case e.Verb == "get":
			gets = append(gets, e.String())
		case e.Verb == "create" && e.ObjectRef != nil && e.ObjectRef.Resource == "services":
			servicesCreated = append(servicesCreated, e.ObjectRef.Name)
		}
	}
	// The audit log does see statekeeper: the reconciler's creates are there.
	slices.Sort(created)
	slices.Sort(servicesCreated)
	assert.Equal(t, created, servicesCreated, "services created by statekeeper's user")
	assert.Empty(t, gets, "GETs by statekeeper during %d managed creates, %d scales and %d pod creates",
		steadyCreates, steadyCreates, steadyCreates)
	t.Logf("statekeeper's requests during the stream: %d in all, %d GETs; by verb and resource: %v", len(requests), len(gets), byKind)
}

// awaitService waits until the reconciler has created the StatefulSet's
// headless Service.
func (tn *tenant) awaitService(sts *appsv1.StatefulSet) {
	tn.t.Helper()
	key := client.ObjectKey{Namespace: tn.ns, Name: policy.ServiceNameOf(sts)}
	require.Eventually(tn.t, func() bool {
		return tn.c.Get(tn.ctx, key, &corev1.Service{}) == nil
	}, settleTimeout, settlePoll, "the headless service of statefulset %s never appeared", sts.Name)
}
