package lookup

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// The fixtures below are one small namespace "shop": the "db" component runs
// as a Deployment named "db-old" (component label) with a pod left behind, a
// StatefulSet "db" (component by name), a claim, a Service and a namespace in
// warn mode. Both implementations must answer the same questions identically.

func fixtures() []client.Object {
	return []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{policy.LabelMode: "warn"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "plain"}},
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db-old", Labels: map[string]string{policy.LabelComponent: "db"}},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](0),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db-old"}},
			},
		},
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
			Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
		},
		&appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db"},
			Spec: appsv1.StatefulSetSpec{
				Replicas:    ptr.To[int32](1),
				Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
				ServiceName: "db-headless",
			},
		},
		// A Deployment of the same component in another namespace must not count.
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "db"},
			Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}},
		},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db-old-7c9f", Labels: map[string]string{"app": "db-old", "pod-template-hash": "7c9f"}}},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "data"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db-headless"}, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone}},
		// A second Deployment of component "db", after "db-old" in the input
		// and before it by name: results are ordered by name.
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db-a", Labels: map[string]string{policy.LabelComponent: "db"}},
			Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db-a"}}},
		},
		// "api" is labelled with its own name (found both by label and by
		// name, listed once); "worker" is labelled with another component,
		// so it is not component "worker".
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api", Labels: map[string]string{policy.LabelComponent: "api"}}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "worker", Labels: map[string]string{policy.LabelComponent: "jobs"}}},
		// Labelled on their pod templates only (a chart's podLabels):
		// "queue-v2" is component "queue"; "cache" is component "kv", not "cache".
		templateLabelled("queue-v2", "queue"),
		templateLabelled("cache", "kv"),
		// HPAs of StatefulSet "db", and one of a same-named target in another group.
		hpaOf("db-scaler", "apps/v1", "StatefulSet", "db", 3),
		hpaOf("a-scaler", "apps/v1", "StatefulSet", "db", 1),
		hpaOf("foreign", "example.com/v1", "StatefulSet", "db", 5),
	}
}

// templateLabelled is a StatefulSet in "shop" whose component label is on
// its pod template only.
func templateLabelled(name, component string) *appsv1.StatefulSet {
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name}}
	sts.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}
	sts.Spec.Template.Labels = map[string]string{"app": name, policy.LabelComponent: component}
	return sts
}

func hpaOf(name, apiVersion, kind, target string, maxReplicas int32) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: apiVersion, Kind: kind, Name: target},
			MaxReplicas:    maxReplicas,
		},
	}
}

