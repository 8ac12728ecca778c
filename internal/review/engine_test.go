package review

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/statekeeper/statekeeper/internal/lookup"
	"github.com/statekeeper/statekeeper/internal/policy"
)

// outcome is what the engine itself decides, as opposed to what each rule
// says (the policy package's tests cover the messages).
type outcome struct {
	Skipped bool
	Reason  string
	Mode    policy.Mode
	Name    string
	Denied  []policy.Rule
	Warned  []policy.Rule
	Patched bool
}

func outcomeOf(d Decision) outcome {
	o := outcome{Skipped: d.Skipped, Reason: d.Reason, Mode: d.Mode, Name: d.Name, Patched: len(d.Patch) > 0}
	for _, v := range d.Result.Denials {
		o.Denied = append(o.Denied, v.Rule)
	}
	for _, v := range d.Result.Warnings {
		o.Warned = append(o.Warned, v.Rule)
	}
	return o
}

func statefulSet(name, deployType string, replicas int32) *appsv1.StatefulSet {
	labels := map[string]string{"app": name}
	templateLabels := map[string]string{"app": name}
	if deployType != "" {
		labels[policy.LabelDeployType] = deployType
		templateLabels[policy.LabelDeployType] = deployType
	}
	return &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Labels: labels},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To(replicas),
			ServiceName: name + "-headless",
			Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: templateLabels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "main", Image: "redis", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
				}}},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}},
		},
	}
}

func inNamespace[T interface{ SetNamespace(string) }](obj T, ns string) T {
	obj.SetNamespace(ns)
	return obj
}

func raw(t *testing.T, obj any) []byte {
	t.Helper()
	b, err := json.Marshal(obj)
	require.NoError(t, err)
	return b
}

var (
	statefulSetsResource = Resource{Group: "apps", Version: "v1", Resource: "statefulsets"}
	statefulSetScaleRes  = Resource{Group: "apps", Version: "v1", Resource: "statefulsets", SubResource: "scale"}
	hpaResource          = Resource{Group: "autoscaling", Version: "v2", Resource: "horizontalpodautoscalers"}
)

func testCluster() *lookup.Memory {
	m := lookup.NewMemory()
	m.Add(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}})
	m.Add(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "relaxed", Labels: map[string]string{policy.LabelMode: "warn"}}})
	m.Add(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "quiet", Labels: map[string]string{policy.LabelMode: "off"}}})
	m.Add(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "typo", Labels: map[string]string{policy.LabelMode: "strict"}}})
	// "db" runs as a Deployment with a claim: creating StatefulSet "db" is a kind switch.
	m.Add(&appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db", Labels: map[string]string{policy.LabelDeployType: "stateless-single"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Volumes: []corev1.Volume{{
				Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "db-data"}},
			}}}},
		},
	})
	// "queue" is scaled to 0 but its pod still terminates.
	queue := statefulSet("queue", "stateful-multi", 0)
	m.Add(queue)
	m.Add(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "queue-0", Labels: map[string]string{"app": "queue"}}})
	// "cache" has a Service of its name that is not headless.
	m.Add(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cache-headless"}, Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.7"}})
	m.Add(statefulSet("single-db", "stateful-single", 1))
	m.Add(statefulSet("unmanaged", "", 1))
	return m
}

func newEngine(l lookup.Lookup, defaultMode policy.Mode) *Engine {
	return New(l, Settings{
		Defaults:           policy.Defaults{StorageSize: resource.MustParse("1Gi")},
		DefaultMode:        defaultMode,
		ExcludedNamespaces: []string{"kube-system"},
	})
}

