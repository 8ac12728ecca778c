package webhook

import (
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var update = flag.Bool("update", false, "rewrite the expected objects testdata/*.patched.json")

// invalid is the 422 status a denial must carry, written out in full so
// that the test does not share the code under test.
func invalid(group, kind, name string, causes ...metav1.StatusCause) *metav1.Status {
	msg := kind + "." + group + " \"" + name + "\" is invalid: "
	for i, c := range causes {
		if i > 0 {
			msg += ", "
		}
		msg += c.Field + ": " + c.Message
	}
	if len(causes) > 1 {
		msg = kind + "." + group + " \"" + name + "\" is invalid: [" + msg[len(kind+"."+group+" \""+name+"\" is invalid: "):] + "]"
	}
	return &metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusUnprocessableEntity, Reason: metav1.StatusReasonInvalid,
		Message: msg,
		Details: &metav1.StatusDetails{Name: name, Group: group, Kind: kind, Causes: causes},
	}
}

func forbidden(path, message string) metav1.StatusCause {
	return metav1.StatusCause{Type: metav1.CauseType(field.ErrorTypeForbidden), Field: path, Message: "Forbidden: " + message}
}

func ok() *metav1.Status { return &metav1.Status{Code: http.StatusOK} }

func badRequest(message string) *metav1.Status {
	return &metav1.Status{Code: http.StatusBadRequest, Message: message}
}

// answer is the whole AdmissionResponse to the review body: allowed exactly
// when status is ok(), with warnings and no patch, and an audit annotation
// per rule named by a denial or warning (every one here comes from a rule).
func answer(t testing.TB, body []byte, status *metav1.Status, warnings ...string) admissionv1.AdmissionResponse {
	var annotations map[string]string
	record := func(message string) {
		open := strings.LastIndex(message, " [")
		require.True(t, open > 0 && strings.HasSuffix(message, "]"), "%q names no rule", message)
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[message[open+2:len(message)-1]] = message
	}
	if status.Details != nil {
		for _, c := range status.Details.Causes {
			record(strings.TrimPrefix(c.Message, "Forbidden: "))
		}
	}
	for _, w := range warnings {
		record(w)
	}
	return admissionv1.AdmissionResponse{
		UID: uidOf(t, body), Allowed: status.Code == http.StatusOK, Result: status, Warnings: warnings,
		AuditAnnotations: annotations,
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		fixture  string
		want     *metav1.Status
		warnings []string
	}{
		{fixture: "statefulset-create-stateful-multi", want: ok()},
		{fixture: "statefulset-create-stateful-single-3", want: invalid("apps", "StatefulSet", "mysql",
			forbidden("spec.replicas", `statefulset "mysql" is stateful-single: replicas must be 0 or 1, got 3 [single-instance]`))},
		{fixture: "statefulset-create-stateful-single-3-warn", want: ok(), warnings: []string{
			`statefulset "mysql" is stateful-single: replicas must be 0 or 1, got 3 [single-instance]`}},
		{fixture: "statefulset-create-unmanaged", want: ok()},
		{fixture: "statefulset-update-reapply", want: ok()},
		{fixture: "statefulset-update-type-change", want: invalid("apps", "StatefulSet", "redis",
			forbidden("metadata.labels[statekeeper.io/deploy-type]", `statefulset "redis" is running with persistent volumes: `+
				`its deploy type cannot change from stateful-multi to stateful-single; scale it to 0 and back up its data first [type-change]`))},
		{fixture: "deployment-create-stateless-single-rwo", want: ok()},
		{fixture: "deployment-create-stateless-multi", want: ok()},
		{fixture: "deployment-create-kind-mismatch", want: invalid("apps", "Deployment", "db",
			forbidden("metadata.labels[statekeeper.io/deploy-type]", `deployment "db" is labelled stateful-single, which runs as a StatefulSet: `+
				`use stateless-single or stateless-multi, or create a statefulset; if a chart's common labels put it there, `+
				`label only the chart's StatefulSet (a Helm post-renderer, see the README's 'Opting in charts you do not write') `+
				`or remove the label from this deployment and its pod template [kind-mismatch]`))},
		{fixture: "deployment-update-stateless-multi", want: ok()},
		{fixture: "deployment-scale-single-3", want: invalid("autoscaling", "Scale", "legacy-wiki",
			forbidden("spec.replicas", `deployment "legacy-wiki" is stateless-single: replicas must be 0 or 1, got 3 [single-instance]`))},
		{fixture: "statefulset-scale-quorum-2", want: invalid("autoscaling", "Scale", "etcd",
			forbidden("spec.replicas", `statefulset "etcd" requires an odd number of replicas (statekeeper.io/quorum: "true") `+
				`so that a quorum cannot split, got 2: use 1 or 3; `+
				`if other workloads vote in the same quorum (an arbiter), declare their votes with statekeeper.io/quorum-external-votes [quorum]`))},
		// kubectl scale --replicas=0 sends a Scale without spec.replicas.
		{fixture: "statefulset-scale-omitted", want: ok()},
		{fixture: "hpa-create-single-target", want: invalid("autoscaling", "HorizontalPodAutoscaler", "single-db",
			forbidden("spec.maxReplicas", `horizontalpodautoscaler "single-db" targets statefulset "single-db", `+
				`which is stateful-single: maxReplicas must be 1, got 3 [single-instance]`))},
		{fixture: "hpa-create-foreign-target", want: ok()},
		{fixture: "delete", want: ok()},
		{fixture: "malformed-object", want: badRequest("invalid admission request: decoding the StatefulSet object: " +
			"json: cannot unmarshal string into Go value of type v1.StatefulSet")},
		{fixture: "malformed-replicas", want: badRequest("invalid admission request: decoding the StatefulSet object: " +
			"json: cannot unmarshal string into Go struct field StatefulSetSpec.spec.replicas of type int32")},
		{fixture: "empty-object", want: badRequest("invalid admission request: the request carries no StatefulSet object")},
		{fixture: "wrong-kind", want: badRequest(`statefulsets.apps requests must carry a StatefulSet.apps, got kind "ConfigMap"`)},
		{fixture: "wrong-object-kind", want: badRequest(`invalid admission request: expected a StatefulSet object, got kind "Deployment"`)},
	}
	validator := NewValidator(testEngine(cluster()), logr.Discard(), nil)
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			body := readFixture(t, tt.fixture)
			want := answer(t, body, tt.want, tt.warnings...)
			assert.Equal(t, want, *serve(t, validator, body))
		})
	}
}

