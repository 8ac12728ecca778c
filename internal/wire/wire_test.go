package wire_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	admissionv1beta1 "k8s.io/api/admission/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/internal/review"
	"github.com/statekeeper/statekeeper/internal/wire"
)

// The stock decoder, set up exactly as controller-runtime's admission.Webhook
// sets it up (pkg/webhook/admission/http.go): v1 and v1beta1 registered, the
// review decoded into an unregistered v1 type so that v1beta1 is coerced.
var stockCodecs = func() serializer.CodecFactory {
	scheme := runtime.NewScheme()
	utilruntime.Must(admissionv1.AddToScheme(scheme))
	utilruntime.Must(admissionv1beta1.AddToScheme(scheme))
	return serializer.NewCodecFactory(scheme)
}()

type unversionedReview struct{ admissionv1.AdmissionReview }

func stockDecode(body []byte) (admissionv1.AdmissionRequest, *schema.GroupVersionKind, error) {
	var req admissionv1.AdmissionRequest
	ar := unversionedReview{}
	ar.Request = &req
	ar.SetGroupVersionKind(admissionv1.SchemeGroupVersion.WithKind("AdmissionReview"))
	_, gvk, err := stockCodecs.UniversalDeserializer().Decode(body, nil, &ar)
	if ar.Request == nil {
		return req, gvk, err
	}
	return *ar.Request, gvk, err
}