func TestValidateOutcomes(t *testing.T) {
	tooMany := statefulSet("mysql", "stateful-single", 3)
	queueUnlabelled := statefulSet("queue", "", 0)
	tests := []struct {
		name        string
		defaultMode policy.Mode
		req         Request
		want        outcome
	}{
		{
			name: "enforce denies",
			req:  Request{Operation: policy.OpCreate, Resource: statefulSetsResource, Namespace: "shop", Name: "mysql", Object: raw(t, tooMany)},
			want: outcome{Mode: policy.ModeEnforce, Name: "mysql", Denied: []policy.Rule{policy.RuleSingleInstance}},
		},
		{
			name: "warn mode turns denials into warnings",
			req: Request{Operation: policy.OpCreate, Resource: statefulSetsResource, Namespace: "relaxed", Name: "mysql",
				Object: raw(t, inNamespace(statefulSet("mysql", "stateful-single", 3), "relaxed"))},
			want: outcome{Mode: policy.ModeWarn, Name: "mysql", Warned: []policy.Rule{policy.RuleSingleInstance}},
		},
		{
			name:        "the default mode applies to unlabelled namespaces",
			defaultMode: policy.ModeWarn,
			req:         Request{Operation: policy.OpCreate, Resource: statefulSetsResource, Namespace: "shop", Name: "mysql", Object: raw(t, tooMany)},
			want:        outcome{Mode: policy.ModeWarn, Name: "mysql", Warned: []policy.Rule{policy.RuleSingleInstance}},
		},
		{
			name: "off namespaces are skipped",
			req: Request{Operation: policy.OpCreate, Resource: statefulSetsResource, Namespace: "quiet", Name: "mysql",
				Object: raw(t, inNamespace(statefulSet("mysql", "stateful-single", 3), "quiet"))},
			want: outcome{Skipped: true, Mode: policy.ModeOff, Name: "mysql"},
		},
		{
			name: "an invalid mode label enforces and says so",
			req: Request{Operation: policy.OpCreate, Resource: statefulSetsResource, Namespace: "typo", Name: "mysql",
				Object: raw(t, inNamespace(statefulSet("mysql", "stateful-single", 3), "typo"))},
			want: outcome{Mode: policy.ModeEnforce, Name: "mysql",
				Denied: []policy.Rule{policy.RuleSingleInstance}, Warned: []policy.Rule{policy.RuleInvalidMode}},
		},
		{
			name: "excluded namespaces are skipped",
			req: Request{Operation: policy.OpCreate, Resource: statefulSetsResource, Namespace: "kube-system", Name: "mysql",
				Object: raw(t, inNamespace(statefulSet("mysql", "stateful-single", 3), "kube-system"))},
			want: outcome{Skipped: true, Name: "mysql"},
		},
		{
			name: "unlabelled workloads are skipped",
			req:  Request{Operation: policy.OpCreate, Resource: statefulSetsResource, Namespace: "shop", Name: "plain", Object: raw(t, statefulSet("plain", "", 5))},
			want: outcome{Skipped: true, Name: "plain"},
		},
		{
			name: "removing the label from a workload whose pods still exist is a type change",
			req: Request{Operation: policy.OpUpdate, Resource: statefulSetsResource, Namespace: "shop", Name: "queue",
				Object: raw(t, queueUnlabelled), OldObject: raw(t, statefulSet("queue", "stateful-multi", 0))},
			want: outcome{Mode: policy.ModeEnforce, Name: "queue", Denied: []policy.Rule{policy.RuleTypeChange}},
		},
		{
			name: "creating the other kind of a running component is a kind switch",
			req: Request{Operation: policy.OpCreate, Resource: statefulSetsResource, Namespace: "shop", Name: "db",
				Object: raw(t, statefulSet("db", "stateful-single", 1))},
			want: outcome{Mode: policy.ModeEnforce, Name: "db", Denied: []policy.Rule{policy.RuleKindSwitch}},
		},
		{
			name: "a Service of the name that is not headless is warned of",
			req: Request{Operation: policy.OpCreate, Resource: statefulSetsResource, Namespace: "shop", Name: "cache",
				Object: raw(t, statefulSet("cache", "stateful-multi", 3))},
			want: outcome{Mode: policy.ModeEnforce, Name: "cache", Warned: []policy.Rule{policy.RuleHeadlessConflict}},
		},
		{
			name: "a Service of the name that is not headless conflicts with inject-env",
			req: Request{Operation: policy.OpCreate, Resource: statefulSetsResource, Namespace: "shop", Name: "cache",
				Object: raw(t, withAnnotations(statefulSet("cache", "stateful-multi", 3), policy.AnnotationInjectEnv, "true"))},
			want: outcome{Mode: policy.ModeEnforce, Name: "cache", Denied: []policy.Rule{policy.RuleHeadlessConflict}},
		},
		{
			name: "scale is judged by the parent",
			req: Request{Operation: policy.OpUpdate, Resource: statefulSetScaleRes, Namespace: "shop", Name: "single-db",
				Object: raw(t, scale("single-db", ptr.To[int32](2)))},
			want: outcome{Mode: policy.ModeEnforce, Name: "single-db", Denied: []policy.Rule{policy.RuleSingleInstance}},
		},
		{
			name: "an omitted spec.replicas scales to 0",
			req: Request{Operation: policy.OpUpdate, Resource: statefulSetScaleRes, Namespace: "shop", Name: "single-db",
				Object: raw(t, scale("single-db", nil))},
			want: outcome{Mode: policy.ModeEnforce, Name: "single-db"},
		},
		{
			name: "scale of a missing parent is skipped",
			req: Request{Operation: policy.OpUpdate, Resource: statefulSetScaleRes, Namespace: "shop", Name: "gone",
				Object: raw(t, scale("gone", ptr.To[int32](5)))},
			want: outcome{Skipped: true, Mode: policy.ModeEnforce, Name: "gone"},
		},
		{
			name: "scale of an unmanaged parent is skipped",
			req: Request{Operation: policy.OpUpdate, Resource: statefulSetScaleRes, Namespace: "shop", Name: "unmanaged",
				Object: raw(t, scale("unmanaged", ptr.To[int32](5)))},
			want: outcome{Skipped: true, Mode: policy.ModeEnforce, Name: "unmanaged"},
		},
		{
			name: "an HPA on a single-instance target is denied",
			req: Request{Operation: policy.OpCreate, Resource: hpaResource, Namespace: "shop", Name: "auto",
				Object: raw(t, hpa("auto", "apps/v1", "StatefulSet", "single-db", 3))},
			want: outcome{Mode: policy.ModeEnforce, Name: "auto", Denied: []policy.Rule{policy.RuleSingleInstance}},
		},
		{
			name: "an HPA on another group's kind is skipped",
			req: Request{Operation: policy.OpCreate, Resource: hpaResource, Namespace: "shop", Name: "auto",
				Object: raw(t, hpa("auto", "argoproj.io/v1alpha1", "StatefulSet", "single-db", 3))},
			want: outcome{Skipped: true, Name: "auto"},
		},
		{
			name: "an HPA on an apps kind statekeeper does not manage is skipped",
			req: Request{Operation: policy.OpCreate, Resource: hpaResource, Namespace: "shop", Name: "auto",
				Object: raw(t, hpa("auto", "apps/v1", "ReplicaSet", "single-db", 3))},
			want: outcome{Skipped: true, Name: "auto"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := decideAlike(t, testCluster(), tt.defaultMode, tt.req, (*Engine).Validate)
			require.NoError(t, err)
			assert.Equal(t, tt.want, outcomeOf(d))
		})
	}
}

