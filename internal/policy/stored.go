package policy

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// What statekeeper reads of a stored Deployment or StatefulSet, the one
// list: the informer cache keeps no more of them (internal/lookup's
// transforms call TrimDeployment and TrimStatefulSet), and everything that
// judges a stored workload (the lookups' counterparts, Scale and HPA
// parents, the owners of pods being stamped, the reconcilers and the
// background audit) sees only these fields:
//
//   - metadata, but managedFields and kubectl's last-applied-configuration
//     annotation (internal/lookup drops those from every cached object);
//   - the whole spec but the pod template: replicas, selector, strategy,
//     serviceName, ordinals, volume claim templates and the rest are small;
//   - status.replicas;
//   - of the pod template: its labels, and its annotations under KeyPrefix
//     (statekeeper's keys count there too, EffectiveKeys, and the unknown-key
//     rule reads them); its volumes' names and claims (persistentVolumeClaim),
//     and which of them are emptyDir (with the medium) or configMap, secret,
//     projected or downwardAPI volumes, as empty sources (the data mounts,
//     Workload.DataMounts); any other source is dropped; of each container
//     and init container its ports, volume mounts, volume devices and
//     restartPolicy (which makes an init container a sidecar): not even its
//     name, which nothing reads.
//
// The pod template's containers (images, environment, resources, probes)
// are most of a workload's size: trimming them is the cache's second
// largest saving where workloads run images of their own
// (docs/performance.md, "Which transforms pay"). A rule that starts reading
// another field of a stored workload must add it here; the differential
// tests (stored_test.go, and internal/review's and internal/webhook's
// judging of every fixture against cached copies) fail until it does.

// TrimDeployment reduces d, in place, to what statekeeper reads of a stored
// Deployment.
func TrimDeployment(d *appsv1.Deployment) {
	d.Spec.Template = trimPodTemplate(d.Spec.Template)
	d.Status = appsv1.DeploymentStatus{Replicas: d.Status.Replicas}
}

// TrimStatefulSet reduces s, in place, to what statekeeper reads of a stored
// StatefulSet.
func TrimStatefulSet(s *appsv1.StatefulSet) {
	s.Spec.Template = trimPodTemplate(s.Spec.Template)
	s.Status = appsv1.StatefulSetStatus{Replicas: s.Status.Replicas}
}

// trimPodTemplate returns the part of a stored pod template that is read.
// Slices are allocated anew so that the decoded originals can be collected.
func trimPodTemplate(t corev1.PodTemplateSpec) corev1.PodTemplateSpec {
	out := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: t.Labels, Annotations: statekeeperKeys(t.Annotations)}}
	if n := len(t.Spec.Volumes); n > 0 {
		out.Spec.Volumes = make([]corev1.Volume, n)
		for i, v := range t.Spec.Volumes {
			out.Spec.Volumes[i] = corev1.Volume{Name: v.Name, VolumeSource: trimVolumeSource(v.VolumeSource)}
		}
	}
	out.Spec.InitContainers = trimContainers(t.Spec.InitContainers)
	out.Spec.Containers = trimContainers(t.Spec.Containers)
	return out
}

// trimVolumeSource keeps a claim volume's source, and of the sources the
// data mounts tell apart an empty one of the same type (an emptyDir's medium).
func trimVolumeSource(v corev1.VolumeSource) corev1.VolumeSource {
	out := corev1.VolumeSource{PersistentVolumeClaim: v.PersistentVolumeClaim}
	switch {
	case v.EmptyDir != nil:
		out.EmptyDir = &corev1.EmptyDirVolumeSource{Medium: v.EmptyDir.Medium}
	case v.ConfigMap != nil:
		out.ConfigMap = &corev1.ConfigMapVolumeSource{}
	case v.Secret != nil:
		out.Secret = &corev1.SecretVolumeSource{}
	case v.Projected != nil:
		out.Projected = &corev1.ProjectedVolumeSource{}
	case v.DownwardAPI != nil:
		out.DownwardAPI = &corev1.DownwardAPIVolumeSource{}
	}
	return out
}

func trimContainers(in []corev1.Container) []corev1.Container {
	if len(in) == 0 {
		return nil
	}
	out := make([]corev1.Container, len(in))
	for i := range in {
		out[i] = in[i]
		KeepReadContainerFields(&out[i])
	}
	return out
}

// ContainerFields are the JSON names of the only fields policy reads of a
// workload's pod-template containers: the cache's trim keeps these
// (KeepReadContainerFields), since a large workload is mostly its
// containers' environment.
var ContainerFields = []string{"ports", "volumeMounts", "volumeDevices", "restartPolicy"}

// KeepReadTemplateFields clears, in place, every field of spec's containers
// and init containers but ContainerFields: a workload's pod template as
// policy reads it.
func KeepReadTemplateFields(spec *corev1.PodSpec) {
	for _, containers := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range containers {
			KeepReadContainerFields(&containers[i])
		}
	}
}

// KeepReadContainerFields clears, in place, every field of c but
// ContainerFields.
func KeepReadContainerFields(c *corev1.Container) {
	*c = corev1.Container{
		Ports:         c.Ports,
		VolumeMounts:  c.VolumeMounts,
		VolumeDevices: c.VolumeDevices,
		RestartPolicy: c.RestartPolicy,
	}
}
