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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/test/workloads"
)

// clusterDomain is the chart's default config.clusterDomain.
const clusterDomain = "cluster.local"

// redis is the seed: a stateful-multi StatefulSet with two replicas
// and a "data" mount, no serviceName and no claim template.
func redis() *appsv1.StatefulSet {
	sts := workloads.StatefulSet("redis", policy.StatefulMulti, 2)
	sts.Annotations = map[string]string{policy.AnnotationStorageSize: "1Gi"}
	sts.Spec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "redis", ContainerPort: 6379}}
	return sts
}

// TestStableIdentity follows a stateful-multi StatefulSet through the real
// StatefulSet controller, scheduler, volume binder and garbage collector:
// what statekeeper injects, the pods' identity, and the headless Service
// its reconciler keeps.
func TestStableIdentity(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "")
	ns.apply(redis()).expect(t, allowed)

	var sts appsv1.StatefulSet
	ns.get("redis", &sts)
	assert.Equal(t, "redis-headless", sts.Spec.ServiceName)
	require.Len(t, sts.Spec.VolumeClaimTemplates, 1)
	assert.Equal(t, corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources: corev1.VolumeResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
		},
		VolumeMode: ptr.To(corev1.PersistentVolumeFilesystem), // the API server's default
	}, sts.Spec.VolumeClaimTemplates[0].Spec)
	assert.Equal(t, "data", sts.Spec.VolumeClaimTemplates[0].Name)
	assert.Equal(t, string(policy.StatefulMulti), sts.Spec.Template.Labels[policy.LabelDeployType])

	firstService := ns.eventuallyHeadlessService("redis-headless", &sts, []corev1.ServicePort{
		{Name: "redis", Protocol: corev1.ProtocolTCP, Port: 6379, TargetPort: intstr.FromString("redis")},
	})

	redis0 := ns.eventuallyReadyPod("redis-0", "")
	redis1 := ns.eventuallyReadyPod("redis-1", "")
	// OrderedReady: redis-1 is created only once redis-0 is Ready
	// (timestamps have a resolution of one second, hence not After).
	assert.False(t, redis1.CreationTimestamp.Before(ptr.To(readySince(t, redis0))),
		"redis-1 created at %s, before redis-0 was Ready at %s", redis1.CreationTimestamp, readySince(t, redis0))

	fqdn := func(i int) string { return fmt.Sprintf("redis-%d.redis-headless.%s.svc.%s", i, ns.name, clusterDomain) }
	wantIdentity := func(i int) map[string]string {
		return map[string]string{
			policy.AnnotationOrdinal:       fmt.Sprint(i),
			policy.AnnotationHostname:      fmt.Sprintf("redis-%d", i),
			policy.AnnotationService:       "redis-headless",
			policy.AnnotationFQDN:          fqdn(i),
			policy.AnnotationPrimaryFQDN:   fqdn(0),
			policy.AnnotationPeers:         fqdn(0) + "," + fqdn(1),
			policy.AnnotationPeersReplicas: "2",
		}
	}
	assert.Equal(t, wantIdentity(0), identityOf(redis0))
	assert.Equal(t, wantIdentity(1), identityOf(redis1))

	claim0 := ns.eventuallyBoundClaim("data-redis-0")
	ns.eventuallyBoundClaim("data-redis-1")
	assert.Equal(t, "data-redis-0", claimOfVolume(redis0, "data"))
	assert.Equal(t, "data-redis-1", claimOfVolume(redis1, "data"))

	t.Run("a deleted pod comes back with the same identity and claim", func(t *testing.T) {
		ns := ns.in(t)
		ns.kubectl(nil, "delete", "pod", "redis-0", "--wait=false").expect(t, allowed)
		back := ns.eventuallyReadyPod("redis-0", redis0.UID)
		assert.Equal(t, wantIdentity(0), identityOf(back))
		assert.Equal(t, "data-redis-0", claimOfVolume(back, "data"))
		var sameClaim corev1.PersistentVolumeClaim
		ns.get("data-redis-0", &sameClaim)
		assert.Equal(t, claim0.UID, sameClaim.UID, "claim data-redis-0 was replaced")
	})

	t.Run("a deleted headless Service is recreated", func(t *testing.T) {
		ns := ns.in(t)
		ns.kubectl(nil, "delete", "service", "redis-headless").expect(t, allowed)
		ns.eventually("service redis-headless to be recreated", func(ctx context.Context) (bool, string, error) {
			var svc corev1.Service
			err := suite.client.Get(ctx, client.ObjectKey{Namespace: ns.name, Name: "redis-headless"}, &svc)
			if apierrors.IsNotFound(err) {
				return false, "not found", nil
			}
			return err == nil && svc.UID != firstService.UID, "still the deleted one", err
		})
		ns.eventuallyHeadlessService("redis-headless", &sts, firstService.Spec.Ports)
	})

	t.Run("deleting the StatefulSet garbage-collects the Service", func(t *testing.T) {
		ns := ns.in(t)
		ns.kubectl(nil, "delete", "statefulset", "redis", "--wait=false").expect(t, allowed)
		ns.eventually("service redis-headless to be garbage-collected", func(ctx context.Context) (bool, string, error) {
			var svc corev1.Service
			err := suite.client.Get(ctx, client.ObjectKey{Namespace: ns.name, Name: "redis-headless"}, &svc)
			if apierrors.IsNotFound(err) {
				return true, "", nil
			}
			return false, "still exists", err
		})
	})
}

