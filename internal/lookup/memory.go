package lookup

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// Memory is a Lookup over objects held in memory: `statekeeper check` adds the
// objects that precede the one being checked, so that a manifest stream is
// judged as if it had been applied in order. It is not safe for concurrent
// use while objects are being added.
type Memory struct {
	deployments  map[client.ObjectKey]*appsv1.Deployment
	statefulSets map[client.ObjectKey]*appsv1.StatefulSet
	claims       map[client.ObjectKey]*corev1.PersistentVolumeClaim
	services     map[client.ObjectKey]*corev1.Service
	namespaces   map[string]*corev1.Namespace
	classes      map[string]*storagev1.StorageClass
	// podLabels holds the labels of each pod by namespace, for PodsExist.
	podLabels map[string][]map[string]string
	// autoscalers holds the HPAs by namespace and name.
	autoscalers map[client.ObjectKey]autoscaler
}

// autoscaler is an HPA as Autoscalers matches it.
type autoscaler struct {
	policy.Autoscaler
	target string // TargetKey of its scale target
}

var _ Lookup = (*Memory)(nil)

// NewMemory returns an empty cluster.
func NewMemory() *Memory {
	return &Memory{
		deployments:  map[client.ObjectKey]*appsv1.Deployment{},
		statefulSets: map[client.ObjectKey]*appsv1.StatefulSet{},
		claims:       map[client.ObjectKey]*corev1.PersistentVolumeClaim{},
		services:     map[client.ObjectKey]*corev1.Service{},
		namespaces:   map[string]*corev1.Namespace{},
		classes:      map[string]*storagev1.StorageClass{},
		podLabels:    map[string][]map[string]string{},
		autoscalers:  map[client.ObjectKey]autoscaler{},
	}
}

// Add stores obj, replacing an object of the same kind and name. It reports
// whether obj is of a kind the lookups read (Deployment, StatefulSet,
// PersistentVolumeClaim, Service, Namespace, Pod, StorageClass, HorizontalPodAutoscaler
// of autoscaling/v1 or v2, all as typed objects);
// other objects are ignored.
func (m *Memory) Add(obj client.Object) bool {
	key := client.ObjectKeyFromObject(obj)
	switch o := obj.(type) {
	case *appsv1.Deployment:
		m.deployments[key] = o
	case *appsv1.StatefulSet:
		m.statefulSets[key] = o
	case *corev1.PersistentVolumeClaim:
		m.claims[key] = o
	case *corev1.Service:
		m.services[key] = o
	case *corev1.Namespace:
		m.namespaces[o.Name] = o
	case *storagev1.StorageClass:
		m.classes[o.Name] = o

	case *corev1.Pod:
		m.podLabels[o.Namespace] = append(m.podLabels[o.Namespace], o.Labels)
	case *autoscalingv2.HorizontalPodAutoscaler:
		ref := o.Spec.ScaleTargetRef
		m.autoscalers[key] = autoscaler{policy.Autoscaler{Name: o.Name, MaxReplicas: o.Spec.MaxReplicas}, TargetKey(ref.APIVersion, ref.Kind, ref.Name)}
	case *autoscalingv1.HorizontalPodAutoscaler:
		ref := o.Spec.ScaleTargetRef
		m.autoscalers[key] = autoscaler{policy.Autoscaler{Name: o.Name, MaxReplicas: o.Spec.MaxReplicas}, TargetKey(ref.APIVersion, ref.Kind, ref.Name)}
	default:
		return false
	}
	return true
}

// Workload implements Lookup.
func (m *Memory) Workload(_ context.Context, kind policy.Kind, namespace, name string) (*policy.Workload, error) {
	key := client.ObjectKey{Namespace: namespace, Name: name}
	var w policy.Workload
	switch kind {
	case policy.KindDeployment:
		d, ok := m.deployments[key]
		if !ok {
			return nil, nil
		}
		w = policy.FromDeployment(d)
	case policy.KindStatefulSet:
		s, ok := m.statefulSets[key]
		if !ok {
			return nil, nil
		}
		w = policy.FromStatefulSet(s)
	default:
		return nil, fmt.Errorf("%w %q", ErrUnknownKind, kind)
	}
	return &w, nil
}