func TestMutateOutcomes(t *testing.T) {
	engine := newEngine(testCluster(), "")
	fresh := statefulSet("redis", "stateful-multi", 2)
	fresh.Spec.ServiceName = ""
	d, err := engine.Mutate(context.Background(), Request{Operation: policy.OpCreate, Resource: statefulSetsResource, Namespace: "typo", Name: "redis",
		Object: raw(t, inNamespace(fresh, "typo"))})
	require.NoError(t, err)
	assert.Equal(t, outcome{Mode: policy.ModeEnforce, Name: "redis", Patched: true}, outcomeOf(d),
		"mutations apply; the invalid-mode warning is left to validation so that kubectl prints it once")

	d, err = engine.Mutate(context.Background(), Request{Operation: policy.OpCreate, Resource: statefulSetsResource, Namespace: "quiet", Name: "redis",
		Object: raw(t, inNamespace(fresh, "quiet"))})
	require.NoError(t, err)
	assert.Equal(t, outcome{Skipped: true, Mode: policy.ModeOff, Name: "redis"}, outcomeOf(d))
}

func TestDecodedObjects(t *testing.T) {
	engine := newEngine(testCluster(), "")
	d, err := engine.Validate(context.Background(), Request{Operation: policy.OpCreate, Resource: statefulSetsResource, Namespace: "shop", Name: "mysql",
		DecodedObject: statefulSet("mysql", "stateful-single", 3)})
	require.NoError(t, err)
	assert.Equal(t, outcome{Mode: policy.ModeEnforce, Name: "mysql", Denied: []policy.Rule{policy.RuleSingleInstance}}, outcomeOf(d))

	_, err = engine.Validate(context.Background(), Request{Operation: policy.OpCreate, Resource: statefulSetsResource, Namespace: "shop", Name: "mysql",
		DecodedObject: &appsv1.Deployment{TypeMeta: metav1.TypeMeta{Kind: "Deployment"}}})
	assert.EqualError(t, err, "invalid admission request: expected a StatefulSet object, got *v1.Deployment")
	assert.ErrorIs(t, err, ErrInvalidRequest)
}

