//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/internal/reconciler"
	"github.com/statekeeper/statekeeper/test/workloads"
)

// TestDayTwo follows a stateful-multi StatefulSet after its first day, through
// the real StatefulSet controller, volume binder and statekeeper's
// controllers (as the chart's ServiceAccount): raising its storage size grows
// its claims, scaling it keeps its pods' peers and its disruption budget in
// step, and the claim of a new instance is grown too.
func TestDayTwo(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "")
	sts := workloads.StatefulSet("db", policy.StatefulMulti, 2)
	sts.Annotations = map[string]string{policy.AnnotationStorageSize: "1Gi"}
	ns.apply(sts).expect(t, allowed)
	ns.get("db", sts)
	for i := range 2 {
		ns.eventuallyReadyPod(fmt.Sprintf("db-%d", i), "")
		ns.eventuallyBoundClaim(fmt.Sprintf("data-db-%d", i))
	}
	budget := ns.eventuallyBudget("db", func(pdb *policyv1.PodDisruptionBudget) bool { return true })
	assert.Equal(t, policyv1.PodDisruptionBudgetSpec{
		MaxUnavailable:             ptr.To(intstr.FromInt32(1)),
		Selector:                   sts.Spec.Selector,
		UnhealthyPodEvictionPolicy: ptr.To(policyv1.AlwaysAllow),
	}, budget.Spec)
	assert.Equal(t, []metav1.OwnerReference{{
		APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: sts.UID, Controller: ptr.To(true),
	}}, budget.OwnerReferences, "owned by the StatefulSet, without blockOwnerDeletion")

	t.Run("raising storage-size grows every claim; a shrink is denied", func(t *testing.T) {
		ns := ns.in(t)
		ns.kubectl(nil, "annotate", "statefulset", "db", policy.AnnotationStorageSize+"=2Gi", "--overwrite").expect(t, allowed)
		ns.eventuallyClaimRequest("data-db-0", "2Gi")
		ns.eventuallyClaimRequest("data-db-1", "2Gi")
		ns.eventuallyEvent("db", reconciler.ReasonClaimResizeRequested, `"data-db-0" now requests 2Gi (was 1Gi)`)

		res := ns.kubectl(nil, "annotate", "statefulset", "db", policy.AnnotationStorageSize+"=1Gi", "--overwrite")
		res.expect(t, denied(policy.RuleStorageResize))
		assert.Equal(t, denialText("StatefulSet", "db", "metadata.annotations[statekeeper.io/storage-size]",
			`statefulset "db": statekeeper.io/storage-size cannot shrink from 2Gi to 1Gi, because volume claims only grow: keep 2Gi or more, `+
				`or back the data up and recreate the statefulset and its claims to use smaller volumes [storage-resize]`), res.stderr)
	})

	t.Run("scaling to 3: the peers of running pods and the new claim follow", func(t *testing.T) {
		ns := ns.in(t)
		ns.kubectl(nil, "scale", "statefulset", "db", "--replicas=3").expect(t, allowed)
		fqdn := func(i int) string { return fmt.Sprintf("db-%d.db-headless.%s.svc.%s", i, ns.name, clusterDomain) }
		for i := range 3 {
			ns.eventuallyPodAnnotations(fmt.Sprintf("db-%d", i), map[string]string{
				policy.AnnotationPeers:         fqdn(0) + "," + fqdn(1) + "," + fqdn(2),
				policy.AnnotationPeersReplicas: "3",
				policy.AnnotationPrimaryFQDN:   fqdn(0),
			})
		}
		// The claim template still says 1Gi: the new instance's claim is
		// made at 1Gi and grown once bound.
		var stored appsv1.StatefulSet
		ns.get("db", &stored)
		assert.Equal(t, "1Gi", stored.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests.Storage().String())
		ns.eventuallyClaimRequest("data-db-2", "2Gi")
	})

	t.Run("opting out removes the budget", func(t *testing.T) {
		ns := ns.in(t)
		ns.kubectl(nil, "annotate", "statefulset", "db", policy.AnnotationDisruptionBudget+"=false").expect(t, allowed)
		ns.eventually("budget db to be deleted", func(ctx context.Context) (bool, string, error) {
			err := suite.client.Get(ctx, client.ObjectKey{Namespace: ns.name, Name: "db"}, &policyv1.PodDisruptionBudget{})
			return apierrors.IsNotFound(err), "still there", client.IgnoreNotFound(err)
		})
	})
}

