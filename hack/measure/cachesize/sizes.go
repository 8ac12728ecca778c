package main

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/lookup"
	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/internal/reconciler"
)

// kindSize is what the objects of one kind weigh, all in bytes: as the API
// server serves them (JSON), and decoded into Go values in this process's
// heap, which is the form an informer cache holds. Both are measured with
// and without what the cache transform drops (managedFields; of the
// workloads most of the pod template).
type kindSize struct {
	Kind    string
	Objects int
	// JSON is the objects without managedFields; ManagedFieldsJSON is their
	// managedFields[*].fieldsV1, in ManagedFieldsEntries entries.
	JSON, ManagedFieldsJSON, ManagedFieldsEntries int
	// Decoded is the heap the decoded objects keep after the cache's
	// transform, DecodedWithManagedFields as served (managedFields included).
	Decoded, DecodedWithManagedFields int
}

func (s kindSize) perObject(total int) float64 {
	if s.Objects == 0 {
		return 0
	}
	return float64(total) / float64(s.Objects)
}

// listed is a list request and the Go type of its answer.
type listed struct {
	kind    string
	request *rest.Request
	newList func() kruntime.Object
}

// measureKinds weighs the Deployments, StatefulSets, managed Services and
// disruption budgets and,
// with withPods, the pods' metadata (all the pod cache holds) in namespace,
// and the Events the reconciler recorded there.
func measureKinds(ctx context.Context, kube kubernetes.Interface, namespace string, withPods bool) (cached []kindSize, events kindSize, err error) {
	managed := labels.Set{policy.LabelManagedBy: policy.ManagerName}.String()
	kinds := []listed{
		{"Deployment", kube.AppsV1().RESTClient().Get().Namespace(namespace).Resource("deployments"),
			func() kruntime.Object { return &appsv1.DeploymentList{} }},
		{"StatefulSet", kube.AppsV1().RESTClient().Get().Namespace(namespace).Resource("statefulsets"),
			func() kruntime.Object { return &appsv1.StatefulSetList{} }},
		{"Service", kube.CoreV1().RESTClient().Get().Namespace(namespace).Resource("services").Param("labelSelector", managed),
			func() kruntime.Object { return &corev1.ServiceList{} }},
		{"PodDisruptionBudget", kube.PolicyV1().RESTClient().Get().Namespace(namespace).Resource("poddisruptionbudgets").Param("labelSelector", managed),
			func() kruntime.Object { return &policyv1.PodDisruptionBudgetList{} }},
	}
	if withPods {
		kinds = append(kinds, listed{"Pod (metadata)", kube.CoreV1().RESTClient().Get().Namespace(namespace).Resource("pods").
			SetHeader("Accept", "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"),
			func() kruntime.Object { return &metav1.PartialObjectMetadataList{} }})
	}
	kinds = append(kinds,
		listed{"Event", kube.EventsV1().RESTClient().Get().Namespace(namespace).Resource("events").
			Param("fieldSelector", "reportingController="+reconciler.EventSource),
			func() kruntime.Object { return &eventsv1.EventList{} }})
	for _, k := range kinds {
		size, err := measureKind(ctx, k)
		if err != nil {
			return nil, kindSize{}, fmt.Errorf("measuring %ss: %w", k.kind, err)
		}
		cached = append(cached, size)
	}
	last := len(cached) - 1
	return cached[:last], cached[last], nil
}

func measureKind(ctx context.Context, k listed) (kindSize, error) {
	raw, err := k.request.DoRaw(ctx)
	if err != nil {
		return kindSize{}, err
	}
	decode := func() (kruntime.Object, error) {
		list := k.newList()
		return list, json.Unmarshal(raw, list)
	}
	size := kindSize{Kind: k.kind}

	// The heap first: a list decoded for the JSON sizes below and dead by
	// then could be collected in the middle of a measurement. One decode
	// before, for encoding/json's per-type caches, which live forever.
	if _, err := decode(); err != nil {
		return kindSize{}, err
	}
	if size.DecodedWithManagedFields, err = retainedBytes(decode); err != nil {
		return kindSize{}, err
	}
	size.Decoded, err = retainedBytes(func() (kruntime.Object, error) {
		list, err := decode()
		if err != nil {
			return nil, err
		}
		return list, asCached(list)
	})
	if err != nil {
		return kindSize{}, err
	}

	list, err := decode()
	if err != nil {
		return kindSize{}, err
	}
	err = meta.EachListItem(list, func(obj kruntime.Object) error {
		m, err := meta.Accessor(obj)
		if err != nil {
			return err
		}
		size.Objects++
		managed := m.GetManagedFields()
		size.ManagedFieldsEntries += len(managed)
		for _, e := range managed {
			if e.FieldsV1 != nil {
				size.ManagedFieldsJSON += len(e.FieldsV1.Raw)
			}
		}
		m.SetManagedFields(nil)
		b, err := json.Marshal(obj)
		size.JSON += len(b)
		return err
	})
	return size, err
}

// asCached replaces each item of list with what the informer cache keeps of
// it: the cache's own transform, the items sharing equal values as the
// cache's objects do (lookup.Transformer). Pods arrive as
// PartialObjectMetadata, which the cache knows as pods.
func asCached(list kruntime.Object) error {
	cache := lookup.NewTransformer()
	return meta.EachListItem(list, func(obj kruntime.Object) error {
		o, ok := obj.(client.Object)
		if !ok {
			return fmt.Errorf("%T is not an object", obj)
		}
		if _, ok := o.(*metav1.PartialObjectMetadata); ok {
			o.GetObjectKind().SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Pod"))
		}
		reflect.ValueOf(o).Elem().Set(reflect.ValueOf(cache.AsCached(o)).Elem())
		return nil
	})
}

// retainedBytes is the heap that what build returns keeps alive: the live
// heap after a GC, less the live heap before. Garbage made while building
// (the dropped managedFields) is collected in between, so it is not counted.
func retainedBytes(build func() (kruntime.Object, error)) (int, error) {
	var before, after runtime.MemStats
	collect()
	runtime.ReadMemStats(&before)
	obj, err := build()
	collect()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(obj)
	return int(after.HeapAlloc) - int(before.HeapAlloc), err
}

// collect leaves only live objects on the heap: what sync.Pools (encoding/json's
// among them) hold survives one GC as a victim and goes in the second.
func collect() {
	runtime.GC()
	runtime.GC()
}

// lastAppliedBytes is about what client-side `kubectl apply` would keep of
// obj in the kubectl.kubernetes.io/last-applied-configuration annotation:
// the manifest, as JSON. The cache transform keeps that annotation.
func lastAppliedBytes(obj kruntime.Object, gvk schema.GroupVersionKind) (int, error) {
	obj = obj.DeepCopyObject()
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	b, err := json.Marshal(obj)
	return len(b), err
}
