//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/test/workloads"
)

// The rules of docs/spec.md §4 as kubectl's users meet them. Each test asserts the
// rule IDs kubectl printed (and, where docs/spec.md quotes one, the whole message),
// then that the cluster stored what was admitted and nothing else.

func TestSingleInstance(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "")

	res := ns.create(workloads.StatefulSet("db", policy.StatefulSingle, 3))
	res.expect(t, denied(policy.RuleSingleInstance))
	// The chart's admission policy decides it inside the API server, with the webhook's message.
	assert.Equal(t, policyDenialText("statefulsets", "db",
		`statefulset "db" is stateful-single: replicas must be 0 or 1, got 3 [single-instance]`), res.stderr)

	ns.apply(unboundClaims(workloads.StatefulSet("db", policy.StatefulSingle, 1))).expect(t, allowed)
	// UPDATE through apply, the /scale subresource through kubectl scale,
	// and an HPA through kubectl autoscale.
	ns.apply(unboundClaims(workloads.StatefulSet("db", policy.StatefulSingle, 2))).expect(t, denied(policy.RuleSingleInstance))
	ns.kubectl(nil, "scale", "statefulset", "db", "--replicas=3").expect(t, denied(policy.RuleSingleInstance))
	ns.kubectl(nil, "autoscale", "statefulset", "db", "--min=1", "--max=3").expect(t, denied(policy.RuleSingleInstance))
	ns.create(hpa("db-hpa", "StatefulSet", "db", 2)).expect(t, denied(policy.RuleSingleInstance))
	ns.create(hpa("db-hpa", "StatefulSet", "db", 1)).expect(t, allowed)
	var sts appsv1.StatefulSet
	ns.get("db", &sts)
	assert.Equal(t, int32(1), *sts.Spec.Replicas)

	ns.create(workloads.Deployment("web", policy.StatelessSingle, 2)).expect(t, denied(policy.RuleSingleInstance))
	ns.apply(workloads.Deployment("web", policy.StatelessSingle, 1)).expect(t, allowed)
	ns.kubectl(nil, "scale", "deployment", "web", "--replicas=2").expect(t, denied(policy.RuleSingleInstance))
	ns.kubectl(nil, "autoscale", "deployment", "web", "--max=4").expect(t, denied(policy.RuleSingleInstance))
	var deploy appsv1.Deployment
	ns.get("web", &deploy)
	assert.Equal(t, int32(1), *deploy.Spec.Replicas)
}

func TestKindMismatch(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "")
	tests := []struct {
		name   string
		object client.Object
	}{
		{"stateful type on a deployment", workloads.Deployment("a", policy.StatefulMulti, 1)},
		{"stateless type on a statefulset", workloads.StatefulSet("b", policy.StatelessMulti, 0)},
		{"unknown type", workloads.Deployment("c", policy.DeployType("stateful"), 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns.in(t).create(tt.object).expect(t, denied(policy.RuleKindMismatch))
		})
	}
}

func TestKindSwitch(t *testing.T) {
	t.Parallel()

	t.Run("from a running deployment with a claim to a statefulset", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, "")
		db := workloads.Deployment("shop-db", policy.StatelessSingle, 1)
		workloads.MountClaim(&db.Spec.Template.Spec, "shop-db-data")
		ns.mustCreate(claim("shop-db-data"))
		ns.create(db).expect(t, allowed)

		// statekeeper decides from its cache: poll with server-side dry
		// runs (side-effect free) until it has seen the Deployment.
		next := workloads.StatefulSet("shop-db", policy.StatefulSingle, 1)
		res := ns.eventuallyAdmission(denied(policy.RuleKindSwitch), next)
		assert.Equal(t, denialText("StatefulSet", "shop-db", "metadata.name",
			`deployment "shop-db" (component "shop-db") is running with persistent volumes; scale it to 0 and back up its data before creating statefulset "shop-db" [kind-switch]`), res.stderr)

		// How to proceed: scale to 0; once its pods are gone the switch is
		// admitted with a warning that the old claim is not reused.
		ns.kubectl(nil, "scale", "deployment", "shop-db", "--replicas=0").expect(t, allowed)
		ns.eventuallyPodsGone(map[string]string{"app": "shop-db"})
		ns.eventuallyAdmission(warned(policy.RuleKindSwitch), next)
		res = ns.create(next)
		res.expect(t, warned(policy.RuleKindSwitch))
		assert.Equal(t, `Warning: deployment "shop-db" (component "shop-db") is scaled to 0 but keeps its data in claims "shop-db-data"; `+
			`statefulset "shop-db" mounts storage differently and will not reuse them: back up the data first [kind-switch]`+"\n", res.stderr)
	})

	t.Run("from a running statefulset with claim templates to a deployment", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, "")
		ns.create(unboundClaims(workloads.StatefulSet("cache", policy.StatefulSingle, 1))).expect(t, allowed)
		ns.eventuallyAdmission(denied(policy.RuleKindSwitch), workloads.Deployment("cache", policy.StatelessSingle, 1))
	})
}

