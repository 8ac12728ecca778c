package integration

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/test/workloads"
)

func TestScaleSubresource(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		workload client.Object
		replicas int32
		// byUpdate scales as the HPA controller does (GET + PUT of the Scale)
		// instead of kubectl's merge patch.
		byUpdate bool
		// wantMessage is the single-instance denial; empty: admitted.
		wantMessage string
	}{
		{
			name:        "kubectl scale of a stateful-single StatefulSet to 3",
			workload:    workloads.StatefulSet("db", policy.StatefulSingle, 1),
			replicas:    3,
			wantMessage: singleInstanceMessage(policy.KindStatefulSet, "db", policy.StatefulSingle, 3),
		},
		{
			name:        "kubectl scale of a stateless-single Deployment to 2",
			workload:    workloads.Deployment("web", policy.StatelessSingle, 1),
			replicas:    2,
			wantMessage: singleInstanceMessage(policy.KindDeployment, "web", policy.StatelessSingle, 2),
		},
		{
			name:        "Scale update of a stateful-single StatefulSet to 2",
			workload:    workloads.StatefulSet("db", policy.StatefulSingle, 1),
			replicas:    2,
			byUpdate:    true,
			wantMessage: singleInstanceMessage(policy.KindStatefulSet, "db", policy.StatefulSingle, 2),
		},
		{
			name:     "kubectl scale of a stateful-single StatefulSet to 0",
			workload: workloads.StatefulSet("db", policy.StatefulSingle, 1),
			replicas: 0,
		},
		{
			name:     "kubectl scale of a stateful-multi StatefulSet to 3",
			workload: workloads.StatefulSet("cache", policy.StatefulMulti, 2),
			replicas: 3,
		},
		{
			name:     "kubectl scale of a stateless-multi Deployment to 4",
			workload: workloads.Deployment("api", policy.StatelessMulti, 2),
			replicas: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tn := newTenant(t, "")
			tn.mustCreate(tt.workload)
			before := tn.specReplicas(tt.workload)
			op := func(dryRun bool) error { return tn.scale(tt.workload, tt.replicas, dryRun) }
			if tt.byUpdate {
				op = func(dryRun bool) error { return tn.scaleByUpdate(tt.workload, tt.replicas, dryRun) }
			}

			if tt.wantMessage != "" {
				requireDenial(t, tn.denied(op), denial{validateScaling, scaleKind, tt.workload.GetName(), replicasPath, tt.wantMessage})
				assert.Equal(t, before, tn.specReplicas(tt.workload), "the denied scale must not be stored")
				return
			}
			assert.Empty(t, tn.admitted(op))
			assert.Equal(t, tt.replicas, tn.specReplicas(tt.workload))
		})
	}
}

func TestHorizontalPodAutoscalerOnSingleInstanceTarget(t *testing.T) {
	t.Parallel()
	tn := newTenant(t, "")
	tn.mustCreate(workloads.StatefulSet("db", policy.StatefulSingle, 1))
	tn.mustCreate(workloads.StatefulSet("cache", policy.StatefulMulti, 1))

	tooMany := hpa("db", "db", 3)
	requireDenial(t, tn.denied(func(dryRun bool) error { return tn.create(tooMany.DeepCopy(), dryRun) }),
		denial{validateScaling, hpaKind, "db", maxReplicasPath,
			`horizontalpodautoscaler "db" targets statefulset "db", which is stateful-single: maxReplicas must be 1, got 3 [single-instance]`})
	tn.assertNotStored(tooMany)

	one := hpa("db", "db", 1)
	assert.Empty(t, tn.admitted(func(dryRun bool) error { return tn.create(one.DeepCopy(), dryRun) }))

	tn.get(one)
	one.Spec.MaxReplicas = 2
	requireDenial(t, tn.update(one, false), denial{validateScaling, hpaKind, "db", maxReplicasPath,
		`horizontalpodautoscaler "db" targets statefulset "db", which is stateful-single: maxReplicas must be 1, got 2 [single-instance]`})

	multi := hpa("cache", "cache", 3)
	assert.Empty(t, tn.admitted(func(dryRun bool) error { return tn.create(multi.DeepCopy(), dryRun) }))
}

