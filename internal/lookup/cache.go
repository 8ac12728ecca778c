package lookup

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// ComponentIndex is the cache field index on Deployments and StatefulSets
// that carry a component label; its value is the label. Component lookups
// read it, and the workload named after the component, so that no request
// lists a whole namespace. Workloads without the label, most of them, are not
// in the index: their component is their name, which the store is keyed by
// already (an index entry costs about 0.7 KiB per workload, two values each
// in a set of its own).
const ComponentIndex = "statekeeper.io/component"

// ScaleTargetIndex is the cache field index on HorizontalPodAutoscalers
// whose value is their scale target (TargetKey), for the apps group's kinds.
const ScaleTargetIndex = "statekeeper.io/scale-target"

// IndexFields registers ComponentIndex on Deployments and StatefulSets and
// ScaleTargetIndex on HPAs. Call it with mgr.GetFieldIndexer() before the
// manager starts.
func IndexFields(ctx context.Context, indexer client.FieldIndexer) error {
	for _, obj := range []client.Object{&appsv1.Deployment{}, &appsv1.StatefulSet{}} {
		if err := indexer.IndexField(ctx, obj, ComponentIndex, componentOf); err != nil {
			return fmt.Errorf("indexing %T by component: %w", obj, err)
		}
	}
	if err := indexer.IndexField(ctx, &autoscalingv2.HorizontalPodAutoscaler{}, ScaleTargetIndex, scaleTargetOf); err != nil {
		return fmt.Errorf("indexing horizontalpodautoscalers by scale target: %w", err)
	}
	return nil
}

// TargetKey names an HPA's scale target in the apps group as
// "<Kind>/<name>"; a target in another group has no key ("").
func TargetKey(apiVersion, kind, name string) string {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil || gv.Group != appsv1.GroupName {
		return ""
	}
	return kind + "/" + name
}

func scaleTargetOf(obj client.Object) []string {
	h, ok := obj.(*autoscalingv2.HorizontalPodAutoscaler)
	if !ok {
		return nil
	}
	ref := h.Spec.ScaleTargetRef
	if key := TargetKey(ref.APIVersion, ref.Kind, ref.Name); key != "" {
		return []string{key}
	}
	return nil
}

// componentOf is the index function: the component label (on the workload
// or its pod template, policy.EffectiveKeys), for the workloads whose
// component (policy.ComponentOf) is not their name.
func componentOf(obj client.Object) []string {
	if c := componentLabel(obj); c != "" {
		return []string{c}
	}
	return nil
}

// componentLabel is a Deployment's or StatefulSet's effective component
// label, "" when it has none.
func componentLabel(obj client.Object) string {
	var w policy.Workload
	switch o := obj.(type) {
	case *appsv1.Deployment:
		w = policy.FromDeployment(o)
	case *appsv1.StatefulSet:
		w = policy.FromStatefulSet(o)
	default:
		return ""
	}
	return w.Labels[policy.LabelComponent]
}

// CacheOptions returns the cache settings the lookups need. Every object
// loses its managedFields and kubectl's last-applied-configuration
// annotation (stripUnread): statekeeper reads neither, and they are often the
// bulk of an object. Two kinds, the most numerous, keep less: Deployments
// and StatefulSets what policy reads of a stored workload
// (policy.TrimDeployment: of the pod template little more than labels,
// volumes and the containers' ports and mounts), and pods, cached as
// metadata only to answer "do pods still exist", their labels and what the
// peers reconciler reads (stripPodMetadata). Then the cached objects share
// equal values (an interner, intern.go): the labels of a ReplicaSet's pods,
// a workload's selector and template labels, equal containers' ports and
// mounts, namespaces and label keys. Each of these saves more than a tenth
// of the live heap at 10,000 workloads with their Services and 50,000 pods
// (docs/performance.md, "Which transforms pay"); trimming Services or
// namespaces further would save about 1 %.
//
// Deployments and StatefulSets must be cached without a label selector: a
// kind switch is judged against the other kind's workload even when that one
// predates statekeeper and carries no deploy-type label. Services too: the
// headless-conflict rule must see any Service of the name, managed or not.
//
// Each call returns transforms with an interner of their own: one per cache.
func CacheOptions() cache.Options {
	in := newInterner()
	byObject := map[client.Object]cache.ByObject{}
	for _, t := range transforms {
		byObject[t.obj()] = cache.ByObject{Transform: in.sharing(t.transform)}
	}
	return cache.Options{DefaultTransform: in.sharing(stripUnread), ByObject: byObject}
}