// fixture is the fixture of that type, namespace and name.
func fixture[T client.Object](t *testing.T, namespace, name string) T {
	t.Helper()
	for _, obj := range fixtures() {
		if o, ok := obj.(T); ok && o.GetNamespace() == namespace && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no fixture %s/%s", namespace, name)
	var zero T
	return zero
}

func newMemory(t *testing.T) Lookup {
	m := NewMemory()
	for _, obj := range fixtures() {
		require.True(t, m.Add(obj), "%T", obj)
	}
	assert.False(t, m.Add(&corev1.ConfigMap{}), "a ConfigMap is not something the rules read")
	return m
}

// recordingIndexer captures what IndexFields registers, so the fake client
// serves exactly those indexes.
type recordingIndexer struct{ builder *fake.ClientBuilder }

func (r recordingIndexer) IndexField(_ context.Context, obj client.Object, field string, fn client.IndexerFunc) error {
	r.builder.WithIndex(obj, field, fn)
	return nil
}

// newFakeCache serves the fixtures through controller-runtime's fake client
// with the indexes IndexFields registers.
func newFakeCache(t *testing.T) Lookup {
	builder := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(fixtures()...)
	require.NoError(t, IndexFields(context.Background(), recordingIndexer{builder}))
	c := builder.Build()
	return NewCache(c, c)
}

func TestLookups(t *testing.T) {
	for name, build := range map[string]func(*testing.T) Lookup{"memory": newMemory, "cache": newFakeCache} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			l := build(t)

			dbOld, err := l.Workload(ctx, policy.KindDeployment, "shop", "db-old")
			require.NoError(t, err)
			assert.Equal(t, ptr.To(policy.FromDeployment(fixture[*appsv1.Deployment](t, "shop", "db-old"))), dbOld)
			db, err := l.Workload(ctx, policy.KindStatefulSet, "shop", "db")
			require.NoError(t, err)
			assert.Equal(t, ptr.To(policy.FromStatefulSet(fixture[*appsv1.StatefulSet](t, "shop", "db"))), db)

			for _, tc := range []struct {
				name     string
				selector *metav1.LabelSelector
				want     bool
			}{
				{"the leftover pod matches", dbOld.Selector, true},
				{"no pod matches", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, false},
				{"no selector selects none", nil, false},
				{"an empty selector selects none", &metav1.LabelSelector{}, false},
				{"an invalid selector selects none", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "no spaces"}}, false},
			} {
				exist, err := l.PodsExist(ctx, "shop", tc.selector)
				require.NoError(t, err)
				assert.Equal(t, tc.want, exist, tc.name)
			}
			exist, err := l.PodsExist(ctx, "other", dbOld.Selector)
			require.NoError(t, err)
			assert.False(t, exist, "pods of another namespace do not count")

			missing, err := l.Workload(ctx, policy.KindStatefulSet, "shop", "nope")
			require.NoError(t, err)
			assert.Nil(t, missing)

			deployments, err := l.Component(ctx, policy.KindDeployment, "shop", "db")
			require.NoError(t, err)
			assert.Equal(t, []string{"db-a", "db-old"}, names(deployments), "by label, in the namespace only, by name")
			// db-a runs by its replicas, so its pods are not looked up;
			// db-old is scaled to 0 with a pod left behind.
			assert.Equal(t, []bool{false, true}, []bool{deployments[0].PodsExist, deployments[1].PodsExist})
			assert.True(t, deployments[0].Running() && deployments[1].Running())
			statefulSets, err := l.Component(ctx, policy.KindStatefulSet, "shop", "db")
			require.NoError(t, err)
			assert.Equal(t, []string{"db"}, names(statefulSets), "by name when unlabelled")
			none, err := l.Component(ctx, policy.KindStatefulSet, "shop", "web")
			require.NoError(t, err)
			assert.Empty(t, none)
			for component, want := range map[string][]string{"web": {"web"}, "api": {"api"}, "jobs": {"worker"}, "worker": nil} {
				got, err := l.Component(ctx, policy.KindDeployment, "shop", component)
				require.NoError(t, err)
				assert.Equal(t, want, names(got), "component %q", component)
			}
			for component, want := range map[string][]string{"queue": {"queue-v2"}, "kv": {"cache"}, "cache": nil} {
				got, err := l.Component(ctx, policy.KindStatefulSet, "shop", component)
				require.NoError(t, err)
				assert.Equal(t, want, names(got), "component %q, labelled on the pod template", component)
			}

			claims, err := l.Claims(ctx, "shop", []string{"data", "absent"})
			require.NoError(t, err)
			assert.Equal(t, []string{"data"}, keys(claims))

			svc, err := l.Service(ctx, "shop", "db-headless")
			require.NoError(t, err)
			require.NotNil(t, svc)
			assert.Equal(t, corev1.ClusterIPNone, svc.Spec.ClusterIP)
			noSvc, err := l.Service(ctx, "shop", "absent")
			require.NoError(t, err)
			assert.Nil(t, noSvc)

			sts, err := l.StatefulSet(ctx, "shop", "db", "")
			require.NoError(t, err)
			require.NotNil(t, sts)
			assert.Equal(t, "db-headless", sts.Spec.ServiceName)

			autoscalers, err := l.Autoscalers(ctx, "shop", policy.KindStatefulSet, "db")
			require.NoError(t, err)
			assert.Equal(t, []policy.Autoscaler{{Name: "a-scaler", MaxReplicas: 1}, {Name: "db-scaler", MaxReplicas: 3}}, autoscalers,
				"apps targets only, by name")
			autoscalers, err = l.Autoscalers(ctx, "shop", policy.KindDeployment, "db")
			require.NoError(t, err)
			assert.Empty(t, autoscalers)

			_, err = l.Workload(ctx, "ReplicaSet", "shop", "db")
			assert.ErrorIs(t, err, ErrUnknownKind)
			_, err = l.Component(ctx, "ReplicaSet", "shop", "db")
			assert.ErrorIs(t, err, ErrUnknownKind)

			mode, ok, err := l.NamespaceMode(ctx, "shop")
			require.NoError(t, err)
			assert.Equal(t, []any{"warn", true}, []any{mode, ok})
			mode, ok, err = l.NamespaceMode(ctx, "plain")
			require.NoError(t, err)
			assert.Equal(t, []any{"", false}, []any{mode, ok})
			mode, ok, err = l.NamespaceMode(ctx, "absent")
			require.NoError(t, err)
			assert.Equal(t, []any{"", false}, []any{mode, ok})
		})
	}
}