// TestHorizontalPodAutoscalerBeforeItsSingleInstanceTarget: Helm installs
// HPAs before StatefulSets. The HPA whose target does not exist yet is
// admitted with a warning that says what will happen; creating the
// single-instance target it would scale past one is then denied, naming it.
func TestHorizontalPodAutoscalerBeforeItsSingleInstanceTarget(t *testing.T) {
	t.Parallel()
	tn := newTenant(t, "")
	warnings := tn.admitted(func(dryRun bool) error { return tn.create(hpa("db", "db", 3), dryRun) })
	assert.Equal(t, []string{`horizontalpodautoscaler "db" targets statefulset "db", which does not exist yet: ` +
		`if it is created as stateful-single, it will be denied while maxReplicas is 3; set maxReplicas to 1, or create it as stateful-multi [single-instance]`}, warnings)

	sts := workloads.StatefulSet("db", policy.StatefulSingle, 1)
	requireDenial(t, tn.denied(func(dryRun bool) error { return tn.create(sts.DeepCopy(), dryRun) }),
		denial{validateWorkloads, statefulSetKind, "db", deployTypePath,
			`statefulset "db" is stateful-single, but horizontalpodautoscaler "db" scales it up to 3 replicas: ` +
				`set its maxReplicas to 1 or delete it first [single-instance]`})
	tn.assertNotStored(sts)

	// A multi-instance target may be autoscaled.
	assert.Empty(t, tn.admitted(func(dryRun bool) error {
		return tn.create(workloads.StatefulSet("db", policy.StatefulMulti, 1), dryRun)
	}))
}

func hpa(name, statefulSet string, maxReplicas int32) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: statefulSet},
			MinReplicas:    ptr.To[int32](1),
			MaxReplicas:    maxReplicas,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{
					Name:   corev1.ResourceCPU,
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](80)},
				},
			}},
		},
	}
}

func TestQuorum(t *testing.T) {
	t.Parallel()
	quorum := func(o client.Object) client.Object {
		o.SetAnnotations(map[string]string{policy.AnnotationQuorum: "true"})
		return o
	}
	quorumMessage := func(ref string, got, below, above int) string {
		return fmt.Sprintf(`%s requires an odd number of replicas (statekeeper.io/quorum: "true") so that a quorum cannot split, got %d: use %d or %d; `+
			`if other workloads vote in the same quorum (an arbiter), declare their votes with statekeeper.io/quorum-external-votes [quorum]`,
			ref, got, below, above)
	}

	t.Run("create", func(t *testing.T) {
		t.Parallel()
		tn := newTenant(t, "")
		even := quorum(workloads.StatefulSet("zk", policy.StatefulMulti, 2))
		requireDenial(t, tn.create(even, false),
			denial{validateWorkloads, statefulSetKind, "zk", replicasPath, quorumMessage(`statefulset "zk"`, 2, 1, 3)})
		tn.assertNotStored(even)

		evenDeployment := quorum(workloads.Deployment("etcd-proxy", policy.StatelessMulti, 4))
		requireDenial(t, tn.create(evenDeployment, false),
			denial{validateWorkloads, deploymentKind, "etcd-proxy", replicasPath, quorumMessage(`deployment "etcd-proxy"`, 4, 3, 5)})

		require.NoError(t, tn.create(quorum(workloads.StatefulSet("zk", policy.StatefulMulti, 3)), false))
	})

	t.Run("scale", func(t *testing.T) {
		t.Parallel()
		tn := newTenant(t, "")
		zk := quorum(workloads.StatefulSet("zk", policy.StatefulMulti, 3))
		tn.mustCreate(zk)

		requireDenial(t, tn.denied(func(dryRun bool) error { return tn.scale(zk, 4, dryRun) }),
			denial{validateScaling, scaleKind, "zk", replicasPath, quorumMessage(`statefulset "zk"`, 4, 3, 5)})
		assert.Equal(t, int32(3), tn.specReplicas(zk))

		assert.Empty(t, tn.admitted(func(dryRun bool) error { return tn.scale(zk, 5, dryRun) }))
		assert.Equal(t, int32(5), tn.specReplicas(zk))
	})
}

// specReplicas reads the stored spec.replicas of a Deployment or StatefulSet.
func (tn *tenant) specReplicas(obj client.Object) int32 {
	tn.t.Helper()
	tn.get(obj)
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return ptr.Deref(o.Spec.Replicas, 1)
	case *appsv1.StatefulSet:
		return ptr.Deref(o.Spec.Replicas, 1)
	}
	tn.t.Fatalf("specReplicas: unsupported %T", obj)
	return 0
}