// transforms are the kinds cached with a transform of their own rather
// than stripUnread.
var transforms = []struct {
	obj       func() client.Object
	transform toolscache.TransformFunc
}{
	{func() client.Object { return &appsv1.Deployment{} }, trimStoredWorkload},
	{func() client.Object { return &appsv1.StatefulSet{} }, trimStoredWorkload},
	{func() client.Object { return podMetadata() }, stripPodMetadata},
}

// sharing is transform, then in.object: the transformed object's values
// shared with the other objects of the cache. Applied again to an object it
// returned, it writes to no shared value (client-go may hand a transform an
// object it already transformed): what transforms drop is already gone, and
// they build what they trim anew.
func (in *interner) sharing(transform toolscache.TransformFunc) toolscache.TransformFunc {
	return func(obj any) (any, error) {
		out, err := transform(obj)
		if err == nil {
			in.object(out)
		}
		return out, err
	}
}

// AsCached returns a deep copy of obj as the cache holds it, after the same
// transform: for tests that judge an object both ways. It shares nothing
// with other objects (Transformer does).
func AsCached(obj client.Object) client.Object {
	return NewTransformer().AsCached(obj)
}

// Transformer gives objects as one cache holds them: the values of all the
// objects it was given are shared as the cache's are.
type Transformer struct{ in *interner }

// NewTransformer returns a Transformer that has seen no object yet.
func NewTransformer() *Transformer { return &Transformer{in: newInterner()} }

// AsCached returns a deep copy of obj as the cache holds it, after the same
// transform, sharing values with the objects t returned before.
func (t *Transformer) AsCached(obj client.Object) client.Object {
	out := obj.DeepCopyObject().(client.Object)
	transform := stripUnread
	for _, tr := range transforms {
		if reflect.TypeOf(tr.obj()) == reflect.TypeOf(out) && sameKind(tr.obj(), out) {
			transform = tr.transform
		}
	}
	cached, err := t.in.sharing(transform)(out)
	if err != nil {
		panic(fmt.Sprintf("transforming %T: %v", obj, err)) // the transforms never fail
	}
	return cached.(client.Object)
}

// sameKind tells the metadata-only pods from other PartialObjectMetadata.
func sameKind(a, b client.Object) bool {
	if _, ok := a.(*metav1.PartialObjectMetadata); !ok {
		return true
	}
	return a.GetObjectKind().GroupVersionKind() == b.GetObjectKind().GroupVersionKind()
}

// trimStoredWorkload is stripUnread, then what policy reads of a stored
// Deployment or StatefulSet (policy.TrimDeployment, policy.TrimStatefulSet).
func trimStoredWorkload(in any) (any, error) {
	out, err := stripUnread(in)
	switch w := out.(type) {
	case *appsv1.Deployment:
		policy.TrimDeployment(w)
	case *appsv1.StatefulSet:
		policy.TrimStatefulSet(w)
	}
	return out, err
}

// lastApplied is the annotation client-side `kubectl apply` keeps a whole
// copy of the object in.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// stripUnread drops what no lookup reads from a cached object.
func stripUnread(in any) (any, error) {
	if obj, ok := in.(metav1.Object); ok {
		obj.SetManagedFields(nil)
		if annotations := obj.GetAnnotations(); annotations[lastApplied] != "" {
			delete(annotations, lastApplied)
		}
	}
	return in, nil
}

// cachedObjects are the kinds the Cache reads from the informer cache.
func cachedObjects() []client.Object {
	return []client.Object{
		&appsv1.Deployment{}, &appsv1.StatefulSet{}, &corev1.PersistentVolumeClaim{}, &corev1.Namespace{}, &corev1.Service{}, podMetadata(),
		&autoscalingv2.HorizontalPodAutoscaler{},
		&storagev1.StorageClass{},
	}
}

