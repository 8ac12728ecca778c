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
)

// TestWebhookEnvelope covers what Webhook does before the engine: every
// broken envelope gets an AdmissionReview saying what is wrong, and a
// v1beta1 review is answered in v1beta1.
func TestWebhookEnvelope(t *testing.T) {
	validator := Webhook(NewValidator(testEngine(cluster()), logr.Discard(), nil))
	valid := readFixture(t, "statefulset-create-stateful-single-3")
	// controller-runtime answers a review it cannot read without a
	// version: the API server never sends one.
	tests := []struct {
		name        string
		body        []byte
		contentType string
		want        admissionv1.AdmissionReview
	}{
		{
			name: "no body", contentType: "application/json",
			want: errorReview(http.StatusBadRequest, "request body is empty"),
		},
		{
			name: "not JSON content", body: valid, contentType: "application/yaml",
			want: errorReview(http.StatusBadRequest, "contentType=application/yaml, expected application/json"),
		},
		{
			name: "truncated", body: valid[:len(valid)/2], contentType: "application/json",
			want: errorReview(http.StatusBadRequest, "couldn't get version/kind; json parse error: unexpected end of JSON input"),
		},
		{
			name: "trailing data", body: append(append([]byte{}, valid...), []byte(`{}`)...), contentType: "application/json",
			want: errorReview(http.StatusBadRequest,
				"couldn't get version/kind; json parse error: invalid character '{' after top-level value"),
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
			var got admissionv1.AdmissionReview
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestWebhookTooLarge(t *testing.T) {
	validator := Webhook(NewValidator(testEngine(cluster()), logr.Discard(), nil))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/validate", strings.NewReader(strings.Repeat(" ", 7<<20+1)))
	req.Header.Set("Content-Type", "application/json")
	validator.ServeHTTP(rec, req)
	var got admissionv1.AdmissionReview
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	assert.Equal(t, errorReview(http.StatusRequestEntityTooLarge, "request entity is too large; limit is 7340032 bytes"), got)
}

func errorReview(code int32, message string) admissionv1.AdmissionReview {
	return admissionv1.AdmissionReview{
		Response: &admissionv1.AdmissionResponse{Result: &metav1.Status{Code: code, Message: message}},
	}
}
