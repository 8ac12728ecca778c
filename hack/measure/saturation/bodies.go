package main

import (
	"encoding/json"
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// requestUID is the uid of every request; the answers must carry it.
const requestUID = types.UID("3b6fdd5e-9d54-4d5c-a4c6-53f0a0c1e2aa")

// body is one AdmissionReview every server is loaded with.
type body struct {
	name string
	json []byte
}

// reviewBodies are a StatefulSet CREATE as kubectl sends it for a
// stateful-multi database: one of about 1 KB, and the same StatefulSet
// whose container carries enough environment variables to make 66 kB
// (long env blocks are what make real workloads that big).
func reviewBodies(namespace string) ([]body, error) {
	small, err := admissionReview(statefulSet(namespace, "db", 0))
	if err != nil {
		return nil, err
	}
	// Each variable adds about 60 bytes: start below 66 kB and grow until
	// the body reaches it.
	envVars := (66_000 - len(small)) / 80
	var large []byte
	for ; ; envVars++ {
		if large, err = admissionReview(statefulSet(namespace, "db", envVars)); err != nil {
			return nil, err
		}
		if len(large) >= 66_000 {
			break
		}
	}
	return []body{
		{name: fmt.Sprintf("%.1f KB", float64(len(small))/1000), json: small},
		{name: fmt.Sprintf("%.0f KB", float64(len(large))/1000), json: large},
	}, nil
}

func admissionReview(sts *appsv1.StatefulSet) ([]byte, error) {
	object, err := json.Marshal(sts)
	if err != nil {
		return nil, err
	}
	gvk := metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}
	gvr := metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}
	return json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:  requestUID,
			Kind: gvk, Resource: gvr, RequestKind: &gvk, RequestResource: &gvr,
			Name: sts.Name, Namespace: sts.Namespace,
			Operation: admissionv1.Create,
			UserInfo:  authenticationv1.UserInfo{Username: "kubernetes-admin", Groups: []string{"kubeadm:cluster-admins", "system:authenticated"}},
			Object:    runtime.RawExtension{Raw: object},
			DryRun:    ptr.To(false),
			Options:   runtime.RawExtension{Raw: []byte(`{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1","fieldManager":"kubectl-client-side-apply"}`)},
		},
	})
}

// statefulSet is a stateful-multi StatefulSet as a user writes it (the
// mutating webhook adds the claim template and the Service name), with
// extraEnv more environment variables on its container.
func statefulSet(namespace, name string, extraEnv int) *appsv1.StatefulSet {
	labels := map[string]string{"app.kubernetes.io/name": name, policy.LabelDeployType: string(policy.StatefulMulti)}
	env := []corev1.EnvVar{{Name: "POSTGRES_DB", Value: "orders"}}
	for i := range extraEnv {
		env = append(env, corev1.EnvVar{Name: fmt.Sprintf("FEATURE_FLAG_%05d", i), Value: fmt.Sprintf("value-of-flag-%05d-on", i)})
	}
	return &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: labels},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "postgres", Image: "registry.example/postgres:17.2",
					Env:   env,
					Ports: []corev1.ContainerPort{{Name: "postgres", ContainerPort: 5432}},
					Resources: corev1.ResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("1Gi")},
					},
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/postgresql/data"}},
				}}},
			},
		},
	}
}
