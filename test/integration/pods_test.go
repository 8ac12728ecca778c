package integration

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/test/workloads"
)

// envtest runs no StatefulSet controller: the tests create each pod as the
// controller would, named <statefulset>-<ordinal> and controlled by it.

func TestPodsOfStatefulStatefulSetsAreStamped(t *testing.T) {
	t.Parallel()
	tn := newTenant(t, "")

	redis := workloads.StatefulSet("redis", policy.StatefulMulti, 2)
	tn.mustCreate(redis)
	zk := workloads.StatefulSet("zk", policy.StatefulMulti, 3)
	zk.Annotations = map[string]string{policy.AnnotationInjectEnv: "true"}
	zk.Spec.ServiceName = "zk-peers"
	zk.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: 1}
	zk.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "init", Image: workloads.Image}}
	zk.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{
		{Name: policy.EnvService, Value: "zk-client"}, {Name: "ZOO_LOG_LEVEL", Value: "INFO"},
	}
	tn.mustCreate(zk)

	fqdn := func(host, service string) string { return host + "." + service + "." + tn.ns + ".svc.cluster.local" }
	t.Run("stateful-multi", func(t *testing.T) {
		tn := tn.in(t)
		pod := tn.createStamped(podOf(redis, 1))
		peers := fqdn("redis-0", "redis-headless") + "," + fqdn("redis-1", "redis-headless")
		assert.Equal(t, map[string]string{
			policy.AnnotationOrdinal:       "1",
			policy.AnnotationHostname:      "redis-1",
			policy.AnnotationService:       "redis-headless",
			policy.AnnotationFQDN:          fqdn("redis-1", "redis-headless"),
			policy.AnnotationPrimaryFQDN:   fqdn("redis-0", "redis-headless"),
			policy.AnnotationPeers:         peers,
			policy.AnnotationPeersReplicas: "2",
		}, pod.Annotations)
		assert.Empty(t, pod.Spec.Containers[0].Env, "redis does not ask for the identity as env")
	})
	t.Run("inject-env keeps the variable the user set", func(t *testing.T) {
		tn := tn.in(t)
		pod := tn.createStamped(podOf(zk, 2))
		peers := fqdn("zk-1", "zk-peers") + "," + fqdn("zk-2", "zk-peers") + "," + fqdn("zk-3", "zk-peers")
		assert.Equal(t, map[string]string{
			policy.AnnotationOrdinal:       "2",
			policy.AnnotationHostname:      "zk-2",
			policy.AnnotationService:       "zk-peers",
			policy.AnnotationFQDN:          fqdn("zk-2", "zk-peers"),
			policy.AnnotationPrimaryFQDN:   fqdn("zk-1", "zk-peers"),
			policy.AnnotationPeers:         peers,
			policy.AnnotationPeersReplicas: "3",
		}, pod.Annotations)
		assert.Equal(t, []corev1.EnvVar{
			{Name: policy.EnvOrdinal, Value: "2"},
			{Name: policy.EnvFQDN, Value: fqdn("zk-2", "zk-peers")},
			{Name: policy.EnvPrimaryFQDN, Value: fqdn("zk-1", "zk-peers")},
			{Name: policy.EnvService, Value: "zk-peers"},
			{Name: policy.EnvPeers, Value: peers},
		}, pod.Spec.InitContainers[0].Env)
		assert.Equal(t, []corev1.EnvVar{
			{Name: policy.EnvService, Value: "zk-client"},
			{Name: "ZOO_LOG_LEVEL", Value: "INFO"},
			{Name: policy.EnvOrdinal, Value: "2"},
			{Name: policy.EnvFQDN, Value: fqdn("zk-2", "zk-peers")},
			{Name: policy.EnvPrimaryFQDN, Value: fqdn("zk-1", "zk-peers")},
			{Name: policy.EnvPeers, Value: peers},
		}, pod.Spec.Containers[0].Env)
	})
}