// eventuallyHeadlessService waits for the Service statekeeper's reconciler
// keeps for sts (docs/spec.md §3) and checks all of it that the contract names.
func (n *namespace) eventuallyHeadlessService(name string, sts *appsv1.StatefulSet, wantPorts []corev1.ServicePort) *corev1.Service {
	n.t.Helper()
	var svc corev1.Service
	n.eventually("headless service "+name, func(ctx context.Context) (bool, string, error) {
		err := suite.client.Get(ctx, client.ObjectKey{Namespace: n.name, Name: name}, &svc)
		if apierrors.IsNotFound(err) {
			return false, "not found", nil
		}
		return err == nil, "", err
	})
	type headless struct {
		ManagedBy                string
		ClusterIP                string
		PublishNotReadyAddresses bool
		Selector                 map[string]string
		Ports                    []corev1.ServicePort
		Owners                   []metav1.OwnerReference
	}
	assert.Equal(n.t, headless{
		ManagedBy:                policy.ManagerName,
		ClusterIP:                corev1.ClusterIPNone,
		PublishNotReadyAddresses: true,
		Selector:                 sts.Spec.Selector.MatchLabels,
		Ports:                    wantPorts,
		// No blockOwnerDeletion: the local cluster enforces
		// OwnerReferencesPermissionEnforcement, and the chart grants no
		// update on statefulsets/finalizers.
		Owners: []metav1.OwnerReference{{
			APIVersion: "apps/v1", Kind: "StatefulSet", Name: sts.Name, UID: sts.UID,
			Controller: ptr.To(true),
		}},
	}, headless{
		ManagedBy:                svc.Labels[policy.LabelManagedBy],
		ClusterIP:                svc.Spec.ClusterIP,
		PublishNotReadyAddresses: svc.Spec.PublishNotReadyAddresses,
		Selector:                 svc.Spec.Selector,
		Ports:                    svc.Spec.Ports,
		Owners:                   svc.OwnerReferences,
	}, "service %s", name)
	return &svc
}

// eventuallyReadyPod waits until pod name exists, is not the pod whose UID
// was replaced (when given), and is Ready.
func (n *namespace) eventuallyReadyPod(name string, replaced types.UID) *corev1.Pod {
	n.t.Helper()
	var pod corev1.Pod
	n.eventually("pod "+name+" to be Ready", func(ctx context.Context) (bool, string, error) {
		err := suite.client.Get(ctx, client.ObjectKey{Namespace: n.name, Name: name}, &pod)
		switch {
		case apierrors.IsNotFound(err):
			return false, "not found", nil
		case err != nil:
			return false, "", err
		case pod.UID == replaced:
			return false, "still the deleted pod", nil
		case pod.DeletionTimestamp != nil:
			return false, "terminating", nil
		}
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return true, "", nil
			}
		}
		return false, fmt.Sprintf("phase %s, conditions %v", pod.Status.Phase, pod.Status.Conditions), nil
	})
	return &pod
}

// eventuallyBoundClaim waits until claim name is Bound.
func (n *namespace) eventuallyBoundClaim(name string) *corev1.PersistentVolumeClaim {
	n.t.Helper()
	var pvc corev1.PersistentVolumeClaim
	n.eventually("claim "+name+" to be Bound", func(ctx context.Context) (bool, string, error) {
		err := suite.client.Get(ctx, client.ObjectKey{Namespace: n.name, Name: name}, &pvc)
		if apierrors.IsNotFound(err) {
			return false, "not found", nil
		}
		return err == nil && pvc.Status.Phase == corev1.ClaimBound, fmt.Sprintf("phase %s", pvc.Status.Phase), err
	})
	return &pvc
}

// eventuallyPodsGone waits until no pod matching selector exists any more.
func (n *namespace) eventuallyPodsGone(selector map[string]string) {
	n.t.Helper()
	n.eventually(fmt.Sprintf("pods %v to be gone", selector), func(ctx context.Context) (bool, string, error) {
		var pods corev1.PodList
		err := suite.client.List(ctx, &pods, client.InNamespace(n.name), client.MatchingLabels(selector))
		return err == nil && len(pods.Items) == 0, fmt.Sprintf("%d left", len(pods.Items)), err
	})
}

// identityOf is the pod's statekeeper identity annotations (docs/spec.md §5).
func identityOf(pod *corev1.Pod) map[string]string {
	out := map[string]string{}
	for k, v := range pod.Annotations {
		if strings.HasPrefix(k, "statekeeper.io/") {
			out[k] = v
		}
	}
	return out
}

// readySince is when the pod last became Ready.
func readySince(t *testing.T, pod *corev1.Pod) metav1.Time {
	t.Helper()
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime
		}
	}
	require.Failf(t, "pod not Ready", "pod %s", pod.Name)
	return metav1.Time{}
}

// claimOfVolume is the claim the pod's volume named volume mounts.
func claimOfVolume(pod *corev1.Pod, volume string) string {
	for _, v := range pod.Spec.Volumes {
		if v.Name == volume && v.PersistentVolumeClaim != nil {
			return v.PersistentVolumeClaim.ClaimName
		}
	}
	return ""
}
