package integration

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/test/workloads"
)

// mutated is what the lookup-free StatefulSet mutations write, as stored.
type mutated struct {
	ServiceName    string
	ClaimTemplates []corev1.PersistentVolumeClaim
	TemplateLabels map[string]string
}

func mutatedOf(sts *appsv1.StatefulSet) mutated {
	return mutated{ServiceName: sts.Spec.ServiceName, ClaimTemplates: sts.Spec.VolumeClaimTemplates, TemplateLabels: sts.Spec.Template.Labels}
}

// TestMutatingPolicyMutatesAsTheWebhook installs the chart's
// MutatingAdmissionPolicy (generated from the catalog) and writes the same
// StatefulSets twice: with the mutating webhook alone (an enforce
// namespace: the suite's webhooks are rendered with the policies off, and no
// binding of the policy selects it) and with the policy alone (an off
// namespace, which the webhooks never see, bound to the policy by a binding
// of this test), and a third time with both (an enforce namespace the test's
// binding selects too). The stored objects must agree on every field the
// mutations write, and be what docs/spec.md §2 says.
func TestMutatingPolicyMutatesAsTheWebhook(t *testing.T) {
	t.Parallel()
	webhook := newTenant(t, "")
	inProcess := newTenant(t, policy.ModeOff)
	// Both, as a cluster with the chart's policies runs them: the policy
	// first, then the webhook, which finds nothing left to do.
	both := newTenant(t, "")
	bindMutatingPolicy(t, inProcess, both)

	labels := func(name string) map[string]string {
		return withDeployTypeLabel(map[string]string{"app": name}, policy.StatefulMulti)
	}
	tests := []struct {
		name   string
		object func() *appsv1.StatefulSet
		// update, when set, changes the stored object: the write compared
		// is then an UPDATE.
		update func(*appsv1.StatefulSet)
		want   mutated
	}{
		{name: "an undeclared mount",
			object: func() *appsv1.StatefulSet { return workloads.StatefulSet("multi", policy.StatefulMulti, 3) },
			want: mutated{ServiceName: "multi-headless", TemplateLabels: labels("multi"),
				ClaimTemplates: []corev1.PersistentVolumeClaim{storedClaimTemplate("data", "1Gi", "")}}},
		{name: "size and class from the annotations",
			object: func() *appsv1.StatefulSet {
				sts := workloads.StatefulSet("sized", policy.StatefulMulti, 1)
				sts.Annotations = map[string]string{policy.AnnotationStorageSize: "5Gi", policy.AnnotationStorageClass: "fast"}
				return sts
			},
			want: mutated{ServiceName: "sized-headless", TemplateLabels: labels("sized"),
				ClaimTemplates: []corev1.PersistentVolumeClaim{storedClaimTemplate("data", "5Gi", "fast")}}},
		{name: "an annotated empty class and a size in other units",
			object: func() *appsv1.StatefulSet {
				sts := workloads.StatefulSet("units", policy.StatefulMulti, 1)
				sts.Annotations = map[string]string{policy.AnnotationStorageSize: "2048Mi", policy.AnnotationStorageClass: ""}
				return sts
			},
			want: mutated{ServiceName: "units-headless", TemplateLabels: labels("units"),
				ClaimTemplates: []corev1.PersistentVolumeClaim{storedClaimTemplate("data", "2Gi", "")}}},
		{name: "mounts shared, in init containers, and beside a declared template and volume",
			object: func() *appsv1.StatefulSet {
				sts := workloads.StatefulSet("many", policy.StatefulMulti, 1)
				spec := &sts.Spec.Template.Spec
				spec.Containers[0].VolumeMounts = append(spec.Containers[0].VolumeMounts,
					corev1.VolumeMount{Name: "logs", MountPath: "/logs"}, corev1.VolumeMount{Name: "own", MountPath: "/own"},
					corev1.VolumeMount{Name: "scratch", MountPath: "/scratch"})
				spec.InitContainers = []corev1.Container{{Name: "init", Image: workloads.Image,
					VolumeMounts: []corev1.VolumeMount{{Name: "logs", MountPath: "/logs"}}}}
				spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
				own := storedClaimTemplate("own", "3Gi", "")
				own.Annotations = nil
				sts.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{own}
				return sts
			},
			want: mutated{ServiceName: "many-headless", TemplateLabels: labels("many"),
				ClaimTemplates: []corev1.PersistentVolumeClaim{
					func() corev1.PersistentVolumeClaim {
						own := storedClaimTemplate("own", "3Gi", "")
						own.Annotations = nil
						return own
					}(),
					storedClaimTemplate("logs", "1Gi", ""), storedClaimTemplate("data", "1Gi", ""),
				}}},
		{name: "its own serviceName, the type on the pod template only",
			object: func() *appsv1.StatefulSet {
				sts := workloads.StatefulSet("own", "", 1)
				sts.Spec.ServiceName = "own-service"
				sts.Spec.Template.Labels[policy.LabelDeployType] = string(policy.StatefulSingle)
				return sts
			},
			want: mutated{ServiceName: "own-service",
				TemplateLabels: map[string]string{"app": "own", policy.LabelDeployType: string(policy.StatefulSingle)},
				ClaimTemplates: []corev1.PersistentVolumeClaim{storedClaimTemplate("data", "1Gi", "")}}},
		{name: "a pod template without labels",
			object: func() *appsv1.StatefulSet {
				sts := workloads.StatefulSet("bare", policy.StatefulMulti, 1)
				sts.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{policy.LabelDeployType: string(policy.StatefulMulti)}}
				sts.Spec.Template.Labels = nil
				return sts
			},
			want: mutated{ServiceName: "bare-headless",
				TemplateLabels: map[string]string{policy.LabelDeployType: string(policy.StatefulMulti)},
				ClaimTemplates: []corev1.PersistentVolumeClaim{storedClaimTemplate("data", "1Gi", "")}}},
		{name: "unmanaged",
			object: func() *appsv1.StatefulSet { return plainStatefulSet("unmanaged", "", 1, nil) },
			want:   mutated{TemplateLabels: map[string]string{"app": "unmanaged"}}},
		{name: "UPDATE omitting serviceName, claim templates and the template label",
			object: func() *appsv1.StatefulSet {
				sts := workloads.StatefulSet("reapplied", policy.StatefulMulti, 1)
				sts.Annotations = map[string]string{policy.AnnotationStorageSize: "4Gi"}
				return sts
			},
			update: func(sts *appsv1.StatefulSet) {
				// The manifest again with a new image, as an apply of it
				// that owns none of the mutated fields sends it.
				sts.Spec.ServiceName = ""
				sts.Spec.VolumeClaimTemplates = nil
				delete(sts.Spec.Template.Labels, policy.LabelDeployType)
				sts.Spec.Template.Spec.Containers[0].Image = "registry.k8s.io/pause:3.9"
			},
			want: mutated{ServiceName: "reapplied-headless", TemplateLabels: labels("reapplied"),
				ClaimTemplates: []corev1.PersistentVolumeClaim{storedClaimTemplate("data", "4Gi", "")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]mutated{}
			for via, tn := range map[string]*tenant{"webhook": webhook.in(t), "policy": inProcess.in(t), "both": both.in(t)} {
				sts := tt.object()
				require.NoError(t, tn.create(sts, false), via)
				if tt.update != nil {
					tt.update(sts)
					require.NoError(t, tn.update(sts, false), via)
				}
				stored := &appsv1.StatefulSet{}
				require.NoError(t, tn.c.Get(t.Context(), client.ObjectKeyFromObject(sts), stored))
				got[via] = mutatedOf(stored)
			}
			assert.Equal(t, tt.want, got["webhook"], "the webhook")
			assert.Equal(t, got["webhook"], got["policy"], "the policy and the webhook disagree")
			assert.Equal(t, got["webhook"], got["both"], "the webhook after the policy")
		})
	}
}