// TestValidateUnlabelled: the unlabelled-workloads webhook warns, never
// denies, and its warnings reach the AdmissionResponse.
func TestValidateUnlabelled(t *testing.T) {
	tests := []struct {
		fixture  string
		warnings []string
	}{
		{fixture: "statefulset-create-unlabelled-typo", warnings: []string{
			`statefulset "pg" is not managed by statekeeper: it has no statekeeper.io/deploy-type label, and statekeeper.io/deploy_type (metadata.labels) ` +
				`is not a key statekeeper knows, so nothing reads it: did you mean statekeeper.io/deploy-type, a label of the workload (metadata.labels) or of its pod template? [unknown-key]`}},
		{fixture: "statefulset-create-unmanaged"},
	}
	validator := NewUnlabelledValidator(testEngine(cluster()), logr.Discard(), nil)
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			body := readFixture(t, tt.fixture)
			assert.Equal(t, answer(t, body, ok(), tt.warnings...), *serve(t, validator, body))
		})
	}
}

func TestMutate(t *testing.T) {
	tests := []struct {
		fixture string
		// patch is the exact JSON patch; empty means none.
		patch    string
		warnings []string
	}{
		{fixture: "statefulset-create-stateful-multi", patch: `[
			{"op":"add","path":"/spec/serviceName","value":"redis-headless"},
			{"op":"add","path":"/spec/volumeClaimTemplates","value":[{"metadata":{"name":"data","annotations":{"statekeeper.io/injected":"true"}},
				"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"5Gi"}}}}]},
			{"op":"add","path":"/spec/template/metadata/labels/statekeeper.io~1deploy-type","value":"stateful-multi"}]`},
		// Mutations apply in enforce and warn mode alike; validation denies.
		{fixture: "statefulset-create-stateful-single-3", patch: `[
			{"op":"add","path":"/spec/volumeClaimTemplates","value":[{"metadata":{"name":"data","annotations":{"statekeeper.io/injected":"true"}},
				"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}]}]`},
		{fixture: "statefulset-create-stateful-single-3-warn", patch: `[
			{"op":"add","path":"/spec/volumeClaimTemplates","value":[{"metadata":{"name":"data","annotations":{"statekeeper.io/injected":"true"}},
				"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}]}]`},
		// Re-applying the original manifest: the stored injections are carried over.
		{fixture: "statefulset-update-reapply", patch: `[
			{"op":"add","path":"/spec/serviceName","value":"redis-headless"},
			{"op":"add","path":"/spec/volumeClaimTemplates","value":[{"kind":"PersistentVolumeClaim","apiVersion":"v1",
				"metadata":{"name":"data"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"5Gi"}},
				"volumeMode":"Filesystem"},"status":{"phase":"Pending"}}]},
			{"op":"add","path":"/spec/template/metadata/labels/statekeeper.io~1deploy-type","value":"stateful-multi"}]`},
		{fixture: "statefulset-update-type-change"},
		{fixture: "statefulset-create-unmanaged"},
		{fixture: "deployment-create-stateless-single-rwo", patch: `[
			{"op":"replace","path":"/spec/strategy","value":{"type":"Recreate"}}]`},
		{fixture: "deployment-create-stateless-multi"},
		{fixture: "deployment-update-stateless-multi"},
		{fixture: "delete"},
	}
	mutator := NewMutator(testEngine(cluster()), logr.Discard(), nil)
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			assertMutation(t, mutator, tt.fixture, tt.patch, tt.warnings)
		})
	}
}