// TestQuorumDisruptionBudget: a quorum system keeps a majority, whatever
// its replica count (the budget follows the spec; no pod needs to run).
func TestQuorumDisruptionBudget(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "")
	sts := unboundClaims(workloads.StatefulSet("zk", policy.StatefulMulti, 3))
	sts.Annotations[policy.AnnotationQuorum] = "true"
	ns.apply(sts).expect(t, allowed)
	minAvailable := func(n int) func(*policyv1.PodDisruptionBudget) bool {
		return func(pdb *policyv1.PodDisruptionBudget) bool {
			return pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.IntValue() == n && pdb.Spec.MaxUnavailable == nil
		}
	}
	ns.eventuallyBudget("zk", minAvailable(2))
	ns.kubectl(nil, "scale", "statefulset", "zk", "--replicas=5").expect(t, allowed)
	ns.eventuallyBudget("zk", minAvailable(3))
	ns.eventuallyEvent("zk", reconciler.ReasonBudgetUpdated, "minAvailable 3")
	// At one replica a budget would refuse every eviction: it goes.
	ns.kubectl(nil, "scale", "statefulset", "zk", "--replicas=1").expect(t, allowed)
	ns.eventuallyEvent("zk", reconciler.ReasonBudgetDeleted, "would refuse every eviction")
	err := suite.client.Get(t.Context(), client.ObjectKey{Namespace: ns.name, Name: "zk"}, &policyv1.PodDisruptionBudget{})
	assert.True(t, apierrors.IsNotFound(err), "a quorum budget at one replica: %v", err)
}

// TestDisruptionBudgetOfTheUser: a budget the user wrote for the pods wins,
// since the eviction API refuses pods covered by two; statekeeper says so.
func TestDisruptionBudgetOfTheUser(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "")
	mine := &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: objectMeta("mine"),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(2)),
			Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "cache"}},
		},
	}
	ns.create(mine).expect(t, allowed)
	ns.apply(unboundClaims(workloads.StatefulSet("cache", policy.StatefulMulti, 0))).expect(t, allowed)
	ns.eventuallyEvent("cache", reconciler.ReasonBudgetForeign, `"mine"`)
	err := suite.client.Get(t.Context(), client.ObjectKey{Namespace: ns.name, Name: "cache"}, &policyv1.PodDisruptionBudget{})
	assert.True(t, apierrors.IsNotFound(err), "statekeeper created a second budget: %v", err)

	// Without the user's, statekeeper's appears.
	ns.kubectl(nil, "delete", "pdb", "mine").expect(t, allowed)
	ns.eventuallyBudget("cache", func(pdb *policyv1.PodDisruptionBudget) bool { return pdb.Spec.MaxUnavailable != nil })
}

// TestStorageClassThatCannotExpand: growth is refused naming the class.
func TestStorageClassThatCannotExpand(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "")
	class := &storagev1.StorageClass{
		ObjectMeta:  metav1.ObjectMeta{Name: ns.name + "-fixed"},
		Provisioner: "kubernetes.io/no-provisioner",
	}
	require.NoError(t, suite.client.Create(t.Context(), class))
	t.Cleanup(func() { _ = suite.client.Delete(context.Background(), class) })

	sts := workloads.StatefulSet("fixed", policy.StatefulSingle, 0)
	sts.Annotations = map[string]string{policy.AnnotationStorageClass: class.Name, policy.AnnotationStorageSize: "1Gi"}
	ns.apply(sts).expect(t, allowed)
	res := ns.eventuallyDecision(denied(policy.RuleStorageResize), nil,
		"annotate", "statefulset", "fixed", policy.AnnotationStorageSize+"=3Gi", "--overwrite")
	assert.Equal(t, denialText("StatefulSet", "fixed", "metadata.annotations[statekeeper.io/storage-size]",
		fmt.Sprintf(`statefulset "fixed": statekeeper.io/storage-size cannot grow to 3Gi: storage class %q of claim template "data" does not allow volume expansion `+
			`(allowVolumeExpansion is not true); set allowVolumeExpansion: true on the class if its provisioner can expand volumes, or keep 1Gi [storage-resize]`,
			class.Name)), res.stderr)
}