func TestInvalidRequests(t *testing.T) {
	engine := newEngine(testCluster(), "")
	ctx := context.Background()
	sts := raw(t, statefulSet("db", "stateful-multi", 1))
	tests := []struct {
		name string
		call func() (Decision, error)
		want string
	}{
		{"unknown resource", func() (Decision, error) {
			return engine.Validate(ctx, Request{Operation: policy.OpCreate, Resource: Resource{Group: "", Version: "v1", Resource: "configmaps"}, Object: sts})
		}, "invalid admission request: configmaps is not validated by statekeeper"},
		{"scale on the mutating path", func() (Decision, error) {
			return engine.Mutate(ctx, Request{Operation: policy.OpUpdate, Resource: statefulSetScaleRes, Object: sts})
		}, "invalid admission request: statefulsets.apps/scale is not mutated by statekeeper"},
		{"delete on the mutating path", func() (Decision, error) {
			return engine.Mutate(ctx, Request{Operation: policy.OpDelete, Resource: statefulSetsResource, Namespace: "shop", OldObject: sts})
		}, `invalid admission request: operation "DELETE" is not reviewed`},
		{"delete without the object being deleted", func() (Decision, error) {
			return engine.Validate(ctx, Request{Operation: policy.OpDelete, Resource: statefulSetsResource, Namespace: "shop"})
		}, "old object: invalid admission request: the request carries no StatefulSet object"},
		{"no object", func() (Decision, error) {
			return engine.Validate(ctx, Request{Operation: policy.OpCreate, Resource: statefulSetsResource, Namespace: "shop"})
		}, "invalid admission request: the request carries no StatefulSet object"},
		{"another kind's body", func() (Decision, error) {
			return engine.Validate(ctx, Request{Operation: policy.OpUpdate, Resource: statefulSetScaleRes, Namespace: "shop", Object: sts})
		}, `invalid admission request: expected a Scale object, got kind "StatefulSet"`},
		{"update without the old object", func() (Decision, error) {
			return engine.Validate(ctx, Request{Operation: policy.OpUpdate, Resource: statefulSetsResource, Namespace: "shop", Object: sts})
		}, "old object: invalid admission request: the request carries no StatefulSet object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.call()
			assert.EqualError(t, err, tt.want)
			assert.ErrorIs(t, err, ErrInvalidRequest)
		})
	}
}

// failingLookup cannot read the cluster.
type failingLookup struct{ lookup.Lookup }

var errCacheDown = errors.New("cache not synced")

func (failingLookup) NamespaceMode(context.Context, string) (string, bool, error) {
	return "", false, errCacheDown
}

func TestLookupErrorsAreReturned(t *testing.T) {
	_, err := newEngine(failingLookup{}, "").Validate(context.Background(), Request{
		Operation: policy.OpCreate, Resource: statefulSetsResource, Namespace: "shop", Name: "db", Object: raw(t, statefulSet("db", "stateful-multi", 1)),
	})
	assert.EqualError(t, err, `looking up the mode of namespace "shop": cache not synced`)
	assert.NotErrorIs(t, err, ErrInvalidRequest, "the webhook answers 500 and the API server applies the failure policy")
}

func scale(name string, replicas *int32) *autoscalingv1.Scale {
	s := &autoscalingv1.Scale{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "Scale"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
	}
	if replicas != nil {
		s.Spec.Replicas = *replicas
	}
	return s
}

func hpa(name, apiVersion, kind, target string, maxReplicas int32) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: apiVersion, Kind: kind, Name: target},
			MaxReplicas:    maxReplicas,
		},
	}
}