// assertMutation serves fixture through h and checks that it is allowed with
// exactly patch (none when empty) and warnings. A patch must apply to the raw
// object, give testdata/<fixture>.patched.json (whatever the Go types do not
// know, such as someFutureField and someFutureTopLevel, survives), and be
// idempotent: the patched object gets no patch.
func assertMutation(t *testing.T, h *Handler, fixture, wantPatch string, warnings []string) {
	t.Helper()
	body := readFixture(t, fixture)
	resp := serve(t, h, body)
	assert.True(t, resp.Allowed)
	assert.Equal(t, ok(), resp.Result)
	assert.Equal(t, warnings, resp.Warnings)
	if wantPatch == "" {
		assert.Nil(t, resp.Patch)
		assert.Nil(t, resp.PatchType)
		return
	}
	require.NotNil(t, resp.PatchType)
	assert.Equal(t, admissionv1.PatchTypeJSONPatch, *resp.PatchType)
	assert.JSONEq(t, wantPatch, string(resp.Patch))

	patch, err := jsonpatch.DecodePatch(resp.Patch)
	require.NoError(t, err)
	patched, err := patch.Apply(objectOf(t, body))
	require.NoError(t, err)
	expectedFile := filepath.Join("testdata", fixture+".patched.json")
	if *update {
		var pretty any
		require.NoError(t, json.Unmarshal(patched, &pretty))
		out, err := json.MarshalIndent(pretty, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(expectedFile, append(out, '\n'), 0o644))
	}
	expected, err := os.ReadFile(expectedFile)
	require.NoError(t, err)
	assert.JSONEq(t, string(expected), string(patched))

	again := serve(t, h, withObject(t, body, patched))
	assert.Nil(t, again.Patch)
	assert.True(t, again.Allowed)
}

// TestMutateDeniesKindMismatch: the API server validates a workload between
// the two webhooks, and refuses a StatefulSet of a stateless type for the
// volume mount statekeeper did not declare, so the mutating webhook denies a
// kind mismatch itself, with the validating webhook's very answer.
func TestMutateDeniesKindMismatch(t *testing.T) {
	tests := []struct {
		fixture  string
		want     *metav1.Status
		warnings []string
	}{
		{fixture: "statefulset-create-kind-mismatch", want: invalid("apps", "StatefulSet", "cache",
			forbidden("metadata.labels[statekeeper.io/deploy-type]", `statefulset "cache" is labelled stateless-multi, which runs as a Deployment: `+
				`use stateful-single or stateful-multi, or create a deployment [kind-mismatch]`))},
		{fixture: "statefulset-create-kind-mismatch-warn", want: ok(), warnings: []string{
			`statefulset "cache" is labelled stateless-multi, which runs as a Deployment: ` +
				`use stateful-single or stateful-multi, or create a deployment [kind-mismatch]`}},
		{fixture: "deployment-create-kind-mismatch", want: invalid("apps", "Deployment", "db",
			forbidden("metadata.labels[statekeeper.io/deploy-type]", `deployment "db" is labelled stateful-single, which runs as a StatefulSet: `+
				`use stateless-single or stateless-multi, or create a statefulset; if a chart's common labels put it there, `+
				`label only the chart's StatefulSet (a Helm post-renderer, see the README's 'Opting in charts you do not write') `+
				`or remove the label from this deployment and its pod template [kind-mismatch]`))},
	}
	engine := testEngine(cluster())
	mutator, validator := NewMutator(engine, logr.Discard(), nil), NewValidator(engine, logr.Discard(), nil)
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			body := readFixture(t, tt.fixture)
			want := answer(t, body, tt.want, tt.warnings...)
			assert.Equal(t, want, *serve(t, mutator, body))
			assert.Equal(t, want, *serve(t, validator, body))
		})
	}
}

