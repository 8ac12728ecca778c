package lookup

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// What one cached object costs, the fast loop for docs/performance.md's
// "What the caches cost": objects shaped as the API server serves those of
// `make measure-cache-scale` (hack/measure/cachesize) are decoded one by one,
// as a watch delivers them, passed through the cache's transform and added
// to a client-go indexer with the indexes controller-runtime's informer
// keeps (namespace, and IndexFields' field indexes, both spellings of each
// value). What stays reachable after a GC, per object, is reported as B/obj:
//
//	go test ./internal/lookup -run '^$' -bench CachedBytes -benchtime 1x
//
// Each kind is measured with the cache's transform (all), without the
// interner (unshared), and with only managedFields and last-applied dropped
// instead of the kind's own trim (untrimmed): what each transform saves.
// The objects are distinct decodes, so that nothing is shared that the
// informer would not share.
func BenchmarkCachedBytes(b *testing.B) {
	for _, tc := range []struct {
		name   string
		n      int
		served func(i int) []byte
		newObj func() client.Object
		fields map[string]client.IndexerFunc
	}{
		{"Deployment", 4000, servedDeployment, func() client.Object { return &appsv1.Deployment{} }, map[string]client.IndexerFunc{ComponentIndex: componentOf}},
		{"Deployment-own-image", 4000, servedDeploymentOwnImage, func() client.Object { return &appsv1.Deployment{} }, map[string]client.IndexerFunc{ComponentIndex: componentOf}},
		{"StatefulSet", 2000, servedStatefulSet, func() client.Object { return &appsv1.StatefulSet{} }, map[string]client.IndexerFunc{ComponentIndex: componentOf}},
		{"Pod", benchPods, servedPod, func() client.Object { return podMetadata() }, nil},
	} {
		served := make([][]byte, tc.n)
		for i := range served {
			served[i] = tc.served(i)
		}
		own := ownTransform(tc.newObj())
		for _, v := range []struct {
			name      string
			transform func() toolscache.TransformFunc
		}{
			{"all", func() toolscache.TransformFunc { return cacheTransform(tc.newObj()) }},
			{"unshared", func() toolscache.TransformFunc { return own }},
			{"untrimmed", func() toolscache.TransformFunc { return newInterner().sharing(stripUnread) }},
		} {
			b.Run(tc.name+"/"+v.name, func(b *testing.B) {
				for range b.N {
					transform := v.transform()
					store := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, indexers(tc.fields))
					retained := retainedBytes(func() {
						for _, raw := range served {
							obj := tc.newObj()
							if err := json.Unmarshal(raw, obj); err != nil {
								b.Fatal(err)
							}
							cached, err := transform(obj)
							if err != nil {
								b.Fatal(err)
							}
							if err := store.Add(cached); err != nil {
								b.Fatal(err)
							}
						}
					})
					runtime.KeepAlive(store)
					b.ReportMetric(float64(retained)/float64(tc.n), "B/obj")
				}
			})
		}
	}
}

// ownTransform is the transform of obj's kind without the interner.
func ownTransform(obj client.Object) toolscache.TransformFunc {
	for _, t := range transforms {
		if reflect.TypeOf(t.obj()) == reflect.TypeOf(obj) && sameKind(t.obj(), obj) {
			return t.transform
		}
	}
	return stripUnread
}

// indexers are those controller-runtime's informer keeps: the namespace
// index, and each field index with a namespaced and an all-namespaces value
// (its indexByField).
func indexers(fields map[string]client.IndexerFunc) toolscache.Indexers {
	out := toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc}
	for field, extract := range fields {
		out["field:"+field] = func(obj any) ([]string, error) {
			o := obj.(client.Object)
			var vals []string
			for _, v := range extract(o) {
				vals = append(vals, o.GetNamespace()+"/"+v, "__all_namespaces/"+v)
			}
			return vals, nil
		}
	}
	return out
}

// retainedBytes is the heap that build leaves reachable.
func retainedBytes(build func()) int {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	build()
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return int(after.HeapAlloc) - int(before.HeapAlloc)
}

// benchNamespace is the namespace the measurement tool creates its objects in.
const benchNamespace = "cachesize-1733040000"

