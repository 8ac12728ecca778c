package integration

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/test/workloads"
)

const updatedImage = "registry.k8s.io/pause:3.9"

// defaultStrategy is what the API server defaults a Deployment's strategy to.
var defaultStrategy = appsv1.DeploymentStrategy{
	Type: appsv1.RollingUpdateDeploymentStrategyType,
	RollingUpdate: &appsv1.RollingUpdateDeployment{
		MaxUnavailable: ptr.To(intstr.FromString("25%")),
		MaxSurge:       ptr.To(intstr.FromString("25%")),
	},
}

var recreateStrategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}

func TestStatefulSetCreateStoresInjectedFieldsAndUpdateKeepsThem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		statefulSet   func() *appsv1.StatefulSet
		wantService   string
		wantTemplates []corev1.PersistentVolumeClaim
	}{
		{
			name:          "stateful-single gets the headless Service name and a default claim",
			statefulSet:   func() *appsv1.StatefulSet { return workloads.StatefulSet("db", policy.StatefulSingle, 1) },
			wantService:   "db-headless",
			wantTemplates: []corev1.PersistentVolumeClaim{storedClaimTemplate("data", "1Gi", "")},
		},
		{
			name: "stateful-multi takes size and class from its annotations",
			statefulSet: func() *appsv1.StatefulSet {
				s := workloads.StatefulSet("cache", policy.StatefulMulti, 3)
				s.Annotations = map[string]string{policy.AnnotationStorageSize: "5Gi", policy.AnnotationStorageClass: "fast"}
				return s
			},
			wantService:   "cache-headless",
			wantTemplates: []corev1.PersistentVolumeClaim{storedClaimTemplate("data", "5Gi", "fast")},
		},
		{
			name: "the user's serviceName and claim template are kept, only the unmatched mount is added",
			statefulSet: func() *appsv1.StatefulSet {
				s := workloads.StatefulSet("queue", policy.StatefulMulti, 2)
				s.Spec.ServiceName = "queue-peers"
				own := workloads.Claim("data", corev1.ReadWriteMany)
				s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{*own}
				main := &s.Spec.Template.Spec.Containers[0]
				main.VolumeMounts = append(main.VolumeMounts, corev1.VolumeMount{Name: "logs", MountPath: "/logs"})
				return s
			},
			wantService: "queue-peers",
			wantTemplates: []corev1.PersistentVolumeClaim{
				func() corev1.PersistentVolumeClaim {
					own := storedClaimTemplate("data", "1Gi", "")
					own.Annotations = nil // the user's, not injected
					own.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
					return own
				}(),
				storedClaimTemplate("logs", "1Gi", ""),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tn := newTenant(t, "")
			sent := tt.statefulSet()
			deployType := policy.DeployType(sent.Labels[policy.LabelDeployType])
			wantLabels := withDeployTypeLabel(sent.Spec.Template.Labels, deployType)

			created := sent.DeepCopy()
			assert.Empty(t, tn.admitted(func(dryRun bool) error { return tn.create(created.DeepCopy(), dryRun) }))
			stored := tn.storedStatefulSet(sent.Name)
			assert.Equal(t, tt.wantService, stored.Spec.ServiceName)
			assert.Equal(t, tt.wantTemplates, stored.Spec.VolumeClaimTemplates)
			assert.Equal(t, wantLabels, stored.Spec.Template.Labels)

			// An ordinary update (new image, other replicas) is admitted and
			// changes nothing statekeeper owns.
			stored.Spec.Template.Spec.Containers[0].Image = updatedImage
			if !deployType.Single() {
				stored.Spec.Replicas = ptr.To[int32](5)
			}
			require.NoError(t, tn.update(stored, false))
			tn.get(stored)
			assert.Equal(t, updatedImage, stored.Spec.Template.Spec.Containers[0].Image)
			assert.Equal(t, tt.wantService, stored.Spec.ServiceName)
			assert.Equal(t, tt.wantTemplates, stored.Spec.VolumeClaimTemplates)
			assert.Equal(t, wantLabels, stored.Spec.Template.Labels)
		})
	}
}

// surgeOne is a RollingUpdate with other parameters than the API server's
// defaults: a strategy the manifest wrote, whatever client sent it.
var surgeOne = appsv1.DeploymentStrategy{
	Type: appsv1.RollingUpdateDeploymentStrategyType,
	RollingUpdate: &appsv1.RollingUpdateDeployment{
		MaxSurge: ptr.To(intstr.FromInt32(1)), MaxUnavailable: ptr.To(intstr.FromString("25%")),
	},
}