// Component implements Lookup.
func (m *Memory) Component(_ context.Context, kind policy.Kind, namespace, component string) ([]policy.Observed, error) {
	var out []policy.Observed
	keep := func(w policy.Workload) {
		if w.Namespace == namespace && w.Component() == component {
			out = append(out, policy.Observed{Workload: w, PodsExist: !w.RunsByReplicas() && m.podsExist(w.Namespace, w.Selector)})
		}
	}
	switch kind {
	case policy.KindDeployment:
		for _, d := range m.deployments {
			keep(policy.FromDeployment(d))
		}
	case policy.KindStatefulSet:
		for _, s := range m.statefulSets {
			keep(policy.FromStatefulSet(s))
		}
	default:
		return nil, fmt.Errorf("%w %q", ErrUnknownKind, kind)
	}
	// Maps iterate in random order; messages that name a counterpart must not.
	slices.SortFunc(out, func(a, b policy.Observed) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// PodsExist implements Lookup.
func (m *Memory) PodsExist(_ context.Context, namespace string, selector *metav1.LabelSelector) (bool, error) {
	return m.podsExist(namespace, selector), nil
}

func (m *Memory) podsExist(namespace string, selector *metav1.LabelSelector) bool {
	sel, ok := selectorOf(selector)
	if !ok {
		return false
	}
	for _, podLabels := range m.podLabels[namespace] {
		if sel.Matches(labels.Set(podLabels)) {
			return true
		}
	}
	return false
}

// Claims implements Lookup.
func (m *Memory) Claims(_ context.Context, namespace string, names []string) (map[string]*corev1.PersistentVolumeClaim, error) {
	out := make(map[string]*corev1.PersistentVolumeClaim, len(names))
	for _, name := range names {
		if c, ok := m.claims[client.ObjectKey{Namespace: namespace, Name: name}]; ok {
			out[name] = c
		}
	}
	return out, nil
}

// Service implements Lookup.
func (m *Memory) Service(_ context.Context, namespace, name string) (*corev1.Service, error) {
	return m.services[client.ObjectKey{Namespace: namespace, Name: name}], nil
}

// StatefulSet implements Lookup.
func (m *Memory) StatefulSet(_ context.Context, namespace, name string, _ types.UID) (*appsv1.StatefulSet, error) {
	return m.statefulSets[client.ObjectKey{Namespace: namespace, Name: name}], nil
}

// Autoscalers implements Lookup.
func (m *Memory) Autoscalers(_ context.Context, namespace string, kind policy.Kind, name string) ([]policy.Autoscaler, error) {
	want := TargetKey(appsv1.SchemeGroupVersion.String(), string(kind), name)
	var out []policy.Autoscaler
	for key, a := range m.autoscalers {
		if key.Namespace == namespace && a.target == want {
			out = append(out, a.Autoscaler)
		}
	}
	slices.SortFunc(out, func(a, b policy.Autoscaler) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// NamespaceMode implements Lookup.
func (m *Memory) NamespaceMode(_ context.Context, namespace string) (string, bool, error) {
	ns, ok := m.namespaces[namespace]
	if !ok {
		return "", false, nil
	}
	mode, ok := ns.Labels[policy.LabelMode]
	return mode, ok, nil
}

// NamespaceProtected implements Lookup.
func (m *Memory) NamespaceProtected(_ context.Context, namespace string) (bool, error) {
	ns, ok := m.namespaces[namespace]
	return ok && ns.Labels[policy.LabelProtect] == "true", nil
}

// StorageClasses implements Lookup, in name order.
func (m *Memory) StorageClasses(context.Context) ([]storagev1.StorageClass, error) {
	out := make([]storagev1.StorageClass, 0, len(m.classes))
	for _, c := range m.classes {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b storagev1.StorageClass) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// AsCached returns a copy of m holding what the informer cache would hold
// of its objects: each passed through the cache's transform, their values
// shared as one cache shares them (Transformer). The differential tests
// judge every fixture against both, so that a rule reading a field the cache
// drops fails a test instead of seeing it empty.
func (m *Memory) AsCached() *Memory {
	out := NewMemory()
	t := NewTransformer()
	addAsCached(out, t, m.deployments)
	addAsCached(out, t, m.statefulSets)
	addAsCached(out, t, m.claims)
	addAsCached(out, t, m.services)
	addAsCached(out, t, m.namespaces)
	addAsCached(out, t, m.classes)
	for ns, pods := range m.podLabels {
		out.podLabels[ns] = slices.Clone(pods)
	}
	maps.Copy(out.autoscalers, m.autoscalers)
	return out
}

func addAsCached[K comparable, T client.Object](to *Memory, t *Transformer, objects map[K]T) {
	for _, o := range objects {
		to.Add(t.AsCached(o))
	}
}