// eventuallyBudget waits for the budget name to satisfy ok.
func (n *namespace) eventuallyBudget(name string, ok func(*policyv1.PodDisruptionBudget) bool) *policyv1.PodDisruptionBudget {
	n.t.Helper()
	var pdb policyv1.PodDisruptionBudget
	n.eventually("disruption budget "+name, func(ctx context.Context) (bool, string, error) {
		err := suite.client.Get(ctx, client.ObjectKey{Namespace: n.name, Name: name}, &pdb)
		if apierrors.IsNotFound(err) {
			return false, "not found", nil
		}
		return err == nil && ok(&pdb), fmt.Sprintf("%+v", pdb.Spec), err
	})
	return &pdb
}

// eventuallyClaimRequest waits until claim name requests size.
func (n *namespace) eventuallyClaimRequest(name, size string) {
	n.t.Helper()
	n.eventually("claim "+name+" to request "+size, func(ctx context.Context) (bool, string, error) {
		var pvc corev1.PersistentVolumeClaim
		err := suite.client.Get(ctx, client.ObjectKey{Namespace: n.name, Name: name}, &pvc)
		if apierrors.IsNotFound(err) {
			return false, "not found", nil
		}
		got := pvc.Spec.Resources.Requests.Storage().String()
		return err == nil && got == size, "requests " + got + ", phase " + string(pvc.Status.Phase), err
	})
}

// eventuallyPodAnnotations waits until pod name carries want (among others).
func (n *namespace) eventuallyPodAnnotations(name string, want map[string]string) {
	n.t.Helper()
	n.eventually("annotations of pod "+name, func(ctx context.Context) (bool, string, error) {
		var pod corev1.Pod
		err := suite.client.Get(ctx, client.ObjectKey{Namespace: n.name, Name: name}, &pod)
		if apierrors.IsNotFound(err) {
			return false, "not found", nil
		}
		for k, v := range want {
			if pod.Annotations[k] != v {
				return false, fmt.Sprintf("%s=%q", k, pod.Annotations[k]), err
			}
		}
		return err == nil, "", err
	})
}

// eventuallyEvent waits for an events.k8s.io Event about the object named
// regarding with reason, whose note contains text.
func (n *namespace) eventuallyEvent(regarding, reason, text string) {
	n.t.Helper()
	n.eventually(fmt.Sprintf("event %s on %s", reason, regarding), func(ctx context.Context) (bool, string, error) {
		var list eventsv1.EventList
		if err := suite.client.List(ctx, &list, client.InNamespace(n.name)); err != nil {
			return false, "", err
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Name == regarding && e.Reason == reason && strings.Contains(e.Note, text) {
				return true, "", nil
			}
			seen = append(seen, e.Reason+": "+e.Note)
		}
		return false, strings.Join(seen, "; "), nil
	})
}

