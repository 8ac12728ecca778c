package lookup

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"maps"
	"slices"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// An interner lets the objects of one cache share equal values: strings
// (namespaces, label keys and values), label and annotation maps, and the
// small read-only parts of a trimmed workload (its containers' ports and
// mounts, volumes, claim templates, strategy). Each object decodes into
// values of its own; most are equal to another cached object's: the pods of
// a ReplicaSet carry the same labels, a workload's selector is usually its
// pod template's labels, and the workloads of one chart have the same ports
// and mounts. Sharing them is what makes 50,000 pods and 10,000 workloads
// fit (docs/performance.md, "What the caches cost").
//
// Sharing is safe because nothing writes to a cached object: controller-
// runtime's cache gives every Get and List a deep copy, and the readers that
// skip the copy (client.UnsafeDisableDeepCopy: the admission lookups of
// Cache, the audit, the reconcilers' read-only lists and mappings) only
// read, as the Lookup contract says. Such a reader that
// wrote to a map would already corrupt the cache; with sharing it would
// corrupt other objects as well.
//
// Every table is bounded: two generations of entries, the older dropped
// when the newer is full, and a lookup that finds an entry in the older
// moves it to the newer, so what is still asked for stays. A value dropped
// from a table stays alive as long as an object uses it (the next equal
// value gets a canonical copy of its own, so sharing is partial after
// churn, never wrong), and one no object uses any more is held at most
// until two generations have passed.
//
// Maps are the most numerous shared values (one per ReplicaSet's pods, per
// workload, per selector), and an object's map must be found again long
// after an equal one was cached: a pod's status update decodes its labels
// anew, in no particular order. So their generations are as large as the
// distinct maps of a large cluster (mapLimit). Strings and the other values
// that repeat are few and hot (namespaces, label keys, the container shapes
// of a cluster's charts; a label value naming one workload repeats only
// within its own objects, which arrive together, and otherwise falls out):
// their generations are of at most internLimit entries.
//
// Values are found by content, so deletes and updates need no bookkeeping:
// an updated object's values are interned anew.
type interner struct {
	mu      sync.Mutex
	seed    maphash.Seed
	strings generations[string, string]
	labels  generations[uint64, map[string]string]
	values  generations[uint64, []any]
	// scratch and other are buffers for the encodings of values: the one
	// looked up and an entry compared with it.
	scratch, other []byte
}

// internLimit is the size of each generation of the string and value
// tables: large enough for a cluster's namespaces, label keys and container
// shapes, small enough that the tables stay well under a MiB.
const internLimit = 2048

// mapLimit is the size of each generation of the map table: the distinct
// label maps of 10,000 workloads (their own, their selectors') and of the
// ReplicaSets of 50,000 pods fit in two. The table itself costs under
// 40 bytes an entry; what it can keep alive after churn is the maps of
// deleted objects, at most 2×mapLimit of them.
const mapLimit = 16384

func newInterner() *interner {
	return &interner{
		seed:    maphash.MakeSeed(),
		strings: generations[string, string]{limit: 2 * internLimit},
		labels:  generations[uint64, map[string]string]{limit: mapLimit},
		values:  generations[uint64, []any]{limit: internLimit},
	}
}

// generations is a table of at most 2×limit entries: lookups find an entry
// in the newer generation or, moving it there, in the older one.
type generations[K comparable, V any] struct {
	newer, older map[K]V
	limit        int
}

func (g *generations[K, V]) get(k K) (V, bool) {
	if v, ok := g.newer[k]; ok {
		return v, true
	}
	v, ok := g.older[k]
	if ok {
		g.put(k, v)
	}
	return v, ok
}

func (g *generations[K, V]) put(k K, v V) {
	if g.newer == nil || len(g.newer) >= g.limit {
		g.older, g.newer = g.newer, map[K]V{}
	}
	g.newer[k] = v
}

// str is the canonical copy of s.
func (in *interner) str(s string) string {
	if s == "" {
		return s
	}
	if c, ok := in.strings.get(s); ok {
		return c
	}
	in.strings.put(s, s)
	return s
}

// stringMap is the canonical copy of m (labels, annotations, a selector), its
// keys and values canonical strings. An empty map is left as it is (nil and
// empty stay apart).
func (in *interner) stringMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	var h uint64
	for k, v := range m {
		h += maphash.Comparable(in.seed, [2]string{k, v}) // in any order
	}
	if c, ok := in.labels.get(h); ok {
		if maps.Equal(c, m) {
			return c
		}
		return m // another content of the same hash (rare): left unshared
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[in.str(k)] = in.str(v)
	}
	in.labels.put(h, c)
	return c
}

// marshaler is what the API types' generated protobuf code gives every
// struct: its encoding, without reflection.
type marshaler[T any] interface {
	*T
	Size() int
	MarshalToSizedBuffer([]byte) (int, error)
}

