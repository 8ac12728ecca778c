package celdiff

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/cel/openapi/resolver"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// TestPolicyTypeChecks type-checks the policy as the API server's policy
// status controller does (validating.TypeChecker, which writes
// status.typeChecking), against the Deployment and StatefulSet schemas a real
// API server publishes: no expression may draw a warning, which would mean
// a field that does not exist or a type that does not fit. envtest runs no
// controller manager, so the status itself is never written there.
func TestPolicyTypeChecks(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is unset: `make test` sets it to the envtest binaries")
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, env.Stop()) })
	client, err := discovery.NewDiscoveryClientForConfig(cfg)
	require.NoError(t, err)
	checker := &validating.TypeChecker{
		SchemaResolver: &resolver.ClientDiscoveryResolver{Discovery: client},
		RestMapper:     restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(client)),
	}
	assert.Empty(t, checker.Check(policyObject()))

	// The check can fail: a field Deployments do not have.
	broken := policyObject()
	broken.Spec.Validations[0].Expression = "object.spec.volumeClaimTemplates.size() == 0"
	warnings := checker.Check(broken)
	require.Len(t, warnings, 1)
	assert.Equal(t, "spec.validations[0].expression", warnings[0].FieldRef)
	assert.Equal(t, "apps/v1, Kind=Deployment: ERROR: <input>:1:12: undefined field 'volumeClaimTemplates'\n"+
		" | object.spec.volumeClaimTemplates.size() == 0\n"+
		" | ...........^\n", warnings[0].Warning)
}

// policyObject is the chart's policy as the API server stores it: what
// internal/admissionpolicy renders, without Helm's metadata.
func policyObject() *admissionregistrationv1.ValidatingAdmissionPolicy {
	vap := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "statekeeper"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
					Rule: admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"},
						Resources: []string{"deployments", "statefulsets"}},
				},
			}}},
		},
	}
	for _, v := range policy.CELVariables() {
		vap.Spec.Variables = append(vap.Spec.Variables, admissionregistrationv1.Variable{Name: v.Name, Expression: v.Expression})
	}
	for _, v := range policy.CELValidations() {
		vap.Spec.Validations = append(vap.Spec.Validations, admissionregistrationv1.Validation{Expression: v.Expression, MessageExpression: v.MessageExpression})
	}
	return vap
}
