package lookup

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/randfill"
)

// same reports whether two maps or slices are one.
func same(a, b any) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	return va.Kind() == vb.Kind() && va.Pointer() != 0 && va.Pointer() == vb.Pointer()
}

func TestCacheSharesEqualValues(t *testing.T) {
	opts := CacheOptions()
	transform := func(obj client.Object) client.Object {
		t.Helper()
		for o, by := range opts.ByObject {
			if reflect.TypeOf(o) == reflect.TypeOf(obj) && sameKind(o, obj) {
				out, err := by.Transform(obj)
				require.NoError(t, err)
				return out.(client.Object)
			}
		}
		out, err := opts.DefaultTransform(obj)
		require.NoError(t, err)
		return out.(client.Object)
	}

	pod := func(name string, labels map[string]string) *metav1.PartialObjectMetadata {
		p := podMetadata()
		p.Namespace, p.Name, p.Labels = "shop", name, labels
		return transform(p).(*metav1.PartialObjectMetadata)
	}
	a := pod("web-1", map[string]string{"app": "web", "pod-template-hash": "7c9f"})
	b := pod("web-2", map[string]string{"app": "web", "pod-template-hash": "7c9f"})
	c := pod("web-3", map[string]string{"app": "web", "pod-template-hash": "8d0a"})
	assert.True(t, same(a.Labels, b.Labels), "the pods of a ReplicaSet share their labels")
	assert.False(t, same(a.Labels, c.Labels))
	assert.Equal(t, map[string]string{"app": "web", "pod-template-hash": "8d0a"}, c.Labels)
	assert.Nil(t, pod("bare", nil).Labels, "no labels stay none")
	assert.Equal(t, map[string]string{}, pod("empty", map[string]string{}).Labels, "empty labels stay empty")

	deployment := func(name string, port int32) *appsv1.Deployment {
		selector := map[string]string{"app": name}
		return transform(&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Annotations: map[string]string{"deployment.kubernetes.io/revision": "1"}},
			Spec: appsv1.DeploymentSpec{
				Selector: &metav1.LabelSelector{MatchLabels: selector},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
					Spec: corev1.PodSpec{
						Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
						Containers: []corev1.Container{{Name: name, Image: name + ":1",
							Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: port}}, VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}}}},
					},
				},
			},
		}).(*appsv1.Deployment)
	}
	web, api, db := deployment("web", 8080), deployment("api", 8080), deployment("db", 5432)
	assert.True(t, same(web.Spec.Selector.MatchLabels, web.Spec.Template.Labels), "a selector and its template's equal labels are one map")
	assert.False(t, same(web.Spec.Selector.MatchLabels, api.Spec.Selector.MatchLabels))
	assert.True(t, same(web.Annotations, api.Annotations), "equal annotations are one map")
	assert.True(t, same(web.Spec.Template.Spec.Containers, api.Spec.Template.Spec.Containers),
		"containers equal once trimmed (names and images dropped) are one slice")
	assert.False(t, same(web.Spec.Template.Spec.Containers, db.Spec.Template.Spec.Containers))
	assert.True(t, same(web.Spec.Template.Spec.Volumes, db.Spec.Template.Spec.Volumes))
	assert.Equal(t, []corev1.ContainerPort{{Name: "http", ContainerPort: 5432}}, db.Spec.Template.Spec.Containers[0].Ports)
	assert.Equal(t, "shop", web.Namespace)

	other := CacheOptions()
	p := podMetadata()
	p.Namespace, p.Name, p.Labels = "shop", "web-4", map[string]string{"app": "web", "pod-template-hash": "7c9f"}
	for o, by := range other.ByObject {
		if sameKind(o, p) && reflect.TypeOf(o) == reflect.TypeOf(p) {
			out, err := by.Transform(p)
			require.NoError(t, err)
			assert.False(t, same(a.Labels, out.(client.Object).GetLabels()), "each cache shares its own values")
		}
	}

	x, y := AsCached(web), AsCached(api)
	assert.False(t, same(x.GetAnnotations(), y.GetAnnotations()), "AsCached shares nothing between objects")
	tr := NewTransformer()
	x, y = tr.AsCached(web), tr.AsCached(api)
	assert.True(t, same(x.GetAnnotations(), y.GetAnnotations()), "a Transformer shares as a cache does")
}

