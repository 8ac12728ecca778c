package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/statekeeper/statekeeper/internal/wire"
)

// TestServeHTTPEnvelope covers what Handler.ServeHTTP does before the
// engine: every broken envelope gets a well-formed AdmissionReview saying
// what is wrong.
func TestServeHTTPEnvelope(t *testing.T) {
	validator := NewValidator(testEngine(cluster()), logr.Discard(), nil)
	valid := readFixture(t, "statefulset-create-stateful-single-3")
	tests := []struct {
		name        string
		body        []byte
		contentType string
		want        admissionv1.AdmissionReview
	}{
		{
			name: "no body", contentType: "application/json",
			want: errorReview("admission.k8s.io/v1", http.StatusBadRequest, "request body is empty"),
		},
		{
			name: "not JSON content", body: valid, contentType: "application/yaml",
			want: errorReview("admission.k8s.io/v1", http.StatusBadRequest, "contentType=application/yaml, expected application/json"),
		},
		{
			name: "truncated", body: valid[:len(valid)/2], contentType: "application/json",
			want: errorReview("admission.k8s.io/v1", http.StatusBadRequest, "decoding the AdmissionReview: unexpected end of JSON input"),
		},
		{
			name: "trailing data", body: append(append([]byte{}, valid...), []byte(`{}`)...), contentType: "application/json",
			want: errorReview("admission.k8s.io/v1", http.StatusBadRequest,
				"decoding the AdmissionReview: invalid character '{' after top-level value"),
		},
		{
			name: "not an AdmissionReview", body: []byte(`{"apiVersion":"v1","kind":"ConfigMap"}`), contentType: "application/json",
			want: errorReview("admission.k8s.io/v1", http.StatusBadRequest, `expected an AdmissionReview, got kind "ConfigMap"`),
		},
		{
			name: "no request", body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), contentType: "application/json",
			want: errorReview("admission.k8s.io/v1", http.StatusBadRequest, "the AdmissionReview carries no request"),
		},
		{
			name: "unknown version", body: bytes.Replace(valid, []byte(`"admission.k8s.io/v1"`), []byte(`"admission.k8s.io/v2"`), 1),
			contentType: "application/json",
			want: errorReview("admission.k8s.io/v1", http.StatusBadRequest,
				`expected an admission.k8s.io/v1 AdmissionReview, got apiVersion "admission.k8s.io/v2"`),
		},
		{
			name: "v1beta1 is answered in v1beta1", body: bytes.Replace(valid, []byte(`"admission.k8s.io/v1"`), []byte(`"admission.k8s.io/v1beta1"`), 1),
			contentType: "application/json",
			want: admissionv1.AdmissionReview{
				TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1beta1", Kind: "AdmissionReview"},
				Response: &admissionv1.AdmissionResponse{UID: "00000000-0000-0000-0000-000000000002", Result: invalid("apps", "StatefulSet", "mysql",
					forbidden("spec.replicas", `statefulset "mysql" is stateful-single: replicas must be 0 or 1, got 3 [single-instance]`)),
					AuditAnnotations: map[string]string{
						"single-instance": `statefulset "mysql" is stateful-single: replicas must be 0 or 1, got 3 [single-instance]`}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(tt.body))
			if tt.body == nil {
				req.Body = http.NoBody
			}
			req.Header.Set("Content-Type", tt.contentType)
			validator.ServeHTTP(rec, req)
			assert.Equal(t, http.StatusOK, rec.Code)
			assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			var got admissionv1.AdmissionReview
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestServeHTTPTooLarge(t *testing.T) {
	validator := NewValidator(testEngine(cluster()), logr.Discard(), nil)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/validate", strings.NewReader(strings.Repeat(" ", wire.MaxRequestSize+1)))
	req.Header.Set("Content-Type", "application/json")
	validator.ServeHTTP(rec, req)
	var got admissionv1.AdmissionReview
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	assert.Equal(t, errorReview("admission.k8s.io/v1", http.StatusRequestEntityTooLarge, "request body is larger than 7340032 bytes"), got)
}

// TestServeHTTPFieldOrder: the one-pass reader decodes objects by the kind
// announced before them; a review written in another order (object first)
// must get the same answer through the raw path.
func TestServeHTTPFieldOrder(t *testing.T) {
	validator := NewValidator(testEngine(cluster()), logr.Discard(), nil)
	body := readFixture(t, "statefulset-create-stateful-single-3")
	var review struct {
		APIVersion string                     `json:"apiVersion"`
		Kind       string                     `json:"kind"`
		Request    map[string]json.RawMessage `json:"request"`
	}
	require.NoError(t, json.Unmarshal(body, &review))
	// Go writes map keys sorted: "kind" < "name" < "object" < "oldObject" <
	// ... is API-server order too, so put the object under a key that sorts first.
	var reordered bytes.Buffer
	reordered.WriteString(`{"request":{"object":` + string(review.Request["object"]))
	for key, value := range review.Request {
		if key != "object" {
			reordered.WriteString(`,"` + key + `":` + string(value))
		}
	}
	reordered.WriteString(`},"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}`)
	assert.Equal(t, serve(t, validator, body), serve(t, validator, reordered.Bytes()))
}

func errorReview(apiVersion string, code int32, message string) admissionv1.AdmissionReview {
	return admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: "AdmissionReview"},
		Response: &admissionv1.AdmissionResponse{Result: &metav1.Status{Code: code, Message: message}},
	}
}