func TestTypeChange(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "")
	ns.create(unboundClaims(workloads.StatefulSet("db", policy.StatefulMulti, 1))).expect(t, allowed)

	change := []string{"label", "statefulset", "db", "--overwrite", policy.LabelDeployType + "=" + string(policy.StatefulSingle)}
	ns.eventuallyDecision(denied(policy.RuleTypeChange), nil, append(change, "--dry-run=server")...)
	ns.kubectl(nil, change...).expect(t, denied(policy.RuleTypeChange))
	// The type counts on the pod template too, where the mutation stamped
	// it: removing it means removing it from both.
	key := strings.ReplaceAll(policy.LabelDeployType, "/", "~1")
	removeType := fmt.Sprintf(`[{"op":"remove","path":"/metadata/labels/%s"},{"op":"remove","path":"/spec/template/metadata/labels/%s"}]`, key, key)
	ns.kubectl(nil, "patch", "statefulset", "db", "--type=json", "-p", removeType).expect(t, denied(policy.RuleTypeChange))

	// Scaled to 0 with its pods gone, the type may change.
	ns.kubectl(nil, "scale", "statefulset", "db", "--replicas=0").expect(t, allowed)
	ns.eventuallyPodsGone(map[string]string{"app": "db"})
	ns.eventuallyDecision(allowed, nil, append(change, "--dry-run=server")...)
	ns.kubectl(nil, change...).expect(t, allowed)
}

func TestQuorum(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "")
	quorum := func(replicas int32) *appsv1.Deployment {
		d := workloads.Deployment("etcd", policy.StatelessMulti, replicas)
		d.Annotations = map[string]string{policy.AnnotationQuorum: "true"}
		return d
	}
	ns.create(quorum(2)).expect(t, denied(policy.RuleQuorum))
	ns.apply(quorum(3)).expect(t, allowed)
	ns.apply(quorum(4)).expect(t, denied(policy.RuleQuorum))
	ns.kubectl(nil, "scale", "deployment", "etcd", "--replicas=2").expect(t, denied(policy.RuleQuorum))
	ns.kubectl(nil, "scale", "deployment", "etcd", "--replicas=5").expect(t, allowed)
	ns.kubectl(nil, "scale", "deployment", "etcd", "--replicas=0").expect(t, allowed)
}