func withStrategy(d *appsv1.Deployment, s appsv1.DeploymentStrategy) *appsv1.Deployment {
	d.Spec.Strategy = s
	return d
}

func TestDeploymentCreateAndUpdateSetRecreateForSingleInstanceWithReadWriteOnceClaim(t *testing.T) {
	t.Parallel()
	tn := newTenant(t, "")
	// The ReadWriteMany claim is written first: once statekeeper's cache holds
	// the ReadWriteOnce claim (seen below as Recreate), it holds both, so the
	// rows that expect no Recreate are not passing merely on a stale cache.
	tn.mustCreate(workloads.Claim("shared", corev1.ReadWriteMany))
	tn.mustCreate(workloads.Claim("exclusive", corev1.ReadWriteOnce))
	tn.awaitClaimInCache("exclusive")

	tests := []struct {
		name         string
		deployment   *appsv1.Deployment
		wantStrategy appsv1.DeploymentStrategy
		wantWarnings []string
	}{
		{
			name:         "stateless-single with a ReadWriteOnce claim",
			deployment:   withClaimVolume(workloads.Deployment("single-rwo", policy.StatelessSingle, 1), "exclusive"),
			wantStrategy: recreateStrategy,
		},
		{
			name:         "stateless-single with a ReadWriteOnce claim and a RollingUpdate the manifest sets is warned, not changed",
			deployment:   withStrategy(withClaimVolume(workloads.Deployment("single-rolling", policy.StatelessSingle, 1), "exclusive"), surgeOne),
			wantStrategy: surgeOne,
			wantWarnings: []string{`deployment "single-rolling" is stateless-single and mounts a single-node claim, but its manifest sets a RollingUpdate strategy, ` +
				`which statekeeper leaves as written: a rolling update starts the new pod while the old one still holds the volume, and waits for it; ` +
				`set strategy.type: Recreate, or rollingUpdate.maxSurge: 0 [recreate-strategy]`},
		},
		{
			name:         "stateless-single with a ReadWriteMany claim",
			deployment:   withClaimVolume(workloads.Deployment("single-rwx", policy.StatelessSingle, 1), "shared"),
			wantStrategy: defaultStrategy,
		},
		{
			name:         "stateless-single without a claim",
			deployment:   workloads.Deployment("single-none", policy.StatelessSingle, 1),
			wantStrategy: defaultStrategy,
		},
		{
			name:         "stateless-multi with a ReadWriteOnce claim is warned, not changed",
			deployment:   withClaimVolume(workloads.Deployment("multi-rwo", policy.StatelessMulti, 3), "exclusive"),
			wantStrategy: defaultStrategy,
			wantWarnings: []string{`deployment "multi-rwo" runs 3 replicas but mounts ReadWriteOnce claim "exclusive" (volume "data"), ` +
				`which instances on other nodes cannot attach: use a ReadWriteMany claim, or run it as a stateful-multi StatefulSet for one volume per instance [shared-claim]`},
		},
		{
			name:         "stateless-multi without a claim",
			deployment:   workloads.Deployment("multi-none", policy.StatelessMulti, 3),
			wantStrategy: defaultStrategy,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tn := tn.in(t)
			sent := tt.deployment
			created := sent.DeepCopy()
			tn.warnings.take()
			require.NoError(t, tn.create(created, false))
			warnings := tn.warnings.take()
			assert.Equal(t, tt.wantWarnings, warnings)
			stored := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: sent.Name}}
			tn.get(stored)
			assert.Equal(t, tt.wantStrategy, stored.Spec.Strategy)
			assert.Equal(t, sent.Spec.Template.Labels, stored.Spec.Template.Labels)

			// `kubectl replace` of the original manifest with a new image:
			// the API server defaults the strategy again, statekeeper decides again.
			replaced := sent.DeepCopy()
			replaced.Namespace = tn.ns
			replaced.ResourceVersion = stored.ResourceVersion
			replaced.Spec.Template.Spec.Containers[0].Image = updatedImage
			require.NoError(t, tn.update(replaced, false))
			tn.get(stored)
			assert.Equal(t, updatedImage, stored.Spec.Template.Spec.Containers[0].Image)
			assert.Equal(t, tt.wantStrategy, stored.Spec.Strategy)
		})
	}
}