// encode appends to buf the protobuf encodings of items, each preceded by
// its length. Equal values encode equal (maps in key order); values that
// encode equal are equal as the API sees them (equality.Semantic, to which
// a nil and an empty list are the same) and as JSON (the API's lists are
// omitted when empty), which is all any reader of the cache can tell.
func encode[T any, P marshaler[T]](buf []byte, items []T) ([]byte, bool) {
	for i := range items {
		p := P(&items[i])
		n := p.Size()
		buf = binary.AppendUvarint(buf, uint64(n))
		buf = slices.Grow(buf, n)
		if _, err := p.MarshalToSizedBuffer(buf[len(buf) : len(buf)+n]); err != nil {
			return buf, false // not for sharing; the API types always encode
		}
		buf = buf[:len(buf)+n]
	}
	return buf, true
}

// sharedSlice is the canonical copy of a slice of API structs: an entry
// that encodes alike, or s, which becomes one. The protobuf encoding the API
// types generate is found and compared without reflection, which made this
// the informers' costliest step.
func sharedSlice[T any, P marshaler[T]](in *interner, s []T) []T {
	if len(s) == 0 {
		return s
	}
	var ok bool
	if in.scratch, ok = encode[T, P](in.scratch[:0], s); !ok {
		return s
	}
	h := maphash.Bytes(in.seed, in.scratch)
	bucket, _ := in.values.get(h)
	for _, c := range bucket {
		if c, same := c.([]T); same {
			if in.other, _ = encode[T, P](in.other[:0], c); bytes.Equal(in.other, in.scratch) {
				return c
			}
		}
	}
	in.values.put(h, append(slices.Clip(bucket), any(s)))
	return s
}

// sharedPtr is the canonical copy of a pointer to an API struct.
func sharedPtr[T any, P marshaler[T]](in *interner, p P) P {
	if p == nil {
		return p
	}
	return &sharedSlice[T, P](in, []T{*p})[0]
}

// meta shares what the object's metadata has in common with others'.
func (in *interner) meta(t *metav1.TypeMeta, m *metav1.ObjectMeta) {
	t.APIVersion, t.Kind = in.str(t.APIVersion), in.str(t.Kind)
	m.Namespace = in.str(m.Namespace)
	m.Labels = in.stringMap(m.Labels)
	m.Annotations = in.stringMap(m.Annotations)
	for i := range m.OwnerReferences {
		ref := &m.OwnerReferences[i]
		ref.APIVersion, ref.Kind = in.str(ref.APIVersion), in.str(ref.Kind)
	}
}

// object shares what any cached object has in common with others: its
// metadata. Workloads share more (workload).
func (in *interner) object(obj any) {
	in.mu.Lock()
	defer in.mu.Unlock()
	switch o := obj.(type) {
	case *appsv1.Deployment:
		in.meta(&o.TypeMeta, &o.ObjectMeta)
		s := &o.Spec
		s.Selector = in.selector(s.Selector)
		in.podTemplate(&s.Template)
		s.Strategy.Type = appsv1.DeploymentStrategyType(in.str(string(s.Strategy.Type)))
		s.Strategy.RollingUpdate = sharedPtr(in, s.Strategy.RollingUpdate)
	case *appsv1.StatefulSet:
		in.meta(&o.TypeMeta, &o.ObjectMeta)
		s := &o.Spec
		s.Selector = in.selector(s.Selector)
		in.podTemplate(&s.Template)
		s.VolumeClaimTemplates = sharedSlice(in, s.VolumeClaimTemplates)
		s.PodManagementPolicy = appsv1.PodManagementPolicyType(in.str(string(s.PodManagementPolicy)))
		s.UpdateStrategy.Type = appsv1.StatefulSetUpdateStrategyType(in.str(string(s.UpdateStrategy.Type)))
		s.UpdateStrategy.RollingUpdate = sharedPtr(in, s.UpdateStrategy.RollingUpdate)
		s.PersistentVolumeClaimRetentionPolicy = sharedPtr(in, s.PersistentVolumeClaimRetentionPolicy)
		s.Ordinals = sharedPtr(in, s.Ordinals)
	case *metav1.PartialObjectMetadata:
		in.meta(&o.TypeMeta, &o.ObjectMeta)
	case *corev1.Service:
		in.meta(&o.TypeMeta, &o.ObjectMeta)
		o.Spec.Selector = in.stringMap(o.Spec.Selector)
		o.Spec.Ports = sharedSlice(in, o.Spec.Ports)
	case metav1.Object:
		o.SetNamespace(in.str(o.GetNamespace()))
		o.SetLabels(in.stringMap(o.GetLabels()))
		o.SetAnnotations(in.stringMap(o.GetAnnotations()))
	}
}

// selector shares a selector's labels; the selector itself is the
// workload's own (its labels are unique to it).
func (in *interner) selector(s *metav1.LabelSelector) *metav1.LabelSelector {
	if s != nil {
		s.MatchLabels = in.stringMap(s.MatchLabels)
	}
	return s
}

// podTemplate shares what is left of a trimmed pod template: its labels
// (often the selector's), and its volumes and containers (those of one
// chart's workloads are equal).
func (in *interner) podTemplate(t *corev1.PodTemplateSpec) {
	t.Labels = in.stringMap(t.Labels)
	t.Annotations = in.stringMap(t.Annotations)
	t.Spec.Volumes = sharedSlice(in, t.Spec.Volumes)
	t.Spec.InitContainers = sharedSlice(in, t.Spec.InitContainers)
	t.Spec.Containers = sharedSlice(in, t.Spec.Containers)
}
