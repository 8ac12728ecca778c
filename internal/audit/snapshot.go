package audit

import (
	"context"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/lookup"
)

// Snapshot is the cluster as `statekeeper audit` reads it: every object the
// audit judges or looks up, listed once through a live client, so that a run
// makes a fixed number of requests however many workloads there are. Its
// Lookup answers the engine as the server's caches do.
type Snapshot struct {
	memory     *lookup.Memory
	objects    map[string][]client.Object
	namespaces []string
}

var _ Source = (*Snapshot)(nil)

// Read lists Namespaces, Deployments, StatefulSets, HorizontalPodAutoscalers,
// PersistentVolumeClaims and Services with c, in one namespace when
// namespace is set, else in all.
func Read(ctx context.Context, c client.Reader, namespace string) (*Snapshot, error) {
	s := &Snapshot{memory: lookup.NewMemory(), objects: map[string][]client.Object{}}
	var opts []client.ListOption
	if namespace != "" {
		opts = append(opts, client.InNamespace(namespace))
		var ns corev1.Namespace
		if err := c.Get(ctx, client.ObjectKey{Name: namespace}, &ns); err != nil {
			return nil, fmt.Errorf("reading namespace %q: %w", namespace, err)
		}
		s.memory.Add(&ns)
		s.namespaces = []string{namespace}
	} else {
		var list corev1.NamespaceList
		if err := c.List(ctx, &list); err != nil {
			return nil, fmt.Errorf("listing namespaces: %w", err)
		}
		for i := range list.Items {
			s.memory.Add(&list.Items[i])
			s.namespaces = append(s.namespaces, list.Items[i].Name)
		}
	}
	slices.Sort(s.namespaces)

	var deployments appsv1.DeploymentList
	var statefulSets appsv1.StatefulSetList
	var hpas autoscalingv2.HorizontalPodAutoscalerList
	var claims corev1.PersistentVolumeClaimList
	var services corev1.ServiceList
	for _, l := range []struct {
		list client.ObjectList
		what string
	}{
		{&deployments, "deployments"}, {&statefulSets, "statefulsets"}, {&hpas, "horizontalpodautoscalers"},
		{&claims, "persistentvolumeclaims"}, {&services, "services"},
	} {
		if err := c.List(ctx, l.list, opts...); err != nil {
			return nil, fmt.Errorf("listing %s: %w", l.what, err)
		}
	}
	for i := range deployments.Items {
		s.add(&deployments.Items[i])
	}
	for i := range statefulSets.Items {
		s.add(&statefulSets.Items[i])
	}
	for i := range hpas.Items {
		s.objects[hpas.Items[i].Namespace] = append(s.objects[hpas.Items[i].Namespace], &hpas.Items[i])
	}
	for i := range claims.Items {
		s.memory.Add(&claims.Items[i])
	}
	for i := range services.Items {
		s.memory.Add(&services.Items[i])
	}
	return s, nil
}

func (s *Snapshot) add(obj client.Object) {
	s.memory.Add(obj)
	s.objects[obj.GetNamespace()] = append(s.objects[obj.GetNamespace()], obj)
}

// Lookup answers the engine from the snapshot.
func (s *Snapshot) Lookup() lookup.Lookup { return s.memory }

// Namespaces lists the namespaces read, sorted.
func (s *Snapshot) Namespaces() []string { return s.namespaces }

// Objects implements Source.
func (s *Snapshot) Objects(_ context.Context, namespace string) ([]client.Object, error) {
	return s.objects[namespace], nil
}
