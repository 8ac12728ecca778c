package review

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/openapi"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Whether the API server lets a StatefulSet's claim templates change
// (KEP-4650, feature gate StatefulSetUpdateVolumeClaimTemplate, not served by
// Kubernetes 1.36): then a resized template is left as written and the
// StatefulSet controller grows the claims; statekeeper keeps its refusals
// (policy.CheckClaimTemplateResize), which upstream does not make.

// ClaimUpdatePolicyField is the StatefulSetSpec field KEP-4650 adds; an
// API server whose OpenAPI lacks it cannot let templates change.
const ClaimUpdatePolicyField = "volumeClaimUpdatePolicy"

// ClaimTemplateProbeName is the StatefulSet the probe creates (replicas 0,
// one claim template) in statekeeper's own namespace, which no webhook of
// statekeeper's reviews, and deletes again.
const ClaimTemplateProbeName = "statekeeper-claim-template-probe"

// ServesMutableClaimTemplates asks the API server whether it lets a
// StatefulSet's claim templates change: its OpenAPI must know
// ClaimUpdatePolicyField, and a server-side dry run that changes only the
// size of a template must be admitted (a field the OpenAPI shows may still
// be behind a feature gate that is off). c writes the probe StatefulSet in
// namespace.
func ServesMutableClaimTemplates(ctx context.Context, openAPI openapi.ClientWithContext, c client.Client, namespace string) (bool, error) {
	paths, err := openAPI.PathsWithContext(ctx)
	if err != nil {
		return false, fmt.Errorf("reading the API server's OpenAPI: %w", err)
	}
	apps, ok := paths["apis/apps/v1"]
	if !ok {
		return false, errors.New("the API server's OpenAPI has no apis/apps/v1")
	}
	doc, err := apps.SchemaWithContext(ctx, runtime.ContentTypeJSON)
	if err != nil {
		return false, fmt.Errorf("reading the OpenAPI of apps/v1: %w", err)
	}
	served, err := statefulSetSpecHas(doc, ClaimUpdatePolicyField)
	if err != nil || !served {
		return false, err
	}
	return AcceptsClaimTemplateResize(ctx, c, namespace)
}

// statefulSetSpecHas reports whether an OpenAPI v3 document of apps/v1
// lists the property in StatefulSetSpec.
func statefulSetSpecHas(doc []byte, property string) (bool, error) {
	var openAPI struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(doc, &openAPI); err != nil {
		return false, fmt.Errorf("decoding the OpenAPI of apps/v1: %w", err)
	}
	spec, ok := openAPI.Components.Schemas["io.k8s.api.apps.v1.StatefulSetSpec"]
	if !ok {
		return false, errors.New("the OpenAPI of apps/v1 has no io.k8s.api.apps.v1.StatefulSetSpec")
	}
	_, ok = spec.Properties[property]
	return ok, nil
}

// AcceptsClaimTemplateResize creates the probe StatefulSet in namespace
// (which statekeeper's webhooks never review), asks for a server-side dry run
// of the same with a larger template, and deletes it: admitted means
// templates can change. A refusal as Invalid is the answer no; any other
// error is returned.
func AcceptsClaimTemplateResize(ctx context.Context, c client.Client, namespace string) (bool, error) {
	probe := claimTemplateProbe(namespace)
	if err := c.Create(ctx, probe); err != nil && !apierrors.IsAlreadyExists(err) {
		return false, fmt.Errorf("creating the probe statefulset: %w", err)
	}
	defer func() { _ = c.Delete(context.WithoutCancel(ctx), claimTemplateProbe(namespace)) }()
	current := &appsv1.StatefulSet{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(probe), current); err != nil {
		return false, fmt.Errorf("reading the probe statefulset: %w", err)
	}
	current.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Mi")
	err := c.Update(ctx, current, client.DryRunAll)
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsInvalid(err):
		return false, nil
	default:
		return false, fmt.Errorf("dry run of a larger claim template: %w", err)
	}
}

func claimTemplateProbe(namespace string) *appsv1.StatefulSet {
	labels := map[string]string{"app.kubernetes.io/name": ClaimTemplateProbeName}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: ClaimTemplateProbeName, Namespace: namespace, Labels: labels},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "probe", Image: "registry.k8s.io/pause:3.10",
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
				}}},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Mi")}},
				},
			}},
		},
	}
}
