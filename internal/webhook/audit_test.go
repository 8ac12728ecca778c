package webhook

import (
	"testing"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// In an audit namespace both webhooks admit the object unchanged and say
// nothing to the client; the API server's audit log gets the rule.
func TestAuditModeRecordsOnly(t *testing.T) {
	m := cluster()
	m.Add(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{policy.LabelMode: string(policy.ModeAudit)}}})
	engine := testEngine(m)
	body := readFixture(t, "statefulset-create-stateful-single-3")
	want := admissionv1.AdmissionResponse{
		UID: uidOf(t, body), Allowed: true, Result: ok(),
		AuditAnnotations: map[string]string{
			"single-instance": `statefulset "mysql" is stateful-single: replicas must be 0 or 1, got 3 [single-instance]`},
	}
	assert.Equal(t, want, *serve(t, NewValidator(engine, logr.Discard(), nil), body))
	want.AuditAnnotations = nil // the mutating half finds nothing to refuse, and changes nothing
	assert.Equal(t, want, *serve(t, NewMutator(engine, logr.Discard(), nil), body))
}