// TestMutateDeniesKindMismatch: the API server's own validation runs between
// the mutating and the validating webhook and refuses a StatefulSet of a
// stateless type for the mount statekeeper did not declare, so the mutating
// half denies a kind mismatch itself, exactly as validation would.
func TestMutateDeniesKindMismatch(t *testing.T) {
	engine := newEngine(testCluster(), "")
	ctx := context.Background()
	for _, tt := range []struct {
		name, namespace, deployType string
		want                        outcome
	}{
		{"a stateless type on a StatefulSet", "shop", "stateless-multi",
			outcome{Mode: policy.ModeEnforce, Name: "cache", Denied: []policy.Rule{policy.RuleKindMismatch}}},
		{"an unknown type", "shop", "database",
			outcome{Mode: policy.ModeEnforce, Name: "cache", Denied: []policy.Rule{policy.RuleKindMismatch}}},
		{"warn mode warns", "relaxed", "stateless-multi",
			outcome{Mode: policy.ModeWarn, Name: "cache", Warned: []policy.Rule{policy.RuleKindMismatch}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sts := inNamespace(statefulSet("cache", tt.deployType, 1), tt.namespace)
			sts.Spec.ServiceName, sts.Spec.VolumeClaimTemplates = "", nil
			req := Request{Operation: policy.OpCreate, Resource: statefulSetsResource, Namespace: tt.namespace, Name: "cache", Object: raw(t, sts)}
			mutated, err := engine.Mutate(ctx, req)
			require.NoError(t, err)
			assert.Equal(t, tt.want, outcomeOf(mutated))
			validated, err := engine.Validate(ctx, req)
			require.NoError(t, err)
			assert.Equal(t, validated.Result, mutated.Result, "the same words as validation")
		})
	}
}

func TestInScope(t *testing.T) {
	m := lookup.NewMemory()
	for name, mode := range map[string]string{"quiet": "off", "loud": "warn", "typo": "of"} {
		m.Add(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{policy.LabelMode: mode}}})
	}
	for _, tc := range []struct {
		defaultMode policy.Mode
		namespace   string
		want        bool
	}{
		{policy.ModeEnforce, "quiet", false},
		{policy.ModeEnforce, "loud", true},
		{policy.ModeEnforce, "typo", true},
		{policy.ModeEnforce, "unlabelled", true},
		{policy.ModeOff, "unlabelled", false},
		{policy.ModeOff, "loud", true},
		{policy.ModeEnforce, "kube-system", false},
	} {
		e := New(m, Settings{DefaultMode: tc.defaultMode, ExcludedNamespaces: []string{"kube-system"}})
		got, err := e.InScope(context.Background(), tc.namespace)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, "namespace %q, default mode %s", tc.namespace, tc.defaultMode)
	}
}

// podsDown cannot list pods.
type podsDown struct{ *lookup.Memory }

func (podsDown) PodsExist(context.Context, string, *metav1.LabelSelector) (bool, error) {
	return false, errCacheDown
}

// TestPodsListedOnlyForATypeChange: listing pods is the costliest lookup, and
// only the type-change rule reads the stored workload's pods; /scale, HPAs
// and updates that keep the type never list them.
func TestPodsListedOnlyForATypeChange(t *testing.T) {
	engine := newEngine(podsDown{testCluster()}, "")
	ctx := context.Background()
	queue := raw(t, statefulSet("queue", "stateful-multi", 0))
	for _, req := range []Request{
		{Operation: policy.OpUpdate, Resource: statefulSetScaleRes, Namespace: "shop", Name: "single-db", Object: raw(t, scale("single-db", ptr.To[int32](2)))},
		{Operation: policy.OpCreate, Resource: hpaResource, Namespace: "shop", Name: "auto", Object: raw(t, hpa("auto", "apps/v1", "StatefulSet", "single-db", 3))},
		{Operation: policy.OpUpdate, Resource: statefulSetsResource, Namespace: "shop", Name: "queue", Object: queue, OldObject: queue},
	} {
		_, err := engine.Validate(ctx, req)
		assert.NoError(t, err, "%s", req.Resource)
	}
	_, err := engine.Validate(ctx, Request{Operation: policy.OpUpdate, Resource: statefulSetsResource, Namespace: "shop", Name: "queue",
		Object: raw(t, statefulSet("queue", "", 0)), OldObject: queue})
	assert.EqualError(t, err, `looking up the pods of statefulset "queue": cache not synced`)
}

// withAnnotations sets annotations (key, value, ...) on sts.
func withAnnotations(sts *appsv1.StatefulSet, kv ...string) *appsv1.StatefulSet {
	if sts.Annotations == nil {
		sts.Annotations = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		sts.Annotations[kv[i]] = kv[i+1]
	}
	return sts
}
