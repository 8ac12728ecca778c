package celdiff

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating/patch"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/cel/environment"
	"k8s.io/utils/ptr"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// The defaults the mutations are compared with: the chart's, as CEL
// literals for the policy and as Defaults for the Go mutators.
var (
	defaults    = policy.Defaults{StorageSize: resource.MustParse("1Gi")}
	celDefaults = policy.CELMutations("'1Gi'", "''")
)

// mutations are the policy's compiled patchers and the compiler that holds
// its variables.
type mutations struct {
	compiler *plugincel.CompositedCompiler
	patchers []patch.Patcher
}

// compileMutations builds the policy's patchers as the
// MutatingAdmissionPolicy plugin does (its compilePolicy).
func compileMutations(t testing.TB) mutations {
	t.Helper()
	compiler, err := plugincel.NewCompositedCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	require.NoError(t, err)
	var variables []plugincel.NamedExpressionAccessor
	for _, v := range append(policy.CELVariables(), policy.CELMutationVariables()...) {
		variables = append(variables, &validating.Variable{Name: v.Name, Expression: v.Expression})
	}
	opts := plugincel.OptionalVariableDeclarations{HasAuthorizer: true}
	compiler.CompileAndStoreVariables(variables, opts, environment.StoredExpressions)
	opts.HasPatchTypes = true
	var patchers []patch.Patcher
	for _, m := range celDefaults {
		evaluator := compiler.CompileMutatingEvaluator(&patch.JSONPatchCondition{Expression: m.Expression}, opts, environment.StoredExpressions)
		require.Empty(t, evaluator.CompilationErrors(), "%s does not compile", m.Mutator)
		patchers = append(patchers, patch.NewJSONPatcher(evaluator))
	}
	return mutations{compiler: compiler, patchers: patchers}
}

// celMutated is the StatefulSet as the policy's mutations leave it, each
// applied to the previous one's output as the plugin applies them.
func celMutated(t testing.TB, m mutations, op policy.Operation, sts, old *appsv1.StatefulSet) *appsv1.StatefulSet {
	t.Helper()
	scheme := runtime.NewScheme()
	require.NoError(t, appsv1.AddToScheme(scheme))
	gvk := appsv1.SchemeGroupVersion.WithKind("StatefulSet")
	gvr := appsv1.SchemeGroupVersion.WithResource("statefulsets")
	operation := admission.Create
	if op == policy.OpUpdate {
		operation = admission.Update
	}
	// One composition context per request, as the plugin's dispatcher
	// makes: it gives the expressions the policy's variables.
	ctx := m.compiler.CreateContext(context.Background())
	var current runtime.Object = sts.DeepCopy()
	for _, p := range m.patchers {
		var oldObject runtime.Object
		if old != nil {
			oldObject = old
		}
		attrs := admission.NewAttributesRecord(current, oldObject, gvk, sts.Namespace, sts.Name, gvr, "", operation, nil, false, nil)
		versioned := &admission.VersionedAttributes{Attributes: attrs, VersionedKind: gvk, VersionedObject: admission.NewLazyObject(current)}
		if old != nil {
			versioned.VersionedOldObject = admission.NewLazyObject(old)
		}
		next, err := p.Patch(ctx, patch.Request{
			MatchedResource: gvr, VersionedAttributes: versioned,
			ObjectInterfaces:  admission.NewObjectInterfacesFromScheme(scheme),
			OptionalVariables: plugincel.OptionalVariableBindings{},
			Namespace:         &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: sts.Namespace}},
		}, celconfig.RuntimeCELCostBudget)
		require.NoError(t, err, "a mutation fails on %s", mustJSON(current))
		current = next
	}
	return current.(*appsv1.StatefulSet)
}

// goMutated is the StatefulSet as policy.MutateWorkload's patch leaves it.
func goMutated(t testing.TB, op policy.Operation, sts, old *appsv1.StatefulSet) *appsv1.StatefulSet {
	t.Helper()
	req := policy.WorkloadRequest{Operation: op, Object: policy.FromStatefulSet(sts)}
	if old != nil {
		req.Old = &policy.Observed{Workload: policy.FromStatefulSet(old)}
	}
	ops := policy.MutateWorkload(req, defaults)
	raw, err := json.Marshal(sts)
	require.NoError(t, err)
	if len(ops) > 0 {
		encoded, err := json.Marshal(ops)
		require.NoError(t, err)
		p, err := jsonpatch.DecodePatch(encoded)
		require.NoError(t, err)
		raw, err = p.Apply(raw)
		require.NoError(t, err)
	}
	out := &appsv1.StatefulSet{}
	require.NoError(t, json.Unmarshal(raw, out))
	return out
}