func TestMemoryAddReplaces(t *testing.T) {
	m := NewMemory()
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db"}, Spec: appsv1.StatefulSetSpec{ServiceName: "a"}}
	m.Add(sts)
	m.Add(&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db"}, Spec: appsv1.StatefulSetSpec{ServiceName: "b"}})
	got, err := m.StatefulSet(context.Background(), "shop", "db", "")
	require.NoError(t, err)
	assert.Equal(t, "b", got.Spec.ServiceName)
}

func TestComponentOf(t *testing.T) {
	assert.Empty(t, componentOf(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "db"}}),
		"a workload named after its component is found by name, not in the index")
	assert.Equal(t, []string{"shop-db"}, componentOf(&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{
		Name: "db-v2", Labels: map[string]string{policy.LabelComponent: "shop-db"},
	}}))
	assert.Empty(t, componentOf(&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{
		Name: "db", Labels: map[string]string{policy.LabelComponent: ""},
	}}), "an empty label falls back to the name, as policy.Workload.Component does")
	assert.Equal(t, []string{"shop-db"}, componentOf(templateLabelled("db-v2", "shop-db")), "labelled on the pod template")
}

func TestStripPodMetadata(t *testing.T) {
	in := podMetadata()
	in.Name, in.Namespace, in.UID, in.ResourceVersion = "db-0", "shop", "u", "7"
	in.Labels = map[string]string{"app": "db"}
	in.Annotations = map[string]string{"big": "value"}
	in.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}
	in.GenerateName, in.Finalizers = "db-", []string{"example.com/keep"}
	controller := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: "s", Controller: ptr.To(true)}
	in.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "c"}, controller}
	out, err := stripPodMetadata(in)
	require.NoError(t, err)
	want := podMetadata()
	want.Name, want.Namespace, want.ResourceVersion = "db-0", "shop", "7"
	want.Labels = map[string]string{"app": "db"}
	want.OwnerReferences = []metav1.OwnerReference{controller}
	assert.Equal(t, want, out, "the pod's uid is not read; its owner's is")

	for _, other := range []metav1.OwnerReference{
		{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d9f", UID: "r", Controller: ptr.To(true)},
		{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: "s"}, // not the controller
	} {
		in := podMetadata()
		in.OwnerReferences = []metav1.OwnerReference{other}
		out, err := stripPodMetadata(in)
		require.NoError(t, err)
		assert.Equal(t, podMetadata(), out, "only a StatefulSet controller is read")
	}
}

