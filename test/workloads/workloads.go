// Package workloads builds the Deployments, StatefulSets and claims that the
// integration suite (test/integration) and the end-to-end suite (e2e/) send
// to a real API server, so both suites speak about the same objects.
package workloads

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// Image is the containers' image: never pulled by envtest or KWOK, and on
// kind it makes a pod Ready at once.
const Image = "registry.k8s.io/pause:3.10"

// Meta names a workload and labels it app=<name>, plus the deploy type when
// one is given.
func Meta(name string, deployType policy.DeployType) metav1.ObjectMeta {
	meta := metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}}
	if deployType != "" {
		meta.Labels[policy.LabelDeployType] = string(deployType)
	}
	return meta
}

// PodTemplate is one container named after app, labelled app=<app>, with
// the given mounts and no termination grace period (test clusters stop pods
// at once; real grace periods would only slow the suites down).
func PodTemplate(app string, mounts ...corev1.VolumeMount) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{{Name: app, Image: Image, VolumeMounts: mounts}},
			TerminationGracePeriodSeconds: ptr.To[int64](0),
		},
	}
}

// StatefulSet mounts a "data" volume it does not declare: statekeeper is
// expected to inject the claim template for it.
func StatefulSet(name string, deployType policy.DeployType, replicas int32) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		ObjectMeta: Meta(name, deployType),
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: PodTemplate(name, corev1.VolumeMount{Name: "data", MountPath: "/data"}),
		},
	}
}

// Deployment has one container and no volumes.
func Deployment(name string, deployType policy.DeployType, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: Meta(name, deployType),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: PodTemplate(name),
		},
	}
}

// Claim is a 1Gi claim with one access mode, of the cluster's default
// storage class.
func Claim(name string, mode corev1.PersistentVolumeAccessMode) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{mode},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
}

// ClaimVolume is a pod volume called name that holds the claim claimName.
func ClaimVolume(name, claimName string) corev1.Volume {
	return corev1.Volume{
		Name:         name,
		VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claimName}},
	}
}

// MountClaim mounts the claim claimName as volume "data" at /data in
// spec's first container.
func MountClaim(spec *corev1.PodSpec, claimName string) {
	spec.Volumes = append(spec.Volumes, ClaimVolume("data", claimName))
	spec.Containers[0].VolumeMounts = append(spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "data", MountPath: "/data"})
}