// TestDeletionProtection: deleting a protected workload that runs with
// claims is refused with the way out, which then works; the namespace label
// protects every managed workload of the namespace; warn mode warns.
func TestDeletionProtection(t *testing.T) {
	t.Parallel()
	protectedDB := func(name string) *appsv1.StatefulSet {
		sts := unboundClaims(workloads.StatefulSet(name, policy.StatefulSingle, 1))
		sts.Annotations[policy.AnnotationProtect] = "true"
		return sts
	}

	t.Run("protected by its annotation", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, "")
		ns.create(protectedDB("db")).expect(t, allowed)
		res := ns.kubectl(nil, "delete", "statefulset", "db", "--wait=false")
		res.expect(t, denied(policy.RuleDeletionProtection))
		assert.Equal(t, denialText("StatefulSet", "db", "metadata.annotations[statekeeper.io/protect]",
			`statefulset "db" is protected from deletion (statekeeper.io/protect: "true" on the statefulset) and is running with persistent volumes: `+
				`scale it to 0 first (kubectl scale statefulset db --replicas=0), wait for its pods to stop, then delete it [deletion-protection]`), res.stderr)

		ns.kubectl(nil, "scale", "statefulset", "db", "--replicas=0").expect(t, allowed)
		ns.eventuallyPodsGone(map[string]string{"app": "db"})
		ns.eventuallyDecision(allowed, nil, "delete", "statefulset", "db", "--wait=false")
	})

	t.Run("protected by its namespace's label", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, "")
		require.NoError(t, runKubectl(t.Context(), "", "label", "namespace", ns.name, policy.LabelProtect+"=true").err)
		ns.create(unboundClaims(workloads.StatefulSet("db", policy.StatefulSingle, 1))).expect(t, allowed)
		ns.create(workloads.Deployment("web", policy.StatelessMulti, 1)).expect(t, allowed)
		ns.eventuallyDecision(denied(policy.RuleDeletionProtection), nil, "delete", "statefulset", "db", "--wait=false")
		// No volumes, nothing to protect.
		ns.kubectl(nil, "delete", "deployment", "web", "--wait=false").expect(t, allowed)
		// At rest it can go, and the namespace with it.
		ns.kubectl(nil, "scale", "statefulset", "db", "--replicas=0").expect(t, allowed)
		ns.eventuallyPodsGone(map[string]string{"app": "db"})
		ns.eventuallyDecision(allowed, nil, "delete", "statefulset", "db", "--wait=false")
	})

	t.Run("warn mode warns", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, policy.ModeWarn)
		ns.create(protectedDB("db")).expect(t, allowed)
		ns.kubectl(nil, "delete", "statefulset", "db", "--wait=false").expect(t, warned(policy.RuleDeletionProtection))
	})
}

// TestRecreateOnlyWhereUnset: a single-instance Deployment with a
// ReadWriteOnce claim gets Recreate when its manifest leaves the strategy
// out; one it spells out (client- or server-side apply) is kept, warned.
func TestRecreateOnlyWhereUnset(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "")
	withClaim := func(name string) *appsv1.Deployment {
		d := workloads.Deployment(name, policy.StatelessSingle, 1)
		workloads.MountClaim(&d.Spec.Template.Spec, name+"-data")
		return d
	}
	strategyOf := func(name string) appsv1.DeploymentStrategy {
		var d appsv1.Deployment
		ns.get(name, &d)
		return d.Spec.Strategy
	}

	ns.apply(withClaim("unset")).expect(t, allowed)
	assert.Equal(t, appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}, strategyOf("unset"))

	explicit := withClaim("explicit")
	explicit.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType}
	ns.apply(explicit).expect(t, warned(policy.RuleRecreateStrategy))
	assert.Equal(t, appsv1.RollingUpdateDeploymentStrategyType, strategyOf("explicit").Type)
	// Re-applying the same manifest changes nothing: no perpetual diff. An
	// UPDATE that changes nothing statekeeper reads is not sent to it (the
	// chart's admission policy decides it), so it is not warned again.
	ns.apply(explicit).expect(t, allowed)
	assert.Equal(t, appsv1.RollingUpdateDeploymentStrategyType, strategyOf("explicit").Type)

	serverSide := withClaim("server-side")
	serverSide.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType}
	ns.kubectl([]client.Object{serverSide}, "apply", "--server-side", "-f", "-").expect(t, warned(policy.RuleRecreateStrategy))
	assert.Equal(t, appsv1.RollingUpdateDeploymentStrategyType, strategyOf("server-side").Type)
}