// mutationCorpus crosses deploy types (where they are), mounts, the
// storage annotations and serviceName, each as a CREATE and as the UPDATE
// that re-applies the manifest over what the Go mutators stored.
func mutationCorpus(t testing.TB) []mutationCase {
	mounts := map[string]func(*corev1.PodSpec){
		"none": func(*corev1.PodSpec) {},
		"undeclared": func(s *corev1.PodSpec) {
			s.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		},
		"declared and undeclared, shared, in init containers": func(s *corev1.PodSpec) {
			s.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "cache", MountPath: "/cache"},
				{Name: "logs", MountPath: "/logs"}, {Name: "data", MountPath: "/again"}}
			s.InitContainers = []corev1.Container{{Name: "init", Image: "x", VolumeMounts: []corev1.VolumeMount{{Name: "logs", MountPath: "/logs"}}}}
			s.Volumes = []corev1.Volume{{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		},
	}
	annotations := []map[string]string{
		nil,
		{policy.AnnotationStorageSize: "5Gi", policy.AnnotationStorageClass: "fast"},
		{policy.AnnotationStorageSize: "2048Mi", policy.AnnotationStorageClass: ""},
		{policy.AnnotationStorageSize: "0"},
		{policy.AnnotationStorageClass: "Fast"},
		{policy.AnnotationQuorum: "yes"},
	}
	var out []mutationCase
	for _, deployType := range []string{"", "stateful-multi", "stateful-single", "stateless-multi", "bogus"} {
		for _, onTemplate := range []bool{false, true} {
			for _, mount := range mounts {
				for _, a := range annotations {
					for _, withTemplate := range []bool{false, true} {
						for _, serviceName := range []string{"", "own"} {
							sts := workload(policy.KindStatefulSet, deployType, onTemplate, ptr.To[int32](1), a).(*appsv1.StatefulSet)
							sts.Spec.Template.Spec.Containers = []corev1.Container{{Name: "w", Image: "x"}}
							mount(&sts.Spec.Template.Spec)
							sts.Spec.ServiceName = serviceName
							if withTemplate {
								sts.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "own"}}}
							}
							out = append(out, mutationCase{op: policy.OpCreate, object: sts})
							stored := goMutated(t, policy.OpCreate, sts, nil)
							out = append(out, mutationCase{op: policy.OpUpdate, object: sts, old: stored})
							// A pod template without labels or metadata.
							bare := sts.DeepCopy()
							bare.Spec.Template.ObjectMeta = metav1.ObjectMeta{}
							out = append(out, mutationCase{op: policy.OpCreate, object: bare},
								mutationCase{op: policy.OpUpdate, object: bare, old: stored})
						}
					}
				}
			}
		}
	}
	return out
}

type mutationCase struct {
	op          policy.Operation
	object, old *appsv1.StatefulSet
}

// TestMutationsAgreeWithGo: over the corpus, the policy's mutations leave
// every StatefulSet exactly as the Go mutators' patch does.
func TestMutationsAgreeWithGo(t *testing.T) {
	patchers := compileMutations(t)
	cases := mutationCorpus(t)
	changed := 0
	for _, c := range cases {
		want := goMutated(t, c.op, c.object, c.old)
		got := celMutated(t, patchers, c.op, c.object, c.old)
		if !equality.Semantic.DeepEqual(c.object, want) {
			changed++
		}
		require.True(t, equality.Semantic.DeepEqual(want, got), "%s of %s (stored %s):\nGo:  %s\nCEL: %s",
			c.op, mustJSON(c.object), mustJSON(c.old), mustJSON(want), mustJSON(got))
	}
	require.NotZero(t, changed, "no case of the corpus is mutated")
	t.Logf("%d requests, %d mutated", len(cases), changed)
}