// TestHeadlessConflict: a chart's ClusterIP Service named by serviceName is
// warned of; with inject-env the StatefulSet is denied.
func TestHeadlessConflict(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "")
	ns.mustCreate(&corev1.Service{
		ObjectMeta: objectMeta("db-headless"),
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "db"},
			Ports:    []corev1.ServicePort{{Name: "sql", Port: 5432}},
		},
	})
	var svc corev1.Service
	ns.get("db-headless", &svc)

	withEnv := workloads.StatefulSet("db", policy.StatefulMulti, 0)
	withEnv.Annotations = map[string]string{policy.AnnotationInjectEnv: "true"}
	res := ns.eventuallyAdmission(denied(policy.RuleHeadlessConflict), withEnv)
	assert.Equal(t, denialText("StatefulSet", "db", "metadata.annotations[statekeeper.io/inject-env]",
		fmt.Sprintf(`statefulset "db" asks for its pods' identity as environment variables (statekeeper.io/inject-env: "true"), `+
			`but service "db-headless" named by its spec.serviceName is not headless (spec.clusterIP is %q) and is not managed by statekeeper, `+
			`so its pods get no per-pod DNS names: STATEKEEPER_FQDN, STATEKEEPER_PRIMARY_FQDN and STATEKEEPER_PEERS would name addresses that never resolve, `+
			`and an application that finds its peers through them would start alone; make service "db-headless" headless (clusterIP: None), `+
			`or set spec.serviceName to an unused name and statekeeper creates a headless one, or remove statekeeper.io/inject-env [headless-conflict]`,
			svc.Spec.ClusterIP)), res.stderr)

	res = ns.create(workloads.StatefulSet("db", policy.StatefulMulti, 0))
	res.expect(t, warned(policy.RuleHeadlessConflict))
	assert.Equal(t, fmt.Sprintf(`Warning: service "db-headless" named by spec.serviceName of statefulset "db" is not headless (spec.clusterIP is %q) `+
		`and is not managed by statekeeper, so its pods get no per-pod DNS names (such as db-0.db-headless.%s.svc) and statekeeper stamps no fqdn, primary-fqdn or peers on them; `+
		`statekeeper creates no headless Service because the name is taken: if the pods need those names, make that Service headless (clusterIP: None), `+
		`or set spec.serviceName to an unused name and statekeeper creates a headless one [headless-conflict]`+"\n", svc.Spec.ClusterIP, ns.name), res.stderr)
}

func TestSharedClaimWarnings(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "")
	ns.mustCreate(claim("shared"))

	// The "data" mount is the claim's volume: no claim template is injected.
	multi := workloads.StatefulSet("db", policy.StatefulMulti, 0)
	multi.Spec.Template.Spec.Volumes = []corev1.Volume{workloads.ClaimVolume("data", "shared")}
	ns.create(multi).expect(t, warned(policy.RuleSharedClaim))

	web := workloads.Deployment("web", policy.StatelessMulti, 2)
	workloads.MountClaim(&web.Spec.Template.Spec, "shared")
	ns.eventuallyAdmission(warned(policy.RuleSharedClaim), web)
	ns.create(web).expect(t, warned(policy.RuleSharedClaim))
}

func TestMutationsThroughKubectl(t *testing.T) {
	t.Parallel()

	t.Run("stateless-single with a ReadWriteOnce claim is recreated, not rolled", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, "")
		ns.mustCreate(claim("data"))
		web := workloads.Deployment("web", policy.StatelessSingle, 0)
		workloads.MountClaim(&web.Spec.Template.Spec, "data")
		// statekeeper reads the claim's access mode from its cache: dry-run
		// until it has seen the claim, then create for real.
		strategy := []string{"create", "-f", "-", "-o", "jsonpath={.spec.strategy.type}"}
		ns.eventuallyKubectl("the Recreate strategy", []client.Object{web}, append(strategy, "--dry-run=server"), func(res kubectlResult) bool {
			return res.err == nil && res.stdout == string(appsv1.RecreateDeploymentStrategyType)
		})
		ns.mustCreate(web)
		var stored appsv1.Deployment
		ns.get("web", &stored)
		assert.Equal(t, appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}, stored.Spec.Strategy)
	})

	t.Run("re-applying the original manifest keeps what was injected", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, "")
		original := workloads.StatefulSet("db", policy.StatefulMulti, 0)
		ns.kubectl([]client.Object{original}, "apply", "--server-side", "-f", "-").expect(t, allowed)
		// The same manifest through every kind of write: each would fail on
		// an immutable field if statekeeper did not carry its injections over.
		ns.kubectl([]client.Object{original}, "apply", "--server-side", "-f", "-").expect(t, allowed)
		ns.kubectl([]client.Object{original}, "replace", "-f", "-").expect(t, allowed)
		ns.apply(original).expect(t, allowed)
		var sts appsv1.StatefulSet
		ns.get("db", &sts)
		assert.Equal(t, "db-headless", sts.Spec.ServiceName)
		assert.Equal(t, []string{"data"}, claimTemplateNames(&sts))
	})
}