// bindMutatingPolicy installs the chart's MutatingAdmissionPolicy with a
// binding of the tenants' namespaces alone, until the test ends, and waits
// until the API server applies it in the first: an undeclared mount, which
// the API server refuses unless the policy injects its claim, is admitted.
func bindMutatingPolicy(t *testing.T, tenants ...*tenant) {
	t.Helper()
	c := tenants[0].c
	mapolicy := renderMutatingPolicy(t)
	// The suite runs in one API server: the test's copy gets a name of its own.
	mapolicy.Name = "it-mutating-" + tenants[0].ns
	var namespaces []string
	for _, tn := range tenants {
		namespaces = append(namespaces, tn.ns)
	}
	require.NoError(t, c.Create(t.Context(), mapolicy))
	binding := &admissionregistrationv1.MutatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: mapolicy.Name},
		Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{
			PolicyName: mapolicy.Name,
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchExpressions: []metav1.LabelSelectorRequirement{{
					Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpIn, Values: namespaces,
				}},
			}},
		},
	}
	require.NoError(t, c.Create(t.Context(), binding))
	t.Cleanup(func() {
		// Cluster-scoped: other tests' namespaces must not meet it.
		assert.NoError(t, c.Delete(context.Background(), binding))
		assert.NoError(t, c.Delete(context.Background(), mapolicy))
	})
	// The API server's policy informer picks the binding up on its own time.
	first := tenants[0].in(t)
	first.settle(func(dryRun bool) error {
		return first.create(workloads.StatefulSet("probe", policy.StatefulMulti, 1), true)
	}, func(err error) bool { return err == nil })
}

// renderMutatingPolicy renders the chart's MutatingAdmissionPolicy as `helm
// template` does for an API server that serves it, with the chart's default
// storage size and class, which are the suite's statekeeper's.
func renderMutatingPolicy(t *testing.T) *admissionregistrationv1.MutatingAdmissionPolicy {
	t.Helper()
	for _, obj := range renderServed(t, "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy", "templates/mutatingadmissionpolicy.yaml") {
		if o, ok := obj.(*admissionregistrationv1.MutatingAdmissionPolicy); ok {
			return o
		}
	}
	require.FailNow(t, "rendered no MutatingAdmissionPolicy")
	return nil
}