// seeds are the webhook fixtures (every kind of request statekeeper serves)
// and envelopes with every optional field of a request set.
func seeds(t testing.TB) [][]byte {
	paths, err := filepath.Glob(filepath.Join("..", "webhook", "testdata", "*.json"))
	require.NoError(t, err)
	var out [][]byte
	for _, p := range paths {
		if strings.HasSuffix(p, ".patched.json") {
			continue
		}
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		out = append(out, b)
	}
	require.NotEmpty(t, out)
	return append(out, []byte(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{`+
		`"uid":"u","kind":{"group":"apps","version":"v1","kind":"StatefulSet"},`+
		`"resource":{"group":"apps","version":"v1","resource":"statefulsets"},"subResource":"",`+
		`"requestKind":{"group":"apps","version":"v1beta2","kind":"StatefulSet"},`+
		`"requestResource":{"group":"apps","version":"v1beta2","resource":"statefulsets"},"requestSubResource":"",`+
		`"name":"db","namespace":"shop","operation":"UPDATE",`+
		`"userInfo":{"username":"alice","uid":"42","groups":["dev","system:authenticated"],"extra":{"scopes":["a","b"]}},`+
		`"object":{"kind":"StatefulSet","apiVersion":"apps/v1","metadata":{"name":"db"},"spec":{"replicas":2}},`+
		`"oldObject":{"kind":"StatefulSet","apiVersion":"apps/v1","metadata":{"name":"db"},"spec":{"replicas":1}},`+
		`"dryRun":true,"options":{"kind":"UpdateOptions","apiVersion":"meta.k8s.io/v1","fieldManager":"kubectl"},`+
		`"someFutureField":{"x":[1,2]}}}`),
		[]byte(`{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"u","dryRun":null,"options":null,`+
			`"kind":{"group":"","version":"v1","kind":"ConfigMap"},"object":{"data":{"k":"v"}},"oldObject":null}}`),
		// Escapes (kubectl's last-applied annotation is JSON in a string):
		// such a body is read with copied strings.
		[]byte(`{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"u","operation":"CREATE",`+
			`"kind":{"group":"apps","version":"v1","kind":"StatefulSet"},"object":{"kind":"StatefulSet","apiVersion":"apps/v1",`+
			`"metadata":{"name":"db","annotations":{"last":"{\"a\":\"\u00e9\\n\"}","tab":"a\tb"}}}}}`),
		// null for a string leaves it as it was, in either reader.
		[]byte(`{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"u","name":null,`+
			`"kind":{"group":"apps","version":"v1","kind":"StatefulSet"},"object":{"kind":"StatefulSet","apiVersion":"apps/v1",`+
			`"metadata":{"name":"db","namespace":null,"labels":{"a":""}}}}}`),
	)
}

// extraSeeds is how many seeds follow the fixtures.
const extraSeeds = 4

// FuzzReadMatchesStock is the contract of the wire package: wherever the
// one-pass reader and the stock decoder both accept a body, they read the
// same request, every field of it; so does Decode, whichever path it takes.
// An object the one-pass reader decoded must equal the stock decoder's raw
// object decoded by the API machinery into the same Go type.
func FuzzReadMatchesStock(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		stock, gvk, err := stockDecode(body)
		if err != nil {
			return
		}
		if rv, ok := wire.ReadOnePass(body, review.NewObject); ok {
			assertSameRequest(t, "one pass", stock, gvk, rv)
		}
		if rv, err := wire.Decode(body, review.NewObject); err == nil {
			assertSameRequest(t, "Decode", stock, gvk, rv)
		}
	})
}

func assertSameRequest(t *testing.T, path string, stock admissionv1.AdmissionRequest, gvk *schema.GroupVersionKind, rv wire.Review) {
	t.Helper()
	require.NotNil(t, gvk, path)
	// Compared as parsed: the stock decoder reads apiVersion "/" as the empty
	// group version, the reader keeps the text; Read refuses both but v1 and
	// v1beta1 alike.
	gv, err := schema.ParseGroupVersion(rv.APIVersion)
	require.NoError(t, err, "%s: apiVersion %q", path, rv.APIVersion)
	assert.Equal(t, gvk.GroupVersion(), gv, "%s: apiVersion", path)
	got := rv.Request
	kind := schema.GroupKind{Group: stock.Kind.Group, Kind: stock.Kind.Kind}
	for _, o := range []struct {
		name    string
		decoded runtime.Object
		raw     runtime.RawExtension
		into    *runtime.RawExtension
	}{
		{"object", rv.Object, stock.Object, &got.Object},
		{"oldObject", rv.OldObject, stock.OldObject, &got.OldObject},
	} {
		if o.decoded == nil {
			continue
		}
		want := review.NewObject(kind)
		require.NotNil(t, want, "%s: %s decoded as %T for kind %v", path, o.name, o.decoded, kind)
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(o.raw.Raw, want); err != nil {
			// The readers check the container fields they skip as JSON
			// only (the contract's exception), so a value there that the
			// typed decode refuses does not keep them from taking the
			// object: compare what they read.
			want = review.NewObject(kind)
			require.NoError(t, sigsjson.UnmarshalCaseSensitivePreserveInts(withoutUnreadContainerFields(t, o.raw.Raw), want),
				"%s: the stock decoder cannot decode the %s the one-pass reader took (%v)", path, o.name, err)
		}
		keepReadContainerFields(want)
		if !reflect.DeepEqual(want, o.decoded) {
			t.Fatalf("%s: %s differs:\nstock:    %#v\none pass: %#v", path, o.name, want, o.decoded)
		}
		*o.into = o.raw
	}
	require.Equal(t, stock, got, path)
}

// withoutUnreadContainerFields is a workload's JSON without the keys of its
// pod template's containers that are not policy.ContainerFields.
func withoutUnreadContainerFields(t *testing.T, raw []byte) []byte {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var obj map[string]any
	require.NoError(t, d.Decode(&obj))
	podSpec := obj
	for _, key := range []string{"spec", "template", "spec"} {
		podSpec, _ = podSpec[key].(map[string]any)
	}
	for _, key := range []string{"containers", "initContainers"} {
		containers, _ := podSpec[key].([]any)
		for _, c := range containers {
			if fields, ok := c.(map[string]any); ok {
				maps.DeleteFunc(fields, func(k string, _ any) bool { return !slices.Contains(policy.ContainerFields, k) })
			}
		}
	}
	out, err := json.Marshal(obj)
	require.NoError(t, err)
	return out
}

// keepReadContainerFields trims a workload's pod template as the readers
// decode it: of its containers, only what policy reads.
func keepReadContainerFields(obj runtime.Object) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		policy.KeepReadTemplateFields(&o.Spec.Template.Spec)
	case *appsv1.StatefulSet:
		policy.KeepReadTemplateFields(&o.Spec.Template.Spec)
	}
}

// TestFixturesTakeTheFastPath: the fuzz target compares the one-pass reader
// only where it accepts, so every seed must take it but the fixtures whose
// object is broken on purpose, which the generic path must read.
func TestFixturesTakeTheFastPath(t *testing.T) {
	slow := map[string]bool{"malformed-object.json": true, "malformed-replicas.json": true, "pod-create-malformed.json": true}
	paths, err := filepath.Glob(filepath.Join("..", "webhook", "testdata", "*.json"))
	require.NoError(t, err)
	for _, p := range paths {
		if strings.HasSuffix(p, ".patched.json") {
			continue
		}
		body, err := os.ReadFile(p)
		require.NoError(t, err)
		_, fast := wire.ReadOnePass(body, review.NewObject)
		_, err = wire.Decode(body, review.NewObject)
		assert.NoError(t, err, p)
		assert.Equal(t, !slow[filepath.Base(p)], fast, p)
	}
	for _, s := range seeds(t)[len(seeds(t))-extraSeeds:] {
		_, fast := wire.ReadOnePass(s, review.NewObject)
		assert.True(t, fast, "%s", s)
	}
}

// TestStringsPointIntoTheBody: without escapes in the body, the one-pass
// reader does not copy strings out of it; a raw control character in a
// string is refused as the stock decoder refuses it.
func TestStringsPointIntoTheBody(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("..", "webhook", "testdata", "statefulset-create-stateful-multi.json"))
	require.NoError(t, err)
	rv, ok := wire.ReadOnePass(body, review.NewObject)
	require.True(t, ok)
	inBody := func(s string) bool {
		start := uintptr(unsafe.Pointer(unsafe.SliceData(body)))
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		return p >= start && p < start+uintptr(len(body))
	}
	sts := rv.Object.(*appsv1.StatefulSet)
	for _, s := range []string{rv.Request.Namespace, rv.Request.UserInfo.Username, sts.Name, sts.Spec.Template.Labels["app"], sts.Spec.Template.Spec.Containers[0].VolumeMounts[0].MountPath} {
		assert.True(t, inBody(s), "%q is a copy", s)
	}

	broken := strings.Replace(string(body), `"name": "`, "\"name\": \"\t", 1)
	require.NotEqual(t, string(body), broken)
	_, ok = wire.ReadOnePass([]byte(broken), review.NewObject)
	assert.False(t, ok)
	_, _, err = stockDecode([]byte(broken))
	assert.Error(t, err)
}

