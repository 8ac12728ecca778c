package integration

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/test/workloads"
)

// podLabelled is workloads.StatefulSet with its deploy type on the pod
// template only, where a chart's podLabels put it.
func podLabelled(name string, deployType policy.DeployType, replicas int32) *appsv1.StatefulSet {
	sts := workloads.StatefulSet(name, "", replicas)
	sts.Spec.Template.Labels[policy.LabelDeployType] = string(deployType)
	return sts
}

// Opting in through the pod template (policy.EffectiveKeys): the chart's
// match conditions send such workloads to statekeeper, which judges and
// mutates them as if their own metadata carried the keys.
func TestTemplateOptIn(t *testing.T) {
	t.Parallel()

	t.Run("a StatefulSet labelled and annotated on its pod template is mutated", func(t *testing.T) {
		t.Parallel()
		tn := newTenant(t, "")
		sts := podLabelled("db", policy.StatefulMulti, 1)
		sts.Spec.Template.Annotations = map[string]string{policy.AnnotationStorageSize: "2Gi"}
		assert.Empty(t, tn.admitted(func(dryRun bool) error { return tn.create(sts.DeepCopy(), dryRun) }))
		stored := tn.storedStatefulSet("db")
		assert.Equal(t, "db-headless", stored.Spec.ServiceName)
		assert.Equal(t, []corev1.PersistentVolumeClaim{storedClaimTemplate("data", "2Gi", "")}, stored.Spec.VolumeClaimTemplates)
		assert.Equal(t, map[string]string{"app": "db", policy.LabelDeployType: string(policy.StatefulMulti)}, stored.Spec.Template.Labels)
		assert.Equal(t, map[string]string{"app": "db"}, stored.Labels, "statekeeper does not label the workload itself")
	})

	t.Run("a StatefulSet labelled on its pod template is validated", func(t *testing.T) {
		t.Parallel()
		tn := newTenant(t, "")
		sts := podLabelled("mysql", policy.StatefulSingle, 3)
		create := func(dryRun bool) error { return tn.create(sts.DeepCopy(), dryRun) }
		requireDenial(t, tn.denied(create), denial{validateWorkloads, statefulSetKind, "mysql", replicasPath,
			singleInstanceMessage(policy.KindStatefulSet, "mysql", policy.StatefulSingle, 3)})
		tn.assertNotStored(sts)
	})

	t.Run("the workload's own label wins over its pod template's", func(t *testing.T) {
		t.Parallel()
		tn := newTenant(t, "")
		// Single-instance and of the other kind by the template; neither
		// counts under the Deployment's own stateless-multi.
		web := workloads.Deployment("web", policy.StatelessMulti, 3)
		web.Spec.Template.Labels[policy.LabelDeployType] = string(policy.StatefulSingle)
		assert.Empty(t, tn.admitted(func(dryRun bool) error { return tn.create(web.DeepCopy(), dryRun) }))
	})

	t.Run("removing the type from the pod template of a running StatefulSet is routed and judged", func(t *testing.T) {
		t.Parallel()
		tn := newTenant(t, "")
		// Neither the old nor the new object carries a label of its own: only
		// the old pod template's type sends the update to statekeeper.
		tn.mustCreate(podLabelled("queue", policy.StatefulSingle, 1))
		stored := tn.storedStatefulSet("queue")
		delete(stored.Spec.Template.Labels, policy.LabelDeployType)
		relabel := func(dryRun bool) error { return tn.update(stored.DeepCopy(), dryRun) }
		requireDenial(t, tn.denied(relabel), denial{validateWorkloads, statefulSetKind, "queue", deployTypePath,
			fmt.Sprintf(`statefulset "queue" is running with persistent volumes: its deploy type cannot change from stateful-single to `+
				`unmanaged (statekeeper.io/deploy-type label removed); scale it to 0 and back up its data first [%s]`, policy.RuleTypeChange)})
	})
}
