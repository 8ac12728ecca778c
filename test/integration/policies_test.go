package integration

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/internal/server"
	"github.com/statekeeper/statekeeper/test/workloads"
)

// TestPoliciesDecideAsTheWebhook installs the chart's ValidatingAdmissionPolicy
// (generated from the catalog) and runs the lookup-free cases twice: with the
// webhook alone (an enforce namespace, which no binding of the policy
// selects: the suite's webhooks are rendered with the policies off) and with
// the policy alone (an off namespace, which the webhooks never see, bound to
// the policy by a binding of this test that denies). Both must give the same
// decision and, for a denial, the same message: the webhook's first denial is
// the policy's. (envtest runs no controller manager, whose controller writes
// the policy's status.typeChecking: hack/celdiff type-checks it.)
func TestPoliciesDecideAsTheWebhook(t *testing.T) {
	t.Parallel()
	vap, probe := renderPolicy(t)
	webhook := newTenant(t, "")
	inProcess := newTenant(t, policy.ModeOff)
	c := webhook.c
	require.NoError(t, c.Create(t.Context(), vap))
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "it-policies-" + inProcess.ns},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        vap.Name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{corev1.LabelMetadataName: inProcess.ns},
			}},
		},
	}
	require.NoError(t, c.Create(t.Context(), binding))
	deniedBy := fmt.Sprintf("ValidatingAdmissionPolicy '%s' with binding '%s' denied request: ", vap.Name, binding.Name)

	// The API server's policy informer picks the binding up on its own time.
	inProcess.settle(func(dryRun bool) error {
		return inProcess.create(plainStatefulSet("probe", policy.StatefulSingle, 3, nil), true)
	}, func(err error) bool { return err != nil })

	tests := []struct {
		name   string
		object func() client.Object
		// update, when set, changes the stored object: the write judged is
		// then an UPDATE.
		update func(client.Object)
		denied bool
	}{
		{name: "stateful-single at 3 replicas", denied: true,
			object: func() client.Object { return plainStatefulSet("single", policy.StatefulSingle, 3, nil) }},
		{name: "stateless-single at 2 replicas", denied: true,
			object: func() client.Object { return workloads.Deployment("single", policy.StatelessSingle, 2) }},
		{name: "stateful-single at 1 replica",
			object: func() client.Object { return plainStatefulSet("one", policy.StatefulSingle, 1, nil) }},
		{name: "stateless-multi at 3 replicas",
			object: func() client.Object { return workloads.Deployment("multi", policy.StatelessMulti, 3) }},
		{name: "a deployment labelled stateful-multi", denied: true,
			object: func() client.Object { return workloads.Deployment("mismatch", policy.StatefulMulti, 1) }},
		{name: "a statefulset labelled stateless-multi", denied: true,
			object: func() client.Object { return plainStatefulSet("mismatch", policy.StatelessMulti, 1, nil) }},
		{name: "an unknown deploy type", denied: true,
			object: func() client.Object { return plainStatefulSet("unknown", "stateful-many", 1, nil) }},
		{name: "a type on the pod template only, at 3 replicas", denied: true,
			object: func() client.Object {
				sts := plainStatefulSet("template", "", 3, nil)
				sts.Spec.Template.Labels[policy.LabelDeployType] = string(policy.StatefulSingle)
				return sts
			}},
		{name: "an even quorum", denied: true,
			object: func() client.Object {
				return plainStatefulSet("quorum", policy.StatefulMulti, 2, map[string]string{policy.AnnotationQuorum: "true"})
			}},
		{name: "an even quorum with an external vote", denied: true,
			object: func() client.Object {
				return plainStatefulSet("arbiter", policy.StatefulMulti, 3, map[string]string{
					policy.AnnotationQuorum: "true", policy.AnnotationQuorumExternalVotes: "1"})
			}},
		{name: "an odd quorum with an external vote",
			object: func() client.Object {
				return plainStatefulSet("arbiter-ok", policy.StatefulMulti, 2, map[string]string{
					policy.AnnotationQuorum: "true", policy.AnnotationQuorumExternalVotes: "1"})
			}},
		{name: "every annotation unusable", denied: true,
			object: func() client.Object {
				return plainStatefulSet("annotations", policy.StatefulMulti, 1, map[string]string{
					policy.AnnotationStorageSize: "0", policy.AnnotationStorageClass: "Fast",
					policy.AnnotationQuorumExternalVotes: "x", policy.AnnotationQuorum: "yes", policy.AnnotationInjectEnv: "on"})
			}},
		{name: "an unmanaged statefulset with unusable annotations",
			object: func() client.Object {
				return plainStatefulSet("unmanaged", "", 4, map[string]string{policy.AnnotationStorageSize: "0"})
			}},
		{name: "UPDATE scaling a stateful-single to 2", denied: true,
			object: func() client.Object { return plainStatefulSet("grows", policy.StatefulSingle, 1, nil) },
			update: func(o client.Object) { o.(*appsv1.StatefulSet).Spec.Replicas = ptr.To[int32](2) }},
		{name: "UPDATE with an unusable storage size", denied: true,
			object: func() client.Object { return plainStatefulSet("resized", policy.StatefulMulti, 1, nil) },
			update: func(o client.Object) {
				o.SetAnnotations(map[string]string{policy.AnnotationStorageSize: "-1Gi"})
			}},
		{name: "UPDATE of the image",
			object: func() client.Object { return plainStatefulSet("image", policy.StatefulSingle, 1, nil) },
			update: func(o client.Object) {
				o.(*appsv1.StatefulSet).Spec.Template.Spec.Containers[0].Image = "registry.k8s.io/pause:3.9"
			}},
	}
	t.Run("the start-up probe", func(t *testing.T) {
		// Before the probe binding exists, the policy binds no object of
		// statekeeper's namespace: the probe's dry run is admitted.
		acts, reason, err := server.VerifyAdmissionPolicies(t.Context(), c, releaseNamespace)
		require.NoError(t, err)
		assert.False(t, acts)
		assert.Equal(t, "a server-side dry run the policy must deny was admitted: the API server runs no admission policies, or the policy or its probe binding is missing", reason)
		require.NoError(t, c.Create(t.Context(), probe))
		require.Eventually(t, func() bool {
			acts, reason, err = server.VerifyAdmissionPolicies(t.Context(), c, releaseNamespace)
			require.NoError(t, err)
			return acts
		}, settleTimeout, settlePoll, "the probe binding never acts: %s", reason)
		assert.Empty(t, reason)
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]string{
				"webhook": answer(t, webhook.in(t), "", tt.object(), tt.update),
				"policy":  answer(t, inProcess.in(t), deniedBy, tt.object(), tt.update),
			}
			assert.Equal(t, got["webhook"], got["policy"], "the policy and the webhook disagree")
			assert.Equal(t, tt.denied, got["webhook"] != "", "denied: %q", got["webhook"])
		})
	}
}

