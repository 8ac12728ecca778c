// Package celdiff evaluates the chart's ValidatingAdmissionPolicy
// (policy.CELVariables, policy.CELValidations) with the API server's own
// admission libraries, the ones the ValidatingAdmissionPolicy plugin
// compiles and runs a policy with, and compares every decision with the Go
// rules (policy.ValidateWorkload): the CEL-decidable rules must deny the
// same requests with the same messages, in the same order. The
// MutatingAdmissionPolicy (policy.CELMutations) is compared likewise with
// the Go mutators (mutating_test.go). A module of its
// own, so that k8s.io/apiserver never reaches statekeeper's go.mod.
package celdiff

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/cel/environment"
	"k8s.io/utils/ptr"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// compile builds the policy's validator as the plugin does (its
// compilePolicy): variables stored in a composited compiler, validations
// and message expressions compiled against them, failure policy Fail.
func compile(t testing.TB) validating.Validator {
	t.Helper()
	compiler, err := plugincel.NewCompositedCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	require.NoError(t, err)
	var variables []plugincel.NamedExpressionAccessor
	for _, v := range policy.CELVariables() {
		variables = append(variables, &validating.Variable{Name: v.Name, Expression: v.Expression})
	}
	withAuthorizer := plugincel.OptionalVariableDeclarations{HasAuthorizer: true}
	compiler.CompileAndStoreVariables(variables, withAuthorizer, environment.StoredExpressions)
	var validations, messages []plugincel.ExpressionAccessor
	for _, v := range policy.CELValidations() {
		validations = append(validations, &validating.ValidationCondition{Expression: v.Expression, Reason: ptr.To(metav1.StatusReasonInvalid)})
		messages = append(messages, &validating.MessageExpressionCondition{MessageExpression: v.MessageExpression})
	}
	fail := admissionregistrationv1.Fail
	return validating.NewValidator(
		compiler.CompileCondition(validations, withAuthorizer, environment.StoredExpressions),
		nil,
		compiler.CompileCondition(nil, withAuthorizer, environment.StoredExpressions),
		compiler.CompileCondition(messages, plugincel.OptionalVariableDeclarations{}, environment.StoredExpressions),
		&fail, nil)
}

// request is one workload write: the object and, on UPDATE, the stored one.
type request struct {
	op          policy.Operation
	object, old runtime.Object
}

func (r request) kind() policy.Kind {
	if _, ok := r.object.(*appsv1.StatefulSet); ok {
		return policy.KindStatefulSet
	}
	return policy.KindDeployment
}

// celDenials are the messages of the validations that deny r, in order, as
// the API server would evaluate them; an evaluation error fails the test
// (with failure policy Fail it would refuse the write).
func celDenials(t testing.TB, v validating.Validator, r request) []string {
	t.Helper()
	kind := r.kind()
	gvk := appsv1.SchemeGroupVersion.WithKind(string(kind))
	gvr := appsv1.SchemeGroupVersion.WithResource(strings.ToLower(string(kind)) + "s")
	meta := r.object.(metav1.Object)
	op := admission.Create
	if r.op == policy.OpUpdate {
		op = admission.Update
	}
	var old runtime.Object
	if r.old != nil {
		old = r.old
	}
	attrs := admission.NewAttributesRecord(r.object, old, gvk, meta.GetNamespace(), meta.GetName(), gvr, "", op, nil, false, nil)
	versioned := &admission.VersionedAttributes{Attributes: attrs, VersionedObject: admission.NewLazyObject(r.object), VersionedKind: gvk}
	if old != nil {
		versioned.VersionedOldObject = admission.NewLazyObject(old)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: meta.GetNamespace()}}
	result := v.Validate(context.Background(), gvr, versioned, nil, ns, celconfig.RuntimeCELCostBudget, nil)
	var out []string
	for _, d := range result.Decisions {
		require.NotEqual(t, validating.EvalError, d.Evaluation, "an expression fails to evaluate on %s: %s", mustJSON(r.object), d.Message)
		if d.Action == validating.ActionDeny {
			out = append(out, d.Message)
		}
	}
	return out
}