func names(obs []policy.Observed) []string {
	var out []string
	for _, o := range obs {
		out = append(out, o.Name)
	}
	return out
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestCacheReadsMissesLive covers the two lookups that fall back to the API
// server: the first pod of a new StatefulSet, and a namespace created in the
// same apply as its workloads, both usually reach the webhook before the
// informer has delivered their object.
func TestCacheReadsMissesLive(t *testing.T) {
	ctx := context.Background()
	live := []client.Object{
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "new", UID: "uid-2"}},
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "recreated", UID: "uid-new"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fresh", Labels: map[string]string{policy.LabelMode: "warn"}}},
	}
	cached := []client.Object{
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "recreated", UID: "uid-old"}},
	}
	l := NewCache(
		fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(cached...).Build(),
		fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(live...).Build(),
	)

	sts, err := l.StatefulSet(ctx, "shop", "new", "uid-2")
	require.NoError(t, err)
	require.NotNil(t, sts, "a cache miss is read live")
	assert.Equal(t, "uid-2", string(sts.UID))

	sts, err = l.StatefulSet(ctx, "shop", "recreated", "uid-new")
	require.NoError(t, err)
	require.NotNil(t, sts)
	assert.Equal(t, "uid-new", string(sts.UID), "an older incarnation in the cache is read live")

	sts, err = l.StatefulSet(ctx, "shop", "recreated", "")
	require.NoError(t, err)
	require.NotNil(t, sts)
	assert.Equal(t, "uid-old", string(sts.UID), "without a uid the cached copy is used")

	sts, err = l.StatefulSet(ctx, "shop", "absent", "uid-3")
	require.NoError(t, err)
	assert.Nil(t, sts)

	mode, ok, err := l.NamespaceMode(ctx, "fresh")
	require.NoError(t, err)
	assert.Equal(t, []any{"warn", true}, []any{mode, ok}, "a namespace missing from the cache is read live")
}

func TestCacheTransformsDropWhatNoLookupReads(t *testing.T) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{
		Name:          "db",
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		Annotations:   map[string]string{lastApplied: `{"kind":"Deployment"}`, policy.AnnotationQuorum: "true"},
	}}
	out, err := CacheOptions().DefaultTransform(d.DeepCopy())
	require.NoError(t, err)
	assert.Equal(t, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{
		Name:        "db",
		Annotations: map[string]string{policy.AnnotationQuorum: "true"},
	}}, out, "statekeeper's own annotations stay")

	// Workloads also keep only what policy reads of a stored workload
	// (policy/stored.go tests which fields).
	d.Spec.Template.Spec.Containers = []corev1.Container{{Name: "db", Image: "postgres", Ports: []corev1.ContainerPort{{Name: "pg", ContainerPort: 5432}}}}
	d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable}}
	for _, obj := range []client.Object{d, &appsv1.StatefulSet{ObjectMeta: d.ObjectMeta, Spec: appsv1.StatefulSetSpec{Template: d.Spec.Template}}} {
		want := obj.DeepCopyObject().(client.Object)
		want.SetManagedFields(nil)
		want.SetAnnotations(map[string]string{policy.AnnotationQuorum: "true"})
		switch w := want.(type) {
		case *appsv1.Deployment:
			policy.TrimDeployment(w)
		case *appsv1.StatefulSet:
			policy.TrimStatefulSet(w)
		}
		out, err := transformOf(t, obj)(obj.DeepCopyObject())
		require.NoError(t, err)
		assert.Equal(t, want, out)
		assert.Equal(t, want, AsCached(obj), "AsCached is the cache's transform")
	}
	assert.Equal(t, []corev1.Container{{Ports: []corev1.ContainerPort{{Name: "pg", ContainerPort: 5432}}}}, AsCached(d).(*appsv1.Deployment).Spec.Template.Spec.Containers)
	d.Spec.Template.Annotations = map[string]string{"checksum/config": "0c1d", policy.AnnotationProtect: "true"}
	assert.Equal(t, map[string]string{policy.AnnotationProtect: "true"}, AsCached(d).(*appsv1.Deployment).Spec.Template.Annotations,
		"the pod template keeps statekeeper's keys (policy.EffectiveKeys reads them there)")

	pod := podMetadata()
	pod.Name, pod.Labels = "db-0", map[string]string{"app": "db"}
	pod.Annotations = map[string]string{"a": "b", policy.AnnotationOrdinal: "0", policy.AnnotationPeers: "db-0.db", policy.AnnotationPeersReplicas: "1"}
	pod.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}
	var podTransform func(any) (any, error)
	for obj, by := range CacheOptions().ByObject {
		if obj.GetObjectKind().GroupVersionKind().Kind == "Pod" {
			podTransform = by.Transform
		}
	}
	require.NotNil(t, podTransform, "pods have their own transform")
	out, err = podTransform(pod)
	require.NoError(t, err)
	want := podMetadata()
	want.Name, want.Labels = "db-0", map[string]string{"app": "db"}
	want.Annotations = map[string]string{policy.AnnotationOrdinal: "0", policy.AnnotationPeersReplicas: "1"}
	assert.Equal(t, want, out, "pods keep what selector matching and the peers reconciler need")

	pod = podMetadata()
	pod.Annotations = map[string]string{"a": "b"}
	out, err = podTransform(pod)
	require.NoError(t, err)
	assert.Equal(t, podMetadata(), out, "a pod statekeeper did not stamp keeps no annotations")

	owner := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: "s"}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "shop", Name: "db-headless", UID: "u", ResourceVersion: "7",
			Labels:          map[string]string{policy.LabelManagedBy: policy.ManagerName},
			Annotations:     map[string]string{lastApplied: "{}", "note": "x"},
			OwnerReferences: []metav1.OwnerReference{owner},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "statekeeper"}},
		},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP, ClusterIP: corev1.ClusterIPNone, ClusterIPs: []string{corev1.ClusterIPNone},
			Selector: map[string]string{"app": "db"}, Ports: []corev1.ServicePort{{Name: "sql", Port: 3306, Protocol: corev1.ProtocolTCP}},
			PublishNotReadyAddresses: true, IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol}, SessionAffinity: corev1.ServiceAffinityNone,
		},
		Status: corev1.ServiceStatus{Conditions: []metav1.Condition{{Type: "x"}}},
	}
	wantService := svc.DeepCopy()
	wantService.ManagedFields = nil
	wantService.Annotations = map[string]string{"note": "x"}
	out, err = CacheOptions().DefaultTransform(svc)
	require.NoError(t, err)
	assert.Equal(t, wantService, out, "other kinds lose only managedFields and the last-applied annotation")
}