// answer writes obj (created, then changed by update when there is one: the
// judged write is then the UPDATE) and returns the first denial's message
// as users read it ("<message> [rule]"), or "" when it is admitted. Either
// denial is a 422 whose first cause carries it: the webhook's as a Forbidden
// field error, the policy's after deniedBy, which names the policy and the
// binding.
func answer(t *testing.T, tn *tenant, deniedBy string, obj client.Object, update func(client.Object)) string {
	t.Helper()
	var err error
	if update == nil {
		err = tn.create(obj, true)
	} else {
		require.NoError(t, tn.create(obj, false))
		update(obj)
		err = tn.update(obj, true)
	}
	if err == nil {
		return ""
	}
	var apiErr apierrors.APIStatus
	require.ErrorAs(t, err, &apiErr)
	status := apiErr.Status()
	require.Equal(t, metav1.StatusReasonInvalid, status.Reason, "not a denial: %v", err)
	require.NotNil(t, status.Details, "not a denial: %v", err)
	require.NotEmpty(t, status.Details.Causes, "not a denial: %v", err)
	first := status.Details.Causes[0].Message
	if deniedBy != "" {
		require.True(t, strings.HasPrefix(first, deniedBy), "not a denial of the policy: %v", err)
		return strings.TrimPrefix(first, deniedBy)
	}
	require.True(t, strings.HasPrefix(first, "Forbidden: "), "not a denial of the webhook: %v", err)
	return strings.TrimPrefix(first, "Forbidden: ")
}

// plainStatefulSet is a StatefulSet that mounts nothing: without the
// mutating webhook (the policy-only namespace) a mount of an undeclared
// volume is refused by the API server's validation before any policy runs.
func plainStatefulSet(name string, deployType policy.DeployType, replicas int32, annotations map[string]string) *appsv1.StatefulSet {
	sts := workloads.StatefulSet(name, deployType, replicas)
	sts.Spec.Template.Spec.Containers[0].VolumeMounts = nil
	sts.Annotations = annotations
	return sts
}

// renderPolicy renders the chart's ValidatingAdmissionPolicy and its probe
// binding as `helm template` does for an API server that serves them.
func renderPolicy(t *testing.T) (*admissionregistrationv1.ValidatingAdmissionPolicy, *admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
	t.Helper()
	var vap *admissionregistrationv1.ValidatingAdmissionPolicy
	var probe *admissionregistrationv1.ValidatingAdmissionPolicyBinding
	for _, obj := range renderServed(t, "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy", "templates/validatingadmissionpolicy.yaml") {
		switch o := obj.(type) {
		case *admissionregistrationv1.ValidatingAdmissionPolicy:
			vap = o
		case *admissionregistrationv1.ValidatingAdmissionPolicyBinding:
			if strings.HasSuffix(o.Name, "-probe") {
				probe = o
			}
		}
	}
	require.NotNil(t, vap, "rendered no ValidatingAdmissionPolicy")
	require.NotNil(t, probe, "rendered no probe binding")
	return vap, probe
}

// renderServed renders the chart's template as `helm template` does for an
// API server that serves apiVersion, decoded.
func renderServed(t *testing.T, apiVersion, template string) []runtime.Object {
	t.Helper()
	objects, err := helmTemplate(os.Getenv("HELM"), "template", "sk", chartDir, "--namespace", releaseNamespace,
		"--api-versions", apiVersion, "--show-only", template)
	require.NoError(t, err)
	return objects
}