// StartInformers creates the informers the Cache reads, so that the manager
// starts and syncs them at start-up (readiness can wait on the sync) instead
// of the first admission request that needs one blocking until it synced.
// Call it with mgr.GetCache() before the manager starts.
func StartInformers(ctx context.Context, informers cache.Informers) error {
	for _, obj := range cachedObjects() {
		if _, err := informers.GetInformer(ctx, obj, cache.BlockUntilSynced(false)); err != nil {
			return fmt.Errorf("creating the informer for %T: %w", obj, err)
		}
	}
	return nil
}

// podMetadata is the metadata-only view of pods: the cache then runs a
// metadata informer and keeps no pod specs.
func podMetadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Pod"))
	return m
}

// stripPodMetadata keeps what selector matching needs (the namespace and
// labels) and what the peers reconciler reads: the name, the deletion
// timestamp, a StatefulSet controller reference, and of the annotations the
// two it compares. Other owner references (most pods are a ReplicaSet's or
// a Job's), generateName, finalizers and the pod's own uid (nothing reads
// it: the peers reconciler compares the owner's; 48 bytes of 50,000 pods'
// 0.64 KiB each) are dropped. The resourceVersion stays: the informer's
// store tracks it.
func stripPodMetadata(in any) (any, error) {
	if m, ok := in.(*metav1.PartialObjectMetadata); ok {
		m.ManagedFields, m.GenerateName, m.Finalizers, m.UID = nil, "", nil, ""
		m.OwnerReferences = statefulSetController(m.OwnerReferences)
		var kept map[string]string
		for _, key := range []string{policy.AnnotationOrdinal, policy.AnnotationPeersReplicas} {
			if v, ok := m.Annotations[key]; ok {
				if kept == nil {
					kept = map[string]string{}
				}
				kept[key] = v
			}
		}
		m.Annotations = kept
	}
	return in, nil
}

// statefulSetController is refs' controller reference when it names an
// apps/v1 StatefulSet, else none.
func statefulSetController(refs []metav1.OwnerReference) []metav1.OwnerReference {
	for _, ref := range refs {
		if ref.Controller != nil && *ref.Controller &&
			ref.APIVersion == appsv1.SchemeGroupVersion.String() && ref.Kind == string(policy.KindStatefulSet) {
			return []metav1.OwnerReference{ref}
		}
	}
	return nil
}

// Cache answers lookups from the manager's informer cache. Only the misses of
// StatefulSet and NamespaceMode are read from the API server, through a
// liveReader that coalesces, remembers and rate-limits them.
type Cache struct {
	cached client.Reader
	live   *liveReader
}

var _ Lookup = (*Cache)(nil)

// NewCache returns a Lookup over cached (mgr.GetCache(), with IndexFields
// registered, CacheOptions applied and StartInformers called) and uncached
// (mgr.GetAPIReader()), which only the bounded reads of misses use.
func NewCache(cached, uncached client.Reader) *Cache {
	return newCache(cached, uncached, DefaultLiveReadOptions())
}

func newCache(cached, uncached client.Reader, opts LiveReadOptions) *Cache {
	return &Cache{cached: cached, live: newLiveReader(uncached, opts)}
}

// The admission lookups below read the cache's own objects, without the
// deep copy controller-runtime makes by default (it was a tenth of a small
// review's time): what they return is read, never written (policy.Workload
// views, the Service the conflict rule names, a namespace's labels), and the
// informers replace cached objects rather than change them.

// Workload implements Lookup.
func (c *Cache) Workload(ctx context.Context, kind policy.Kind, namespace, name string) (*policy.Workload, error) {
	key := client.ObjectKey{Namespace: namespace, Name: name}
	var w policy.Workload
	switch kind {
	case policy.KindDeployment:
		var d appsv1.Deployment
		if err := c.cached.Get(ctx, key, &d, client.UnsafeDisableDeepCopy); err != nil {
			return nil, client.IgnoreNotFound(err)
		}
		w = policy.FromDeployment(&d)
	case policy.KindStatefulSet:
		var s appsv1.StatefulSet
		if err := c.cached.Get(ctx, key, &s, client.UnsafeDisableDeepCopy); err != nil {
			return nil, client.IgnoreNotFound(err)
		}
		w = policy.FromStatefulSet(&s)
	default:
		return nil, fmt.Errorf("%w %q", ErrUnknownKind, kind)
	}
	return &w, nil
}

