package main

import (
	"context"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// statefulSet is a stateful-multi StatefulSet as the mutating webhook would
// have stored it (serviceName, a data claim template, the deploy-type label
// on the pod template): no webhook is registered during the measurement, so
// the tool writes what the webhook would have added. Replicas are 0, so no
// pod or claim is created and only the workload and its Service are cached.
func statefulSet(namespace, name string) *appsv1.StatefulSet {
	selector := map[string]string{"app.kubernetes.io/name": name}
	templateLabels := map[string]string{
		"app.kubernetes.io/name": name,
		policy.LabelDeployType:   string(policy.StatefulMulti),
	}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: name,
			Labels: map[string]string{
				"app.kubernetes.io/name":    name,
				"app.kubernetes.io/part-of": "cachesize",
				policy.LabelDeployType:      string(policy.StatefulMulti),
			},
		},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To[int32](0),
			ServiceName: policy.HeadlessServiceName(name),
			Selector:    &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: templateLabels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					container("db", "registry.example/postgres:17.2",
						[]corev1.ContainerPort{{Name: "postgres", ContainerPort: 5432}, {Name: "metrics", ContainerPort: 9187}},
						[]corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/postgresql/data"}}),
				}},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceStorage: resource.MustParse("10Gi"),
					}},
				},
			}},
		},
	}
}

// deployment is a workload statekeeper caches but does not manage: no
// deploy-type label, replicas 0 (createPods makes pods shaped as its own).
func deployment(namespace, name, image string) *appsv1.Deployment {
	selector := map[string]string{"app.kubernetes.io/name": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: name,
			Labels: map[string]string{"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "cachesize"},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: selector},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					container("web", image,
						[]corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090}},
						[]corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}}),
				},
					Volumes:       []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
					SchedulerName: noScheduler,
				},
			},
		},
	}
}

// service is the Service in front of a Deployment, as a Helm chart renders
// it (with --cluster-shaped), but headless: the local cluster's service range
// has room for 253 cluster IPs, and an allocated IP is two short strings of
// the cached object.
func service(namespace, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: name,
			Labels: map[string]string{"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "cachesize"},
		},
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  map[string]string{"app.kubernetes.io/name": name},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
				{Name: "metrics", Port: 9090, TargetPort: intstr.FromString("metrics")},
			},
		},
	}
}

// container is a typical application container: a few environment
// variables, named ports, resources, probes and the given mounts.
func container(name, image string, ports []corev1.ContainerPort, mounts []corev1.VolumeMount) corev1.Container {
	return corev1.Container{
		Name: name, Image: image,
		Env: []corev1.EnvVar{
			{Name: "LOG_LEVEL", Value: "info"},
			{Name: "TZ", Value: "UTC"},
			{Name: "MAX_CONNECTIONS", Value: "200"},
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		},
		Ports:        ports,
		VolumeMounts: mounts,
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
		},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
			TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString(ports[0].Name)},
		}},
	}
}

// createAll calls create for 0..n-1, at most parallel at once.
func createAll(ctx context.Context, n, parallel int, create func(context.Context, int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for i := range n {
		g.Go(func() error { return create(ctx, i) })
	}
	return g.Wait()
}

// The pods of the scale run are Pending and never scheduled: no scheduler
// has this name, so none binds them and KWOK never runs them. statekeeper
// caches only a pod's metadata, which is the same for a Running pod (but
// for its resourceVersion); what this saves is the scheduler's and KWOK's
// work for 50,000 pods on two cores.
const noScheduler = "statekeeper-measure-unscheduled"