// TestSharingChangesNoValue transforms random objects of every cached kind
// with and without the interner: sharing must change no value as the API
// sees it (equality.Semantic, to which a nil and an empty list are the same)
// nor its JSON, which is what a reader that writes the object back sends.
// Transforming a transformed object again (client-go may) must give the
// same and write to no shared value.
func TestSharingChangesNoValue(t *testing.T) {
	opts := CacheOptions()
	type kind struct {
		new       func() client.Object
		transform func(any) (any, error)
	}
	kinds := []kind{
		{func() client.Object { return &appsv1.Deployment{} }, trimStoredWorkload},
		{func() client.Object { return &appsv1.StatefulSet{} }, trimStoredWorkload},
		{func() client.Object { return podMetadata() }, stripPodMetadata},
		{func() client.Object { return &corev1.Service{} }, stripUnread},
		{func() client.Object { return &corev1.Namespace{} }, stripUnread},
		{func() client.Object { return &corev1.PersistentVolumeClaim{} }, stripUnread},
		{func() client.Object { return &autoscalingv2.HorizontalPodAutoscaler{} }, stripUnread},
		{func() client.Object { return &policyv1.PodDisruptionBudget{} }, stripUnread},
	}
	shared := func(obj client.Object) func(any) (any, error) {
		for o, by := range opts.ByObject {
			if reflect.TypeOf(o) == reflect.TypeOf(obj) && sameKind(o, obj) {
				return by.Transform
			}
		}
		return opts.DefaultTransform
	}
	var cached, snapshots []client.Object
	for seed := range int64(120) {
		f := randfill.NewWithSeed(seed).NilChance(0.2).NumElements(0, 3).MaxDepth(10).Funcs(
			func(q *resource.Quantity, c randfill.Continue) {
				*q = *resource.NewQuantity(c.Int63n(1<<40), resource.BinarySI)
			},
			func(m *metav1.ObjectMeta, c randfill.Continue) {
				c.FillNoCustom(m)
				// Few distinct values, so that objects share some.
				m.Namespace = fmt.Sprint("ns-", c.Intn(3))
				switch c.Intn(3) {
				case 0:
					m.Labels = map[string]string{"app": fmt.Sprint(c.Intn(4))}
				case 1:
					m.Labels = map[string]string{}
				}
			},
		)
		for _, k := range kinds {
			obj := k.new()
			f.Fill(obj)
			if pod, ok := obj.(*metav1.PartialObjectMetadata); ok {
				pod.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Pod"))
			}
			want, err := k.transform(obj.DeepCopyObject())
			require.NoError(t, err)
			got, err := shared(obj)(obj.DeepCopyObject())
			require.NoError(t, err)
			sameValue(t, want, got, "seed %d: sharing changed a %T", seed, obj)
			cached = append(cached, got.(client.Object))
			snapshots = append(snapshots, got.(client.Object).DeepCopyObject().(client.Object))

			again, err := shared(obj)(got)
			require.NoError(t, err)
			sameValue(t, want, again, "seed %d: transforming a cached %T again changed it", seed, obj)
		}
	}
	assert.Equal(t, snapshots, cached, "transforms wrote to values other cached objects share")
}

// sameValue requires got to be want as the API sees it and as JSON.
func sameValue(t *testing.T, want, got any, msgAndArgs ...any) {
	t.Helper()
	if !equality.Semantic.DeepEqual(want, got) {
		require.Equal(t, want, got, msgAndArgs...) // prints the difference
	}
	wantJSON, err := json.Marshal(want)
	require.NoError(t, err)
	gotJSON, err := json.Marshal(got)
	require.NoError(t, err)
	require.JSONEq(t, string(wantJSON), string(gotJSON), msgAndArgs...)
}

func TestInternerBoundsItsTables(t *testing.T) {
	in := newInterner()
	first := in.stringMap(map[string]string{"app": "first"})
	var kept []map[string]string
	for i := range mapLimit {
		kept = append(kept, in.stringMap(map[string]string{"app": fmt.Sprint(i)}))
	}
	assert.True(t, same(first, in.stringMap(map[string]string{"app": "first"})),
		"a map is shared while fewer than a generation of others came after it")
	assert.True(t, same(kept[7], in.stringMap(map[string]string{"app": "7"})))
	assert.Equal(t, map[string]string{"app": "7"}, kept[7])

	// Two generations later, a map asked for in neither is forgotten: an
	// equal one gets a canonical copy of its own, with the same content.
	for i := range 2 * mapLimit {
		in.stringMap(map[string]string{"other": fmt.Sprint(i)})
	}
	again := in.stringMap(map[string]string{"app": "8"})
	assert.False(t, same(kept[8], again))
	assert.Equal(t, kept[8], again)
	assert.LessOrEqual(t, len(in.labels.newer)+len(in.labels.older), 2*mapLimit, "maps held")

	for i := range 5 * internLimit {
		in.str(fmt.Sprint("s-", i))
	}
	assert.LessOrEqual(t, len(in.strings.newer)+len(in.strings.older), 4*internLimit, "strings held")
}