func TestNamespaceModes(t *testing.T) {
	t.Parallel()

	t.Run("warn admits with the denial as a warning and still mutates", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, policy.ModeWarn)
		ns.create(workloads.Deployment("web", policy.StatelessSingle, 3)).expect(t, warned(policy.RuleSingleInstance))
		ns.kubectl(nil, "scale", "deployment", "web", "--replicas=4").expect(t, warned(policy.RuleSingleInstance))
		ns.create(workloads.StatefulSet("db", policy.StatefulSingle, 0)).expect(t, allowed)
		var sts appsv1.StatefulSet
		ns.get("db", &sts)
		assert.Equal(t, "db-headless", sts.Spec.ServiceName)
		assert.Equal(t, []string{"data"}, claimTemplateNames(&sts))
	})

	t.Run("an invalid mode label enforces and says so", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, policy.Mode("strict"))
		ns.create(workloads.Deployment("web", policy.StatelessSingle, 1)).expect(t, warned(policy.RuleInvalidMode))
	})

	t.Run("off skips statekeeper entirely", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, policy.ModeOff)
		ns.create(workloads.Deployment("web", policy.StatelessSingle, 3)).expect(t, allowed)
		ns.create(withoutMounts(workloads.StatefulSet("db", policy.StatefulMulti, 0))).expect(t, allowed)
		var sts appsv1.StatefulSet
		ns.get("db", &sts)
		assert.Empty(t, sts.Spec.ServiceName)
		assert.NotContains(t, sts.Spec.Template.Labels, policy.LabelDeployType)
	})
}

// hpa is an autoscaling/v2 HorizontalPodAutoscaler of target up to maxReplicas.
func hpa(name, kind, target string, maxReplicas int32) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: objectMeta(name),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: kind, Name: target},
			MinReplicas:    ptr.To[int32](1),
			MaxReplicas:    maxReplicas,
		},
	}
}

func claimTemplateNames(sts *appsv1.StatefulSet) []string {
	var names []string
	for _, c := range sts.Spec.VolumeClaimTemplates {
		names = append(names, c.Name)
	}
	return names
}

// TestEveryRuleIsExercised: each rule of policy.Rules has a test here.
func TestEveryRuleIsExercised(t *testing.T) {
	missing, err := workloads.RulesNotTested(".")
	require.NoError(t, err)
	assert.Empty(t, missing, "rules without an e2e test")
}

// TestUnknownKeyWarnings: a misspelt key is warned of, on a managed
// workload and, by the unlabelled-workloads webhook, on one it left unmanaged.
func TestUnknownKeyWarnings(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "")
	managed := workloads.StatefulSet("db", policy.StatefulSingle, 0)
	managed.Annotations = map[string]string{"statekeeper.io/storage_size": "5Gi"}
	ns.create(managed).expect(t, warned(policy.RuleUnknownKey))

	unlabelled := workloads.StatefulSet("cache", "", 0)
	unlabelled.Labels["statekeeper.io/deploy_type"] = string(policy.StatefulSingle)
	unlabelled.Spec.ServiceName = "cache"
	unlabelled.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{*workloads.Claim("data", corev1.ReadWriteOnce)}
	res := ns.create(unlabelled)
	res.expect(t, warned(policy.RuleUnknownKey))
	assert.Equal(t, `Warning: statefulset "cache" is not managed by statekeeper: it has no statekeeper.io/deploy-type label, and statekeeper.io/deploy_type (metadata.labels) `+
		`is not a key statekeeper knows, so nothing reads it: did you mean statekeeper.io/deploy-type, a label of the workload (metadata.labels) or of its pod template? [unknown-key]`+"\n", res.stderr)
}

// TestEphemeralDataWarning: persistence switched off (an emptyDir named like
// the data) is warned of.
func TestEphemeralDataWarning(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "")
	sts := workloads.StatefulSet("cache", policy.StatefulSingle, 0)
	sts.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	ns.create(sts).expect(t, warned(policy.RuleEphemeralData))
}
