package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/statekeeper/statekeeper/internal/lookup"
	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/internal/review"
)

// cluster is the state every fixture is judged against: namespace "shop" in
// the default (enforce) mode, "relaxed" in warn mode, "quiet" off, and the
// workloads and claims the fixtures refer to (the pod fixtures' owners too).
func cluster() *lookup.Memory {
	m := lookup.NewMemory()
	m.Add(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}})
	m.Add(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "relaxed", Labels: map[string]string{policy.LabelMode: "warn"}}})
	m.Add(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "quiet", Labels: map[string]string{policy.LabelMode: "off"}}})
	m.Add(&corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "wiki-data"},
		Spec:       corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}},
	})
	m.Add(workload[appsv1.Deployment]("legacy-wiki", policy.StatelessSingle, 1, nil))
	m.Add(workload[appsv1.StatefulSet]("etcd", policy.StatefulMulti, 3, map[string]string{policy.AnnotationQuorum: "true"}))
	m.Add(workload[appsv1.StatefulSet]("single-db", policy.StatefulSingle, 1, nil))
	redis := workload[appsv1.StatefulSet]("redis", policy.StatefulMulti, 2, nil)
	redis.UID = "5f0c8d2e-7a41-4b9e-8c3d-1e2f3a4b5c6d"
	m.Add(redis)
	// The pods' owners: zk asks for the identity as environment variables,
	// names its own Service and numbers its pods from 1; plain is not managed.
	zk := workload[appsv1.StatefulSet]("zk", policy.StatefulMulti, 3, map[string]string{policy.AnnotationInjectEnv: "true"})
	zk.UID = "6a1d9e3f-8b52-4caf-9d4e-2f3a4b5c6d7e"
	zk.Spec.ServiceName = "zk-peers"
	zk.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: 1}
	m.Add(zk)
	// memcached names its chart's ClusterIP Service: its pods get no DNS names.
	memcached := workload[appsv1.StatefulSet]("memcached", policy.StatefulSingle, 1, nil)
	memcached.UID = "8c3f1a5b-0d74-4ec1-bf60-4b5c6d7e8f90"
	memcached.Spec.ServiceName = "memcached"
	m.Add(memcached)
	m.Add(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "memcached"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.30", Selector: map[string]string{"app": "memcached"},
			Ports: []corev1.ServicePort{{Name: "memcache", Port: 11211}}}})
	plain := workload[appsv1.StatefulSet]("plain", policy.StatefulMulti, 1, nil)
	plain.UID = "7b2e0f4a-9c63-4db0-ae5f-3a4b5c6d7e8f"
	delete(plain.Labels, policy.LabelDeployType)
	m.Add(plain)
	return m
}

// workload builds a stored Deployment or StatefulSet in "shop".
func workload[T appsv1.Deployment | appsv1.StatefulSet](name string, t policy.DeployType, replicas int32, annotations map[string]string) *T {
	meta := metav1.ObjectMeta{
		Namespace: "shop", Name: name, Annotations: annotations,
		Labels: map[string]string{"app": name, policy.LabelDeployType: string(t)},
	}
	selector := &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}
	// A whole pod template, most of which the informer cache drops
	// (policy/stored.go): the fuzz test judges against both.
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}, Annotations: map[string]string{"checksum/config": "0c1d"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "main", Image: "registry.example/" + name + ":1.0",
			Env:   []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}},
			Ports: []corev1.ContainerPort{{Name: "client", ContainerPort: 8080}},
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("client")}}},
		}}},
	}
	var obj any
	switch any(new(T)).(type) {
	case *appsv1.Deployment:
		obj = &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas), Selector: selector, Template: template}}
	case *appsv1.StatefulSet:
		obj = &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To(replicas), Selector: selector, Template: template,
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}},
		}}
	}
	return obj.(*T)
}

func testEngine(l lookup.Lookup) *review.Engine {
	return review.New(l, review.Settings{
		Defaults:           policy.Defaults{StorageSize: resource.MustParse("1Gi")},
		DefaultMode:        policy.ModeEnforce,
		ExcludedNamespaces: []string{"kube-system"},
		ClusterDomain:      "cluster.local",
	})
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	require.NoError(t, err)
	return body
}

// serve runs body through h as Register serves it and returns the decoded
// AdmissionResponse.
func serve(t testing.TB, h *Handler, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	return serveHTTP(t, Webhook(h), body)
}

// serveHTTP posts body to h and decodes the AdmissionReview it answers.
func serveHTTP(t testing.TB, h http.Handler, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	var out admissionv1.AdmissionReview
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
	require.Equal(t, "AdmissionReview", out.Kind)
	require.NotNil(t, out.Response)
	return out.Response
}