// goDenials are the denials of policy.ValidateWorkload by the rules the
// policy decides, without lookups (no counterparts, Service, claims or
// autoscalers: what the policy cannot see either).
func goDenials(r request) []string {
	req := policy.WorkloadRequest{Operation: r.op, Object: view(r.object)}
	if r.old != nil {
		req.Old = &policy.Observed{Workload: view(r.old)}
	}
	covered := map[policy.Rule]bool{}
	for _, d := range policy.Rules {
		covered[d.Rule] = d.CEL != policy.CELNone
	}
	var out []string
	for _, v := range policy.ValidateWorkload(req).Denials {
		if covered[v.Rule] {
			out = append(out, v.String())
		}
	}
	return out
}

func view(o runtime.Object) policy.Workload {
	switch o := o.(type) {
	case *appsv1.StatefulSet:
		return policy.FromStatefulSet(o)
	case *appsv1.Deployment:
		return policy.FromDeployment(o)
	}
	panic(fmt.Sprintf("not a workload: %T", o))
}

// printable reports whether every statekeeper annotation value is
// printable: %q escapes the others (\x00, \u200b), which CEL's
// strings.quote writes as they are, so for them only the decisions agree.
func printable(r request) bool {
	for _, v := range view(r.object).Annotations {
		if strings.IndexFunc(v, func(c rune) bool { return !strconv.IsPrint(c) }) >= 0 {
			return false
		}
	}
	return true
}

// agree compares the two answers to r: the same denials, in the same order,
// with the same messages (or, for unprintable values, of the same rules).
// It returns the policy's denials.
func agree(t *testing.T, v validating.Validator, r request) []string {
	t.Helper()
	got, want := celDenials(t, v, r), goDenials(r)
	if printable(r) {
		require.Equal(t, want, got, "object %s", mustJSON(r.object))
	} else {
		require.Equal(t, rulesOf(want), rulesOf(got), "object %s", mustJSON(r.object))
	}
	return got
}

// rulesOf is the "[rule]" each message ends with.
func rulesOf(messages []string) []string {
	out := make([]string, len(messages))
	for i, m := range messages {
		out[i] = m[strings.LastIndex(m, " ["):]
	}
	return out
}

func mustJSON(o any) string {
	b, err := json.Marshal(o)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Values the corpus crosses: every deploy type and some that are none, and
// annotation values at and around each boundary the Go rules parse.
var (
	deployTypes = []string{"", "stateful-single", "stateful-multi", "stateless-single", "stateless-multi", "bogus", "Stateful-Single", "-"}
	replicas    = []*int32{nil, ptr.To[int32](0), ptr.To[int32](1), ptr.To[int32](2), ptr.To[int32](3)}
	quorums     = []string{"", "true", "yes"}
	// quorumTypes are the types crossed with the quorum values: one of each
	// kind and size, an invalid one and none.
	quorumTypes = []string{"", "stateful-multi", "stateless-single", "bogus"}
	votes       = []string{"", "0", "1", "2", "-1", "+1", "007", "-0", "x", "1.0", " 1", "2147483647", "2147483648", "99999999999999999999", "0x1"}
	sizes       = []string{"", "10Gi", "1", "0", "-1Gi", "0.5", "abc", "10 Gi", "1e3", "1Ei"}
	classes     = []string{"", "fast", "fast-ssd.example.com", "Fast", "a..b", "-a", "a_b", strings.Repeat("a", 253), strings.Repeat("a", 254), "é"}
	bools       = []string{"", "true", "false", "True", "1", "\x00", "\u200b"}
)

// workload builds a workload of kind named "w" in namespace "shop" with the
// deploy type (none when empty; with onTemplate, only on the pod template)
// and annotations (an empty value is left out).
func workload(kind policy.Kind, deployType string, onTemplate bool, replicas *int32, annotations map[string]string) runtime.Object {
	meta := metav1.ObjectMeta{Name: "w", Namespace: "shop", Labels: map[string]string{"app": "w"}, Annotations: map[string]string{}}
	template := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "w"}}}
	if deployType != "" {
		labels := meta.Labels
		if onTemplate {
			labels = template.Labels
		}
		labels[policy.LabelDeployType] = deployType
	}
	for k, v := range annotations {
		if v != "" {
			meta.Annotations[k] = v
		}
	}
	selector := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "w"}}
	if kind == policy.KindStatefulSet {
		return &appsv1.StatefulSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"}, ObjectMeta: meta,
			Spec: appsv1.StatefulSetSpec{Replicas: replicas, Selector: selector, Template: template}}
	}
	return &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: meta,
		Spec: appsv1.DeploymentSpec{Replicas: replicas, Selector: selector, Template: template}}
}