// transformOf is the cache transform of obj's type.
func transformOf(t *testing.T, obj client.Object) func(any) (any, error) {
	t.Helper()
	for o, by := range CacheOptions().ByObject {
		if fmt.Sprintf("%T", o) == fmt.Sprintf("%T", obj) {
			require.NotNil(t, by.Transform)
			return by.Transform
		}
	}
	t.Fatalf("no cache options for %T", obj)
	return nil
}

// TestComponentListsPodsOnlyOfStoppedWorkloads: a counterpart whose replicas
// say it runs is running whatever its pods, so only a stopped one costs a
// listing of the namespace's pods (every pod of it, at scale).
func TestComponentListsPodsOnlyOfStoppedWorkloads(t *testing.T) {
	builder := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(fixtures()...)
	require.NoError(t, IndexFields(context.Background(), recordingIndexer{builder}))
	c := builder.Build()
	counting := &podListCounter{Reader: c}
	l := NewCache(counting, c)
	ctx := context.Background()

	_, err := l.Component(ctx, policy.KindStatefulSet, "shop", "db") // replicas 1
	require.NoError(t, err)
	assert.Zero(t, counting.podLists)
	_, err = l.Component(ctx, policy.KindDeployment, "shop", "db") // db-a runs, db-old is at 0
	require.NoError(t, err)
	assert.Equal(t, 1, counting.podLists)
}

// podListCounter counts the pod listings made through it.
type podListCounter struct {
	client.Reader
	podLists int
}

func (r *podListCounter) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if _, ok := list.(*metav1.PartialObjectMetadataList); ok {
		r.podLists++
	}
	return r.Reader.List(ctx, list, opts...)
}
