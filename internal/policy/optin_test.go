package policy

import (
	"maps"
	"testing"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/utils/ptr"
)

func TestEffectiveKeys(t *testing.T) {
	tests := []struct {
		name          string
		own, template map[string]string
		want          map[string]string
	}{
		{name: "neither has keys"},
		{
			name: "the template gives the keys the workload lacks",
			own:  pairs("app", "db"),
			template: pairs("app", "db", LabelDeployType, "stateful-single", LabelComponent, "db",
				"helm.sh/chart", "db-1.0"),
			want: pairs("app", "db", LabelDeployType, "stateful-single", LabelComponent, "db"),
		},
		{
			name:     "the workload's own key wins",
			own:      pairs(LabelDeployType, "stateless-multi"),
			template: pairs(LabelDeployType, "stateful-single", LabelComponent, "db"),
			want:     pairs(LabelDeployType, "stateless-multi", LabelComponent, "db"),
		},
		{
			name:     "an empty own value still wins",
			own:      pairs(AnnotationQuorum, ""),
			template: pairs(AnnotationQuorum, "true"),
			want:     pairs(AnnotationQuorum, ""),
		},
		{
			name:     "a workload without metadata takes the template's keys",
			template: pairs(AnnotationStorageSize, "5Gi", "prometheus.io/scrape", "true"),
			want:     pairs(AnnotationStorageSize, "5Gi"),
		},
		{
			name:     "only keys under statekeeper.io/ come from the template",
			own:      pairs("app", "db"),
			template: pairs("app", "web", "statekeeper.io.example/x", "y", "example.com/statekeeper.io/x", "z"),
			want:     pairs("app", "db"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			own, template := maps.Clone(tt.own), maps.Clone(tt.template)
			assert.Equal(t, tt.want, EffectiveKeys(own, template))
			assert.Equal(t, tt.own, own, "own was written")
			assert.Equal(t, tt.template, template, "the template was written")
		})
	}
}

// The views of cached objects are built on every review: without a key to
// take from the template they allocate nothing, and return the object's own
// map, which they must not write.
func TestEffectiveKeysAllocatesOnlyToMerge(t *testing.T) {
	own := pairs("app", "db", LabelDeployType, "stateful-single")
	template := pairs("app", "db", LabelDeployType, "stateful-single")
	assert.Zero(t, testing.AllocsPerRun(100, func() { EffectiveKeys(own, template) }))
	merged := EffectiveKeys(own, pairs(LabelComponent, "db"))
	merged["written"] = "by the caller"
	assert.NotContains(t, own, "written", "a merged map must be new")
}

// Opting in through the pod template: every decision reads the effective
// keys, so a workload labelled and annotated only on its pods (a chart's
// podLabels and podAnnotations) is judged and mutated as if its own
// metadata carried them.
func TestTemplateOptIn(t *testing.T) {
	onTemplate := func(labels, annotations map[string]string) func(*appsv1.StatefulSet) {
		return func(s *appsv1.StatefulSet) {
			maps.Copy(s.Spec.Template.Labels, labels)
			s.Spec.Template.Annotations = annotations
		}
	}
	t.Run("a type on the template is validated", func(t *testing.T) {
		w := FromStatefulSet(stsFixture("db", "", stsReplicas(ptr.To[int32](3)),
			onTemplate(pairs(LabelDeployType, "stateful-single"), nil)))
		assert.Equal(t, Result{Denials: []Violation{violation(RuleSingleInstance, atReplicas,
			`statefulset "db" is stateful-single: replicas must be 0 or 1, got 3`)}},
			validateWorkload(t, WorkloadRequest{Operation: OpCreate, Object: w}))
	})
	t.Run("the workload's own type wins over the template's", func(t *testing.T) {
		w := FromStatefulSet(stsFixture("db", "stateful-multi", stsReplicas(ptr.To[int32](3)),
			onTemplate(pairs(LabelDeployType, "stateful-single"), nil)))
		assert.Equal(t, Result{}, validateWorkload(t, WorkloadRequest{Operation: OpCreate, Object: w}))
	})
	t.Run("annotations on the template are validated", func(t *testing.T) {
		w := FromStatefulSet(stsFixture("etcd", "", stsReplicas(ptr.To[int32](2)),
			onTemplate(pairs(LabelDeployType, "stateful-multi"), pairs(AnnotationQuorum, "true"))))
		assert.Equal(t, Result{Denials: []Violation{violation(RuleQuorum, atReplicas,
			`statefulset "etcd" requires an odd number of replicas (statekeeper.io/quorum: "true") so that a quorum cannot split, got 2: use 1 or 3; if other workloads vote in the same quorum (an arbiter), declare their votes with statekeeper.io/quorum-external-votes`)}},
			validateWorkload(t, WorkloadRequest{Operation: OpCreate, Object: w}))
	})
	t.Run("removing only the workload's own label keeps the template's type", func(t *testing.T) {
		withData := func(own string) Workload {
			return FromStatefulSet(stsFixture("db", own, stsMounts("data"), stsTemplates(claimTemplate("data", "1Gi")),
				onTemplate(pairs(LabelDeployType, "stateful-single"), nil)))
		}
		old := observedPtr(running(withData("stateful-single"), 1, true))
		assert.Equal(t, Result{}, validateWorkload(t, WorkloadRequest{Operation: OpUpdate, Object: withData(""), Old: old}))
	})
	t.Run("a template-labelled StatefulSet is mutated with the template's size and class", func(t *testing.T) {
		mutateCase{
			op: OpCreate,
			object: stsFixture("db", "", stsMounts("data"), onTemplate(
				pairs(LabelDeployType, "stateful-single"),
				pairs(AnnotationStorageSize, "5Gi", AnnotationStorageClass, "fast"))),
			// The template already carries the type: no label is added.
			want: `[
				{"op":"add","path":"/spec/serviceName","value":"db-headless"},
				{"op":"add","path":"/spec/volumeClaimTemplates","value":[` + injectedTemplate("data", "5Gi", "fast") + `]}
			]`,
		}.run(t)
	})
	t.Run("the pod identity and the budget read the template's annotations", func(t *testing.T) {
		sts := stsFixture("zk", "", onTemplate(pairs(LabelDeployType, "stateful-multi"),
			pairs(AnnotationInjectEnv, "true", AnnotationDisruptionBudget, "false")))
		assert.True(t, InjectEnvRequested(sts))
		assert.False(t, WantsDisruptionBudget(sts))
	})
	t.Run("the cache's copy keeps the template's keys", func(t *testing.T) {
		sts := stsFixture("db", "", onTemplate(pairs(LabelDeployType, "stateful-single"),
			pairs(AnnotationProtect, "true", "checksum/config", "0c1d")))
		TrimStatefulSet(sts)
		assert.Equal(t, pairs(AnnotationProtect, "true"), sts.Spec.Template.Annotations)
		w := FromStatefulSet(sts)
		assert.Equal(t, pairs(LabelDeployType, "stateful-single"), w.Labels)
		assert.Equal(t, pairs(AnnotationProtect, "true"), w.Annotations)
	})
}