// corpus crosses the values: types, replicas, quorum and external votes all
// together (what single-instance, kind-mismatch and quorum read), the other
// annotations each on its own.
func corpus() []request {
	var out []request
	add := func(o runtime.Object) {
		out = append(out, request{op: policy.OpCreate, object: o})
		// An UPDATE from a stored workload of the same type at one replica.
		old := o.DeepCopyObject()
		switch old := old.(type) {
		case *appsv1.StatefulSet:
			old.Spec.Replicas = ptr.To[int32](1)
		case *appsv1.Deployment:
			old.Spec.Replicas = ptr.To[int32](1)
		}
		out = append(out, request{op: policy.OpUpdate, object: o, old: old})
	}
	for _, kind := range []policy.Kind{policy.KindDeployment, policy.KindStatefulSet} {
		for _, t := range deployTypes {
			for _, onTemplate := range []bool{false, true} {
				for _, n := range replicas {
					add(workload(kind, t, onTemplate, n, nil))
					if !slices.Contains(quorumTypes, t) || onTemplate {
						continue
					}
					for _, q := range quorums {
						for _, v := range votes {
							add(workload(kind, t, onTemplate, n, map[string]string{policy.AnnotationQuorum: q, policy.AnnotationQuorumExternalVotes: v}))
						}
					}
				}
				for _, s := range sizes {
					add(workload(kind, t, onTemplate, nil, map[string]string{policy.AnnotationStorageSize: s}))
				}
				for _, c := range classes {
					add(workload(kind, t, onTemplate, nil, map[string]string{policy.AnnotationStorageClass: c}))
				}
				for _, b := range bools {
					add(workload(kind, t, onTemplate, ptr.To[int32](3), map[string]string{policy.AnnotationQuorum: b, policy.AnnotationInjectEnv: b}))
				}
				// Every annotation unusable at once: the denials in order.
				add(workload(kind, t, onTemplate, ptr.To[int32](2), map[string]string{
					policy.AnnotationQuorum: "true", policy.AnnotationQuorumExternalVotes: "x", policy.AnnotationStorageSize: "0",
					policy.AnnotationStorageClass: "Fast", policy.AnnotationInjectEnv: "on",
				}))
			}
		}
	}
	return out
}

// TestPolicyAgreesWithGoOnTheCorpus: over the crossed values, the policy
// denies exactly what the Go rules it covers deny, with the same messages.
func TestPolicyAgreesWithGoOnTheCorpus(t *testing.T) {
	v := compile(t)
	requests := corpus()
	denied := map[string]int{}
	for _, r := range requests {
		for _, m := range agree(t, v, r) {
			denied[m[strings.LastIndex(m, " ["):]]++
		}
	}
	// The corpus reaches every rule the catalog marks CEL-decidable.
	for _, d := range policy.Rules {
		if d.CEL != policy.CELNone {
			require.NotZero(t, denied[" ["+string(d.Rule)+"]"], "no case of the corpus is denied by %s", d.Rule)
		}
	}
	t.Logf("%d requests, denials by rule: %v", len(requests), denied)
}

// TestPolicyAgreesWithGoOnTheWebhookFixtures: the AdmissionReview fixtures
// of the webhook's tests (internal/webhook/testdata) that write a workload.
func TestPolicyAgreesWithGoOnTheWebhookFixtures(t *testing.T) {
	v := compile(t)
	files, err := filepath.Glob(filepath.Join("..", "..", "internal", "webhook", "testdata", "*.json"))
	require.NoError(t, err)
	seen := 0
	for _, f := range files {
		if r, ok := fixture(t, f); ok {
			t.Run(filepath.Base(f), func(t *testing.T) { agree(t, v, r) })
			seen++
		}
	}
	require.NotZero(t, seen)
}