// TestWriteAsEncodingJSON: the answer is written exactly as encoding/json
// (which controller-runtime's webhook uses) writes it.
func TestWriteAsEncodingJSON(t *testing.T) {
	denial := apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "StatefulSet"}, "db", field.ErrorList{
		field.Forbidden(field.NewPath("spec", "replicas"), `replicas 3 > 1 on a "stateful-single" <workload> & more [single-instance]`),
	}).ErrStatus
	patchType := admissionv1.PatchTypeJSONPatch
	for _, resp := range []admissionv1.AdmissionResponse{
		{UID: "u", Allowed: true, Result: &metav1.Status{Code: 200}},
		{UID: "u", Allowed: false, Result: &denial, AuditAnnotations: map[string]string{"z": "a<b", "a": "é", "m": "\u2028"}},
		{UID: "u", Allowed: true, Patch: []byte(`[{"op":"add","path":"/metadata/labels/a","value":"b"}]`), PatchType: &patchType,
			Warnings: []string{"one", "two & <three>"}},
	} {
		rec := httptest.NewRecorder()
		wire.Write(rec, wire.V1beta1, &resp)
		var want bytes.Buffer
		require.NoError(t, json.NewEncoder(&want).Encode(struct {
			metav1.TypeMeta `json:",inline"`
			Response        *admissionv1.AdmissionResponse `json:"response,omitempty"`
		}{metav1.TypeMeta{APIVersion: wire.V1beta1, Kind: "AdmissionReview"}, &resp}))
		assert.Equal(t, want.String(), rec.Body.String())
		assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	}
}