// Component implements Lookup: the workloads labelled with the component
// (ComponentIndex), and the one named after it if it carries no component
// label (policy.ComponentOf).
func (c *Cache) Component(ctx context.Context, kind policy.Kind, namespace, component string) ([]policy.Observed, error) {
	opts := []client.ListOption{client.InNamespace(namespace), client.MatchingFields{ComponentIndex: component}, client.UnsafeDisableDeepCopy}
	key := client.ObjectKey{Namespace: namespace, Name: component}
	var workloads []policy.Workload
	switch kind {
	case policy.KindDeployment:
		var list appsv1.DeploymentList
		if err := c.cached.List(ctx, &list, opts...); err != nil {
			return nil, fmt.Errorf("listing deployments of component %q: %w", component, err)
		}
		var named appsv1.Deployment
		if found, err := c.namedComponent(ctx, key, &named); err != nil {
			return nil, err
		} else if found {
			list.Items = append(list.Items, named)
		}
		for i := range list.Items {
			workloads = append(workloads, policy.FromDeployment(&list.Items[i]))
		}
	case policy.KindStatefulSet:
		var list appsv1.StatefulSetList
		if err := c.cached.List(ctx, &list, opts...); err != nil {
			return nil, fmt.Errorf("listing statefulsets of component %q: %w", component, err)
		}
		var named appsv1.StatefulSet
		if found, err := c.namedComponent(ctx, key, &named); err != nil {
			return nil, err
		} else if found {
			list.Items = append(list.Items, named)
		}
		for i := range list.Items {
			workloads = append(workloads, policy.FromStatefulSet(&list.Items[i]))
		}
	default:
		return nil, fmt.Errorf("%w %q", ErrUnknownKind, kind)
	}
	slices.SortFunc(workloads, func(a, b policy.Workload) int { return strings.Compare(a.Name, b.Name) })
	out := make([]policy.Observed, 0, len(workloads))
	for _, w := range workloads {
		o, err := c.observe(ctx, w)
		if err != nil {
			return nil, err
		}
		out = append(out, *o)
	}
	return out, nil
}

// namedComponent reads the workload named key.Name into obj and reports
// whether it belongs to that component by its name: it exists and carries
// no component label, on itself or its pod template (one that does is in
// ComponentIndex).
func (c *Cache) namedComponent(ctx context.Context, key client.ObjectKey, obj client.Object) (bool, error) {
	err := c.cached.Get(ctx, key, obj, client.UnsafeDisableDeepCopy)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", key.Name, err)
	}
	return componentLabel(obj) == "", nil
}

func (c *Cache) observe(ctx context.Context, w policy.Workload) (*policy.Observed, error) {
	if w.RunsByReplicas() {
		return &policy.Observed{Workload: w}, nil
	}
	exist, err := c.PodsExist(ctx, w.Namespace, w.Selector)
	if err != nil {
		return nil, fmt.Errorf("listing pods of %s: %w", w.Ref(), err)
	}
	return &policy.Observed{Workload: w, PodsExist: exist}, nil
}

// PodsExist implements Lookup by listing the cached pod metadata.
func (c *Cache) PodsExist(ctx context.Context, namespace string, selector *metav1.LabelSelector) (bool, error) {
	sel, ok := selectorOf(selector)
	if !ok {
		return false, nil
	}
	pods := &metav1.PartialObjectMetadataList{}
	pods.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PodList"))
	// Only counted: no copy of every pod of a large workload per review.
	if err := c.cached.List(ctx, pods, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: sel}, client.UnsafeDisableDeepCopy); err != nil {
		return false, err
	}
	return len(pods.Items) > 0, nil
}

// Claims implements Lookup.
func (c *Cache) Claims(ctx context.Context, namespace string, names []string) (map[string]*corev1.PersistentVolumeClaim, error) {
	out := make(map[string]*corev1.PersistentVolumeClaim, len(names))
	for _, name := range names {
		claim := &corev1.PersistentVolumeClaim{}
		err := c.cached.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, claim)
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return nil, fmt.Errorf("reading claim %q: %w", name, err)
		}
		out[name] = claim
	}
	return out, nil
}