// fixture reads an AdmissionReview fixture as a workload request; ok is
// false for the others (pods, scale, HPAs, deletions, malformed bodies).
func fixture(t testing.TB, path string) (request, bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var review admissionv1.AdmissionReview
	if json.Unmarshal(b, &review) != nil || review.Request == nil || review.Request.SubResource != "" {
		return request{}, false
	}
	req := review.Request
	var op policy.Operation
	switch req.Operation {
	case admissionv1.Create:
		op = policy.OpCreate
	case admissionv1.Update:
		op = policy.OpUpdate
	default:
		return request{}, false
	}
	object, ok := decode(req.Kind.Kind, req.Object.Raw)
	if !ok {
		return request{}, false
	}
	r := request{op: op, object: object}
	if op == policy.OpUpdate {
		if r.old, ok = decode(req.Kind.Kind, req.OldObject.Raw); !ok {
			return request{}, false
		}
	}
	object.(metav1.Object).SetNamespace(req.Namespace)
	return r, true
}

func decode(kind string, raw []byte) (runtime.Object, bool) {
	var o runtime.Object
	switch kind {
	case "StatefulSet":
		o = &appsv1.StatefulSet{}
	case "Deployment":
		o = &appsv1.Deployment{}
	default:
		return nil, false
	}
	if len(raw) == 0 || json.Unmarshal(raw, o) != nil {
		return nil, false
	}
	return o, true
}

// FuzzPolicyAgreesWithGo: any workload the API server could store is
// judged alike (the seeds are the webhook's fixtures and the fuzz seeds'
// workloads; `go test -fuzz` explores from them).
func FuzzPolicyAgreesWithGo(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("..", "..", "internal", "webhook", "testdata", "*.json"))
	require.NoError(f, err)
	for _, file := range files {
		if r, ok := fixture(f, file); ok {
			f.Add(r.kind() == policy.KindStatefulSet, r.op == policy.OpUpdate, []byte(mustJSON(r.object)))
		}
	}
	f.Add(true, true, []byte(`{"kind":"StatefulSet","metadata":{"labels":{"statekeeper.io/deploy-type":"stateful-single"}},"spec":{"replicas":-1,"template":{"spec":{"volumes":[{"name":"a","persistentVolumeClaim":{}}]}}}}`))
	v := compile(f)
	f.Fuzz(func(t *testing.T, statefulSet, update bool, raw []byte) {
		kind := "Deployment"
		if statefulSet {
			kind = "StatefulSet"
		}
		object, ok := decode(kind, raw)
		if !ok || !valid(object) {
			t.Skip()
		}
		r := request{op: policy.OpCreate, object: object}
		if update {
			r.op, r.old = policy.OpUpdate, object.DeepCopyObject()
		}
		agree(t, v, r)
	})
}

// valid keeps what the API server's validation, which runs before a
// validating policy, lets through of what the policy reads: a name and
// label values that are valid (the messages quote them as they are).
func valid(o runtime.Object) bool {
	meta := o.(metav1.Object)
	if meta.GetName() == "" || !isLabelValue(meta.GetName()) {
		return false
	}
	labels := []map[string]string{meta.GetLabels()}
	switch o := o.(type) {
	case *appsv1.StatefulSet:
		labels = append(labels, o.Spec.Template.Labels)
	case *appsv1.Deployment:
		labels = append(labels, o.Spec.Template.Labels)
	}
	return !slices.ContainsFunc(labels, func(m map[string]string) bool {
		for _, v := range m {
			if !isLabelValue(v) {
				return true
			}
		}
		return false
	})
}

func isLabelValue(v string) bool {
	return len(v) <= 63 && strings.IndexFunc(v, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.')
	}) < 0
}

// BenchmarkPolicy is what the policy costs the API server per workload
// write it admits: every validation evaluated, no message.
func BenchmarkPolicy(b *testing.B) {
	v := compile(b)
	o := workload(policy.KindStatefulSet, string(policy.StatefulMulti), false, ptr.To[int32](3),
		map[string]string{policy.AnnotationQuorum: "true", policy.AnnotationStorageSize: "10Gi"})
	r := request{op: policy.OpUpdate, object: o, old: o.DeepCopyObject()}
	for b.Loop() {
		if got := celDenials(b, v, r); len(got) != 0 {
			b.Fatal(got)
		}
	}
}