func TestReplicaAndKindRulesDenyCreate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		workload   client.Object
		wantDenial denial
	}{
		{
			name:     "stateful-single StatefulSet with 3 replicas",
			workload: workloads.StatefulSet("db", policy.StatefulSingle, 3),
			wantDenial: denial{validateWorkloads, statefulSetKind, "db", replicasPath,
				singleInstanceMessage(policy.KindStatefulSet, "db", policy.StatefulSingle, 3)},
		},
		{
			name:     "stateless-single Deployment with 2 replicas",
			workload: workloads.Deployment("web", policy.StatelessSingle, 2),
			wantDenial: denial{validateWorkloads, deploymentKind, "web", replicasPath,
				singleInstanceMessage(policy.KindDeployment, "web", policy.StatelessSingle, 2)},
		},
		// The mutating webhook denies every kind mismatch (internal/review's mutateWorkload).
		{
			name:     "stateful type on a Deployment",
			workload: workloads.Deployment("web", policy.StatefulSingle, 1),
			wantDenial: denial{mutateWorkloads, deploymentKind, "web", deployTypePath,
				`deployment "web" is labelled stateful-single, which runs as a StatefulSet: use stateless-single or stateless-multi, or create a statefulset; ` +
					`if a chart's common labels put it there, label only the chart's StatefulSet (a Helm post-renderer, see the README's 'Opting in charts you do not write') ` +
					`or remove the label from this deployment and its pod template [kind-mismatch]`},
		},
		// These StatefulSets mount "data" and declare no such volume: the API
		// server's own validation, which runs between the two webhooks, would
		// refuse the mount without saying why, so the mutating webhook denies.
		{
			name:     "stateless type on a StatefulSet",
			workload: workloads.StatefulSet("db", policy.StatelessMulti, 1),
			wantDenial: denial{mutateWorkloads, statefulSetKind, "db", deployTypePath,
				`statefulset "db" is labelled stateless-multi, which runs as a Deployment: use stateful-single or stateful-multi, or create a deployment [kind-mismatch]`},
		},
		{
			name:     "unknown deploy type lists the valid ones",
			workload: workloads.StatefulSet("db", "database", 1),
			wantDenial: denial{mutateWorkloads, statefulSetKind, "db", deployTypePath,
				`statefulset "db" has an invalid statekeeper.io/deploy-type label: unknown deploy type "database": ` +
					`must be one of "stateful-single", "stateful-multi", "stateless-single", "stateless-multi" [kind-mismatch]`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tn := newTenant(t, "")
			err := tn.create(tt.workload, false)
			requireDenial(t, err, tt.wantDenial)
			tn.assertNotStored(tt.workload)
		})
	}
}

func TestSingleInstanceDeniesUpdate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		workload    client.Object
		setReplicas func(client.Object, int32)
		wantDenial  denial
	}{
		{
			name:        "stateful-single StatefulSet",
			workload:    workloads.StatefulSet("db", policy.StatefulSingle, 1),
			setReplicas: func(o client.Object, n int32) { o.(*appsv1.StatefulSet).Spec.Replicas = &n },
			wantDenial: denial{validateWorkloads, statefulSetKind, "db", replicasPath,
				singleInstanceMessage(policy.KindStatefulSet, "db", policy.StatefulSingle, 2)},
		},
		{
			name:        "stateless-single Deployment",
			workload:    workloads.Deployment("web", policy.StatelessSingle, 1),
			setReplicas: func(o client.Object, n int32) { o.(*appsv1.Deployment).Spec.Replicas = &n },
			wantDenial: denial{validateWorkloads, deploymentKind, "web", replicasPath,
				singleInstanceMessage(policy.KindDeployment, "web", policy.StatelessSingle, 2)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tn := newTenant(t, "")
			tn.mustCreate(tt.workload)
			before := tt.workload.GetResourceVersion()

			tt.setReplicas(tt.workload, 2)
			requireDenial(t, tn.update(tt.workload, false), tt.wantDenial)
			tn.get(tt.workload)
			assert.Equal(t, before, tt.workload.GetResourceVersion(), "the denied update must not be stored")

			tt.setReplicas(tt.workload, 0)
			require.NoError(t, tn.update(tt.workload, false), "scaling a single instance to 0 is allowed")
		})
	}
}