func TestPodsStatekeeperDoesNotManageAreStoredUnchanged(t *testing.T) {
	t.Parallel()
	tn := newTenant(t, "")

	// statekeeper's cache sees StatefulSets in the order they were written
	// (one watch): once it stamps the pods of "marker", created last, it
	// knows "plain", and leaving plain's pod alone is its decision, not a
	// cache that lags.
	plain := workloads.StatefulSet("plain", "", 1)
	plain.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	tn.mustCreate(plain)
	marker := workloads.StatefulSet("marker", policy.StatefulSingle, 1)
	tn.mustCreate(marker)
	tn.createStamped(podOf(marker, 0))

	bare := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "debug", Labels: map[string]string{"app": "debug"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: workloads.Image}}},
	}
	for _, sent := range []*corev1.Pod{podOf(plain, 0), bare} {
		t.Run(sent.Name, func(t *testing.T) {
			tn := tn.in(t)
			pod := sent.DeepCopy()
			tn.mustCreate(pod)
			tn.get(pod)
			assert.Empty(t, pod.Annotations)
			assert.Equal(t, sent.Labels, pod.Labels)
			assert.Empty(t, pod.Spec.Containers[0].Env)
		})
	}
}

// podOf is pod ordinal of the stored sts, as the StatefulSet controller
// makes it: the template, the pod-index label, a claim per claim template,
// and sts as its controller.
func podOf(sts *appsv1.StatefulSet, ordinal int) *corev1.Pod {
	name := sts.Name + "-" + strconv.Itoa(ordinal)
	labels := map[string]string{appsv1.PodIndexLabel: strconv.Itoa(ordinal)}
	for k, v := range sts.Spec.Template.Labels {
		labels[k] = v
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "StatefulSet", Name: sts.Name, UID: sts.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: *sts.Spec.Template.Spec.DeepCopy(),
	}
	for _, claim := range sts.Spec.VolumeClaimTemplates {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
			Name: claim.Name,
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
				ClaimName: claim.Name + "-" + name,
			}},
		})
	}
	return pod
}

// createStamped creates pod once statekeeper stamps its dry run (its cache
// may not hold the owner the test just created: the pod would then be
// admitted unstamped, by design) and returns the stored pod.
func (tn *tenant) createStamped(pod *corev1.Pod) *corev1.Pod {
	tn.t.Helper()
	tn.settle(func(bool) error {
		probe := pod.DeepCopy()
		if err := tn.create(probe, true); err != nil {
			return err
		}
		if probe.Annotations[policy.AnnotationFQDN] == "" {
			return fmt.Errorf("pod %q came back unstamped", pod.Name)
		}
		return nil
	}, func(err error) bool { return err == nil })
	stored := pod.DeepCopy()
	tn.mustCreate(stored)
	tn.get(stored)
	return stored
}

// TestPodsUnderAClusterIPServiceGetOnlyTrueNames: a StatefulSet whose
// serviceName is its chart's ClusterIP Service (headless-conflict, a
// warning) gets pods stamped with what is true: no FQDN, primary FQDN or
// peers, which would never resolve.
func TestPodsUnderAClusterIPServiceGetOnlyTrueNames(t *testing.T) {
	t.Parallel()
	tn := newTenant(t, "")
	tn.mustCreate(service("memcached", ""))
	memcached := workloads.StatefulSet("memcached", policy.StatefulSingle, 1)
	memcached.Spec.ServiceName = "memcached"
	create := func(dryRun bool) error { return tn.create(memcached.DeepCopy(), dryRun) }
	tn.warned(create, policy.RuleHeadlessConflict)
	tn.get(memcached)

	// statekeeper reads the Service from its cache: settle until it has it.
	sent := podOf(memcached, 0)
	tn.settle(func(bool) error {
		probe := sent.DeepCopy()
		if err := tn.create(probe, true); err != nil {
			return err
		}
		if probe.Annotations[policy.AnnotationOrdinal] == "" || probe.Annotations[policy.AnnotationFQDN] != "" {
			return fmt.Errorf("pod %q came back stamped with %v", sent.Name, probe.Annotations)
		}
		return nil
	}, func(err error) bool { return err == nil })
	pod := sent.DeepCopy()
	tn.mustCreate(pod)
	tn.get(pod)
	assert.Equal(t, map[string]string{
		policy.AnnotationOrdinal: "0", policy.AnnotationHostname: "memcached-0", policy.AnnotationService: "memcached",
	}, pod.Annotations)
}