// managedFieldsJSON is about what a client's apply and the controller's
// status writes leave in managedFields (dropped by every transform).
const managedFieldsJSON = `[{"manager":"cachesize","operation":"Update","apiVersion":"apps/v1","time":"2026-12-01T07:12:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{".":{},"f:app.kubernetes.io/name":{},"f:app.kubernetes.io/part-of":{}}},"f:spec":{"f:progressDeadlineSeconds":{},"f:replicas":{},"f:revisionHistoryLimit":{},"f:selector":{},"f:strategy":{"f:rollingUpdate":{".":{},"f:maxSurge":{},"f:maxUnavailable":{}},"f:type":{}},"f:template":{"f:metadata":{"f:labels":{".":{},"f:app.kubernetes.io/name":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{".":{},"f:env":{".":{},"k:{\"name\":\"LOG_LEVEL\"}":{".":{},"f:name":{},"f:value":{}}},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:ports":{".":{},"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:name":{},"f:protocol":{}}},"f:readinessProbe":{},"f:resources":{},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{},"f:volumeMounts":{}}},"f:dnsPolicy":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},"f:terminationGracePeriodSeconds":{},"f:volumes":{}}}}}},{"manager":"kube-controller-manager","operation":"Update","apiVersion":"apps/v1","time":"2026-12-01T07:12:01Z","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:annotations":{".":{},"f:deployment.kubernetes.io/revision":{}}},"f:status":{"f:conditions":{},"f:observedGeneration":{}}},"subresource":"status"}]`

func uid(kind, i int) string { return fmt.Sprintf("6f1c%04x-%04x-4a7e-9c1d-%012x", kind, i%0xffff, i) }

// servedDeployment is hack/measure/cachesize's Deployment number i as the
// API server serves it after the deployment controller's first sync:
// defaults filled in, the revision annotation, status conditions.
func servedDeployment(i int) []byte {
	name := fmt.Sprintf("web-%05d", i)
	return fmt.Appendf(nil, `{"metadata":{"name":%[1]q,"namespace":%[2]q,"uid":%[3]q,"resourceVersion":"%[4]d","generation":1,"creationTimestamp":"2026-12-01T07:12:00Z",
"labels":{"app.kubernetes.io/name":%[1]q,"app.kubernetes.io/part-of":"cachesize"},"annotations":{"deployment.kubernetes.io/revision":"1"},"managedFields":%[5]s},
"spec":{"replicas":0,"selector":{"matchLabels":{"app.kubernetes.io/name":%[1]q}},
"template":{"metadata":{"labels":{"app.kubernetes.io/name":%[1]q}},"spec":{"volumes":[{"name":"tmp","emptyDir":{}}],
"containers":[{"name":"web","image":"registry.example/web:3.1.4","ports":[{"name":"http","containerPort":8080,"protocol":"TCP"},{"name":"metrics","containerPort":9090,"protocol":"TCP"}],
"env":[{"name":"LOG_LEVEL","value":"info"},{"name":"TZ","value":"UTC"},{"name":"MAX_CONNECTIONS","value":"200"},{"name":"POD_NAME","valueFrom":{"fieldRef":{"apiVersion":"v1","fieldPath":"metadata.name"}}}],
"resources":{"limits":{"memory":"512Mi"},"requests":{"cpu":"100m","memory":"256Mi"}},"volumeMounts":[{"name":"tmp","mountPath":"/tmp"}],
"readinessProbe":{"tcpSocket":{"port":"http"},"timeoutSeconds":1,"periodSeconds":10,"successThreshold":1,"failureThreshold":3},
"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],
"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"statekeeper-measure-unscheduled"}},
"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%%","maxSurge":"25%%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600},
"status":{"observedGeneration":1,"conditions":[{"type":"Available","status":"True","lastUpdateTime":"2026-12-01T07:12:01Z","lastTransitionTime":"2026-12-01T07:12:01Z","reason":"MinimumReplicasAvailable","message":"Deployment has minimum availability."},
{"type":"Progressing","status":"True","lastUpdateTime":"2026-12-01T07:12:01Z","lastTransitionTime":"2026-12-01T07:12:01Z","reason":"NewReplicaSetAvailable","message":"ReplicaSet \"%[1]s-5d8f9c7b6d\" has successfully progressed."}]}}`,
		name, benchNamespace, uid(1, i), 100000+i, managedFieldsJSON)
}

// servedDeploymentOwnImage is servedDeployment with an image of its own, as
// the Deployments of a real cluster have: their containers are not equal
// until trimmed.
func servedDeploymentOwnImage(i int) []byte {
	return bytes.Replace(servedDeployment(i), []byte("registry.example/web:3.1.4"), fmt.Appendf(nil, "registry.example/web-%05d:3.1.4", i), 1)
}