// TestSkippedFieldsAreChecked: the container fields the readers skip are
// still checked to be JSON; a body the stock decoder refuses there is not
// taken by the one-pass reader either.
func TestSkippedFieldsAreChecked(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("..", "webhook", "testdata", "statefulset-create-stateful-multi.json"))
	require.NoError(t, err)
	_, ok := wire.ReadOnePass(body, review.NewObject)
	require.True(t, ok)
	image := regexp.MustCompile(`"image": *"[^"]*"`)
	require.True(t, image.Match(body))
	for name, replacement := range map[string]string{
		"control character": "\"image\": \"redis\t7\"",
		"unclosed object":   `"image": {"a": 1`,
		"bad literal":       `"image": nul`,
		"bad number":        `"image": 1.2.3`,
	} {
		broken := image.ReplaceAll(body, []byte(replacement))
		_, ok := wire.ReadOnePass(broken, review.NewObject)
		assert.False(t, ok, name)
		_, err := wire.Decode(broken, review.NewObject)
		assert.Error(t, err, name)
	}
}

// TestSkippedFieldsAreNotTyped: a value of a skipped container field that
// is JSON but not of the field's type (a number for the image, a malformed
// quantity) is taken, as the contract's exception says; the API server
// decodes every object before it calls a webhook, so it never sends one.
func TestSkippedFieldsAreNotTyped(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("..", "webhook", "testdata", "statefulset-create-stateful-multi.json"))
	require.NoError(t, err)
	image := regexp.MustCompile(`"image": *"[^"]*"`)
	for name, replacement := range map[string]string{
		"a number for a string": `"image": 5`,
		"a malformed quantity":  `"image": "x", "resources": {"requests": {"memory": "lots"}}`,
	} {
		odd := image.ReplaceAll(body, []byte(replacement))
		require.NotEqual(t, body, odd)
		rv, ok := wire.ReadOnePass(odd, review.NewObject)
		require.True(t, ok, name)
		sts := rv.Object.(*appsv1.StatefulSet)
		assert.Empty(t, sts.Spec.Template.Spec.Containers[0].Image, name)
		assert.NotEmpty(t, sts.Spec.Template.Spec.Containers[0].VolumeMounts, name)
	}
}

// TestEncodePatchAsEncodingJSON: a patch is written exactly as
// controller-runtime's Response.Complete writes it (encoding/json).
func TestEncodePatchAsEncodingJSON(t *testing.T) {
	claim := corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data", Annotations: map[string]string{"b": "<&>", "a": "\u2028"}},
		Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}}}}
	ops := []jsonpatch.Operation{
		jsonpatch.NewOperation("add", "/metadata/labels/a~1b", "v<1>"),
		jsonpatch.NewOperation("add", "/spec/volumeClaimTemplates", []corev1.PersistentVolumeClaim{claim}),
		jsonpatch.NewOperation("replace", "/spec/serviceName", nil),
		jsonpatch.NewOperation("remove", "/spec/x", nil),
		jsonpatch.NewOperation("add", "/metadata/annotations", map[string]string{"z": "1", "a": "2"}),
		jsonpatch.NewOperation("replace", "/spec/replicas", int32(1)),
	}
	for n := range len(ops) + 1 {
		got, err := wire.EncodePatch(ops[:n])
		require.NoError(t, err)
		want, err := json.Marshal(ops[:n])
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got))
	}
}

// TestReleaseReusesTheBody: a review's strings point into its pooled body;
// in race-enabled builds (the test suites) Release overwrites the body, so
// that a string kept past it is caught.
func TestReleaseReusesTheBody(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("..", "webhook", "testdata", "statefulset-create-stateful-multi.json"))
	require.NoError(t, err)
	req := httptest.NewRequest("POST", "/validate", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rv, err := wire.Read(req, review.NewObject)
	require.NoError(t, err)
	name := rv.Object.(*appsv1.StatefulSet).Name
	require.NotEmpty(t, name)
	kept := strings.Clone(name)
	rv.Release()
	rv.Release() // a second Release does nothing
	if wire.PoisonReleased {
		assert.NotEqual(t, kept, name, "the released body was not overwritten")
	}
	assert.Equal(t, "redis", kept)
}