// Service implements Lookup from the cache alone. A Service created moments
// before the StatefulSet that names it may not be there yet; the reconciler
// then finds it and reports a conflict on the StatefulSet. Reading misses
// live instead would cost a GET for nearly every stateful StatefulSet
// created, whose Service does not exist yet.
func (c *Cache) Service(ctx context.Context, namespace, name string) (*corev1.Service, error) {
	svc := &corev1.Service{}
	if err := c.cached.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, svc, client.UnsafeDisableDeepCopy); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return svc, nil
}

// StatefulSet implements Lookup. The StatefulSet controller creates the first
// pod moments after the StatefulSet itself, often before the informer has
// delivered it: a miss (or an older incarnation) is read from the API server
// rather than leaving that pod without its identity. Hits, the common case,
// stay in the cache.
func (c *Cache) StatefulSet(ctx context.Context, namespace, name string, uid types.UID) (*appsv1.StatefulSet, error) {
	key := client.ObjectKey{Namespace: namespace, Name: name}
	s := &appsv1.StatefulSet{}
	err := c.cached.Get(ctx, key, s)
	if err == nil && (uid == "" || s.UID == uid) {
		return s, nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	return readLive(ctx, c.live, key, string(uid), func(s *appsv1.StatefulSet) bool {
		return uid == "" || s.UID == uid
	})
}

// StorageClasses implements Lookup from the cache.
func (c *Cache) StorageClasses(ctx context.Context) ([]storagev1.StorageClass, error) {
	var list storagev1.StorageClassList
	if err := c.cached.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("listing storage classes: %w", err)
	}
	return list.Items, nil
}

// NamespaceMode implements Lookup through namespace.
func (c *Cache) NamespaceMode(ctx context.Context, namespace string) (string, bool, error) {
	ns, err := c.namespace(ctx, namespace)
	if err != nil || ns == nil {
		return "", false, err
	}
	mode, ok := ns.Labels[policy.LabelMode]
	return mode, ok, nil
}

// NamespaceProtected implements Lookup through namespace.
func (c *Cache) NamespaceProtected(ctx context.Context, namespace string) (bool, error) {
	ns, err := c.namespace(ctx, namespace)
	if err != nil || ns == nil {
		return false, err
	}
	return ns.Labels[policy.LabelProtect] == "true", nil
}

// namespace reads a namespace, nil when it does not exist. A namespace is
// often created in the same apply as its workloads, before the informer has
// seen it; a miss is read from the API server so its labels are not ignored.
func (c *Cache) namespace(ctx context.Context, name string) (*corev1.Namespace, error) {
	key := client.ObjectKey{Name: name}
	ns := &corev1.Namespace{}
	err := c.cached.Get(ctx, key, ns, client.UnsafeDisableDeepCopy)
	if apierrors.IsNotFound(err) {
		ns, err = readLive(ctx, c.live, key, "", func(*corev1.Namespace) bool { return true })
	}
	if err != nil || ns == nil {
		return nil, client.IgnoreNotFound(err)
	}
	return ns, nil
}

// Autoscalers implements Lookup through ScaleTargetIndex.
func (c *Cache) Autoscalers(ctx context.Context, namespace string, kind policy.Kind, name string) ([]policy.Autoscaler, error) {
	var list autoscalingv2.HorizontalPodAutoscalerList
	key := TargetKey(appsv1.SchemeGroupVersion.String(), string(kind), name)
	if err := c.cached.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{ScaleTargetIndex: key}); err != nil {
		return nil, fmt.Errorf("listing the horizontalpodautoscalers of %s %q: %w", kind.Lower(), name, err)
	}
	out := make([]policy.Autoscaler, 0, len(list.Items))
	for _, h := range list.Items {
		out = append(out, policy.Autoscaler{Name: h.Name, MaxReplicas: h.Spec.MaxReplicas})
	}
	slices.SortFunc(out, func(a, b policy.Autoscaler) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// selectorOf converts a workload's selector; ok is false when it selects no
// pod: missing, invalid or empty (apps/v1 rejects an empty selector, so a
// stored workload never selects every pod of its namespace).
func selectorOf(selector *metav1.LabelSelector) (labels.Selector, bool) {
	if selector == nil {
		return nil, false
	}
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil || sel.Empty() {
		return nil, false
	}
	return sel, true
}