// servedStatefulSet is hack/measure/cachesize's stateful-multi StatefulSet
// number i as served.
func servedStatefulSet(i int) []byte {
	name := fmt.Sprintf("db-%05d", i)
	return fmt.Appendf(nil, `{"metadata":{"name":%[1]q,"namespace":%[2]q,"uid":%[3]q,"resourceVersion":"%[4]d","generation":1,"creationTimestamp":"2026-12-01T07:11:00Z",
"labels":{"app.kubernetes.io/name":%[1]q,"app.kubernetes.io/part-of":"cachesize","statekeeper.io/deploy-type":"stateful-multi"},"managedFields":%[5]s},
"spec":{"replicas":0,"selector":{"matchLabels":{"app.kubernetes.io/name":%[1]q}},"serviceName":"%[1]s-headless",
"template":{"metadata":{"labels":{"app.kubernetes.io/name":%[1]q,"statekeeper.io/deploy-type":"stateful-multi"}},"spec":{
"containers":[{"name":"db","image":"registry.example/postgres:17.2","ports":[{"name":"postgres","containerPort":5432,"protocol":"TCP"},{"name":"metrics","containerPort":9187,"protocol":"TCP"}],
"env":[{"name":"LOG_LEVEL","value":"info"},{"name":"TZ","value":"UTC"},{"name":"MAX_CONNECTIONS","value":"200"},{"name":"POD_NAME","valueFrom":{"fieldRef":{"apiVersion":"v1","fieldPath":"metadata.name"}}}],
"resources":{"limits":{"memory":"512Mi"},"requests":{"cpu":"100m","memory":"256Mi"}},"volumeMounts":[{"name":"data","mountPath":"/var/lib/postgresql/data"}],
"readinessProbe":{"tcpSocket":{"port":"postgres"},"timeoutSeconds":1,"periodSeconds":10,"successThreshold":1,"failureThreshold":3},
"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],
"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler"}},
"volumeClaimTemplates":[{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"data"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"10Gi"}},"volumeMode":"Filesystem"},"status":{"phase":"Pending"}}],
"podManagementPolicy":"OrderedReady","updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":0}},"revisionHistoryLimit":10,
"persistentVolumeClaimRetentionPolicy":{"whenDeleted":"Retain","whenScaled":"Retain"}},
"status":{"observedGeneration":1,"replicas":0,"currentRevision":"%[1]s-6c5b8d7f9c","updateRevision":"%[1]s-6c5b8d7f9c","collisionCount":0,"availableReplicas":0}}`,
		name, benchNamespace, uid(2, i), 50000+i, managedFieldsJSON)
}

// benchPods and podOwners are about the scale run's 5.5 pods per
// Deployment (50,000 pods of 9,000 Deployments), with more owners than the
// interner's bounded tables hold.
const benchPods, podOwners = 22000, 4000

// servedPod is the metadata of the scale run's pod number i, as the
// metadata informer receives it: a ReplicaSet's pod (the tool's own, with
// the same labels and names). As in the scale run, consecutive pods belong
// to different Deployments, which is also the order in which pods' status
// updates arrive.
func servedPod(i int) []byte {
	d := i % podOwners
	owner := fmt.Sprintf("web-%05d", d)
	hash := fmt.Sprintf("x%09x", d*2654435761%(1<<32))[:10]
	return fmt.Appendf(nil, `{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{"name":"%[1]s-%[2]s-%05[3]d","generateName":"%[1]s-%[2]s-",
"namespace":%[4]q,"uid":%[5]q,"resourceVersion":"%[6]d","creationTimestamp":"2026-12-01T07:20:00Z",
"labels":{"app.kubernetes.io/name":%[1]q,"pod-template-hash":%[2]q},
"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"%[1]s-%[2]s","uid":%[7]q,"controller":true,"blockOwnerDeletion":true}],
"managedFields":[{"manager":"kube-controller-manager","operation":"Update","apiVersion":"v1","time":"2026-12-01T07:20:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:generateName":{},"f:labels":{".":{},"f:app.kubernetes.io/name":{},"f:pod-template-hash":{}},"f:ownerReferences":{}}}}]}}`,
		owner, hash, i, benchNamespace, uid(3, i), 200000+i, uid(4, d))
}

// cacheTransform is the cache's transform of obj's kind.
func cacheTransform(obj client.Object) toolscache.TransformFunc {
	opts := CacheOptions()
	for o, by := range opts.ByObject {
		if reflect.TypeOf(o) == reflect.TypeOf(obj) && sameKind(o, obj) {
			return by.Transform
		}
	}
	return opts.DefaultTransform
}

// BenchmarkTransform is the time the cache's transform takes per object,
// decoding excluded: the informer calls it on every watch event.
func BenchmarkTransform(b *testing.B) {
	for _, tc := range []struct {
		name   string
		served []byte
		newObj func() client.Object
	}{
		{"Deployment", servedDeployment(1), func() client.Object { return &appsv1.Deployment{} }},
		{"StatefulSet", servedStatefulSet(1), func() client.Object { return &appsv1.StatefulSet{} }},
		{"Pod", servedPod(1), func() client.Object { return podMetadata() }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			transform := cacheTransform(tc.newObj())
			b.ReportAllocs()
			for range b.N {
				b.StopTimer()
				obj := tc.newObj()
				if err := json.Unmarshal(tc.served, obj); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := transform(obj); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