func TestMutatorRefusesValidationOnlyResources(t *testing.T) {
	mutator := NewMutator(testEngine(cluster()), logr.Discard(), nil)
	for fixture, want := range map[string]string{
		"deployment-scale-single-3": "statekeeper does not handle deployments.apps/scale on this path",
		"hpa-create-single-target":  "statekeeper does not handle horizontalpodautoscalers.autoscaling on this path",
	} {
		body := readFixture(t, fixture)
		assert.Equal(t, answer(t, body, badRequest(want)), *serve(t, mutator, body), fixture)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg)
	require.NoError(t, err)
	engine := testEngine(cluster())
	mutator, validator := NewMutator(engine, logr.Discard(), metrics), NewValidator(engine, logr.Discard(), metrics)
	for _, fixture := range []string{
		"statefulset-create-stateful-multi",         // mutated, then allowed
		"statefulset-create-stateful-single-3",      // mutated, then denied
		"statefulset-create-stateful-single-3-warn", // mutated, then warned
		"statefulset-create-unmanaged",              // skipped twice
		"malformed-object",                          // error twice
	} {
		body := readFixture(t, fixture)
		serve(t, mutator, body)
		serve(t, validator, body)
	}
	assert.Equal(t, map[string]float64{
		"webhook=/mutate operation=CREATE resource=statefulsets outcome=mutated rule=none":             3,
		"webhook=/validate operation=CREATE resource=statefulsets outcome=allowed rule=none":           1,
		"webhook=/validate operation=CREATE resource=statefulsets outcome=denied rule=single-instance": 1,
		"webhook=/validate operation=CREATE resource=statefulsets outcome=warned rule=single-instance": 1,
		"webhook=/mutate operation=CREATE resource=statefulsets outcome=skipped rule=none":             1,
		"webhook=/validate operation=CREATE resource=statefulsets outcome=skipped rule=none":           1,
		"webhook=/mutate operation=CREATE resource=statefulsets outcome=error rule=none":               1,
		"webhook=/validate operation=CREATE resource=statefulsets outcome=error rule=none":             1,
	}, counters(t, reg, "statekeeper_admission_decisions_total"))

	_, err = NewMetrics(reg)
	assert.Error(t, err, "registering twice is refused, not a panic")
}

func uidOf(t testing.TB, body []byte) types.UID {
	var r admissionv1.AdmissionReview
	require.NoError(t, json.Unmarshal(body, &r))
	return r.Request.UID
}

func objectOf(t testing.TB, body []byte) []byte {
	var r struct {
		Request struct {
			Object json.RawMessage `json:"object"`
		} `json:"request"`
	}
	require.NoError(t, json.Unmarshal(body, &r))
	return r.Request.Object
}

// withObject returns the review body with its object replaced.
func withObject(t testing.TB, body, object []byte) []byte {
	var review, request map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &review))
	require.NoError(t, json.Unmarshal(review["request"], &request))
	request["object"] = object
	var err error
	review["request"], err = json.Marshal(request)
	require.NoError(t, err)
	out, err := json.Marshal(review)
	require.NoError(t, err)
	return out
}

// counters gathers the counter family name as "webhook=… operation=… resource=… outcome=… rule=…" → value.
func counters(t testing.TB, reg *prometheus.Registry, name string) map[string]float64 {
	families, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			key := "webhook=" + labels["webhook"] + " operation=" + labels["operation"] + " resource=" + labels["resource"] +
				" outcome=" + labels["outcome"] + " rule=" + labels["rule"]
			out[key] = m.GetCounter().GetValue()
		}
	}
	return out
}
