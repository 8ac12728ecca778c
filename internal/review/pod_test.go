package review

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gomodules.xyz/jsonpatch/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/statekeeper/statekeeper/internal/lookup"
	"github.com/statekeeper/statekeeper/internal/policy"
)

const redisUID types.UID = "5f0c8d2e-7a41-4b9e-8c3d-1e2f3a4b5c6d"

var podsResource = Resource{Version: "v1", Resource: "pods"}

// podCluster is testCluster with a stateful-multi "redis" of two replicas
// and a known uid stored in every namespace the tests create pods in.
func podCluster() *lookup.Memory {
	m := testCluster()
	for _, ns := range []string{"shop", "relaxed", "quiet", "typo", "kube-system"} {
		redis := inNamespace(statefulSet("redis", "stateful-multi", 2), ns)
		redis.UID = redisUID
		m.Add(redis)
	}
	return m
}

// statefulPod is pod <owner>-<ordinal> of StatefulSet owner, as the
// StatefulSet controller creates it.
func statefulPod(namespace, owner string, uid types.UID, ordinal string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: owner + "-" + ordinal,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "StatefulSet", Name: owner, UID: uid,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "redis"}}},
	}
}

func podRequest(t *testing.T, op policy.Operation, pod *corev1.Pod) Request {
	return Request{Operation: op, Resource: podsResource, Namespace: pod.Namespace, Name: pod.Name, Object: raw(t, pod)}
}

func TestStampPodOutcomes(t *testing.T) {
	notController := statefulPod("shop", "redis", redisUID, "1")
	notController.OwnerReferences[0].Controller = nil
	ownedByReplicaSet := statefulPod("shop", "redis", redisUID, "1")
	ownedByReplicaSet.OwnerReferences[0].Kind = "ReplicaSet"
	noOwner := statefulPod("shop", "redis", "", "1")
	noOwner.OwnerReferences = nil

	tests := []struct {
		name string
		req  Request
		want outcome
	}{
		{
			name: "a pod of a stateful-multi StatefulSet is stamped",
			req:  podRequest(t, policy.OpCreate, statefulPod("shop", "redis", redisUID, "1")),
			want: outcome{Mode: policy.ModeEnforce, Name: "redis-1", Patched: true},
		},
		{
			name: "warn mode stamps too",
			req:  podRequest(t, policy.OpCreate, statefulPod("relaxed", "redis", redisUID, "1")),
			want: outcome{Mode: policy.ModeWarn, Name: "redis-1", Patched: true},
		},
		{
			name: "an invalid mode label stamps, and no one reads a warning on a controller's pod",
			req:  podRequest(t, policy.OpCreate, statefulPod("typo", "redis", redisUID, "1")),
			want: outcome{Mode: policy.ModeEnforce, Name: "redis-1", Patched: true},
		},
		{
			name: "a controller reference without a uid is matched by name (check's manifests)",
			req:  podRequest(t, policy.OpCreate, statefulPod("shop", "redis", "", "0")),
			want: outcome{Mode: policy.ModeEnforce, Name: "redis-0", Patched: true},
		},
		{
			name: "a stateful-single owner",
			req:  podRequest(t, policy.OpCreate, statefulPod("shop", "single-db", "", "0")),
			want: outcome{Mode: policy.ModeEnforce, Name: "single-db-0", Patched: true},
		},
		{
			name: "off namespaces are skipped",
			req:  podRequest(t, policy.OpCreate, statefulPod("quiet", "redis", redisUID, "1")),
			want: outcome{Skipped: true, Mode: policy.ModeOff, Name: "redis-1"},
		},
		{
			name: "excluded namespaces are skipped",
			req:  podRequest(t, policy.OpCreate, statefulPod("kube-system", "redis", redisUID, "1")),
			want: outcome{Skipped: true, Name: "redis-1"},
		},
		{
			name: "updates are untouched",
			req:  podRequest(t, policy.OpUpdate, statefulPod("shop", "redis", redisUID, "1")),
			want: outcome{Skipped: true, Name: "redis-1", Reason: reasonNotCreate},
		},
		{
			name: "a pod without owner",
			req:  podRequest(t, policy.OpCreate, noOwner),
			want: outcome{Skipped: true, Name: "redis-1", Reason: reasonNoOwner},
		},
		{
			name: "an owner reference that is not the controller",
			req:  podRequest(t, policy.OpCreate, notController),
			want: outcome{Skipped: true, Name: "redis-1", Reason: reasonNoOwner},
		},
		{
			name: "a controller that is not a StatefulSet",
			req:  podRequest(t, policy.OpCreate, ownedByReplicaSet),
			want: outcome{Skipped: true, Name: "redis-1", Reason: reasonNoOwner},
		},
		{
			name: "an unlabelled owner",
			req:  podRequest(t, policy.OpCreate, statefulPod("shop", "unmanaged", "", "0")),
			want: outcome{Skipped: true, Mode: policy.ModeEnforce, Name: "unmanaged-0", Reason: reasonOwnerUnmanaged},
		},
		{
			name: "an owner the lookup does not hold fails open",
			req:  podRequest(t, policy.OpCreate, statefulPod("shop", "fresh", "", "0")),
			want: outcome{Skipped: true, Mode: policy.ModeEnforce, Name: "fresh-0", Reason: reasonOwnerNotFound},
		},
		{
			name: "an owner known only as an earlier incarnation fails open",
			req:  podRequest(t, policy.OpCreate, statefulPod("shop", "redis", "another-uid", "1")),
			want: outcome{Skipped: true, Mode: policy.ModeEnforce, Name: "redis-1", Reason: reasonOwnerIncarnated},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := decideAlike(t, podCluster(), "", tt.req, (*Engine).StampPod)
			require.NoError(t, err)
			assert.Equal(t, tt.want, outcomeOf(d))
		})
	}
}

// TestStampPodIdentity: the namespace the API server leaves out of the
// object comes from the request, and the cluster domain from the settings.
func TestStampPodIdentity(t *testing.T) {
	pod := statefulPod("", "redis", redisUID, "1")
	pod.Annotations = map[string]string{"team": "cache"}
	engine := New(podCluster(), Settings{ClusterDomain: "corp.example"})
	d, err := engine.StampPod(context.Background(), Request{
		Operation: policy.OpCreate, Resource: podsResource, Namespace: "shop", Name: "redis-1", Object: raw(t, pod),
	})
	require.NoError(t, err)
	const suffix = ".redis-headless.shop.svc.corp.example"
	assert.Equal(t, Decision{
		Mode: policy.ModeEnforce, Name: "redis-1",
		Patch: []jsonpatch.Operation{
			{Operation: "add", Path: "/metadata/annotations/statekeeper.io~1ordinal", Value: "1"},
			{Operation: "add", Path: "/metadata/annotations/statekeeper.io~1hostname", Value: "redis-1"},
			{Operation: "add", Path: "/metadata/annotations/statekeeper.io~1service", Value: "redis-headless"},
			{Operation: "add", Path: "/metadata/annotations/statekeeper.io~1fqdn", Value: "redis-1" + suffix},
			{Operation: "add", Path: "/metadata/annotations/statekeeper.io~1primary-fqdn", Value: "redis-0" + suffix},
			{Operation: "add", Path: "/metadata/annotations/statekeeper.io~1peers", Value: "redis-0" + suffix + ",redis-1" + suffix},
			{Operation: "add", Path: "/metadata/annotations/statekeeper.io~1peers-replicas", Value: "2"},
		},
	}, d)
}

func TestStampPodErrors(t *testing.T) {
	engine := newEngine(podCluster(), "")
	ctx := context.Background()
	tests := []struct {
		name string
		req  Request
		want string
	}{
		{
			name: "a pod of a stateful StatefulSet without an ordinal",
			req:  podRequest(t, policy.OpCreate, statefulPod("shop", "redis", redisUID, "x")),
			want: `invalid admission request: pod "redis-x" has no ordinal: neither a valid apps.kubernetes.io/pod-index label ` +
				`nor a name of the form "redis-<ordinal>"`,
		},
		{
			name: "a workload on the pod entry point",
			req:  Request{Operation: policy.OpCreate, Resource: statefulSetsResource, Namespace: "shop", Object: raw(t, statefulSet("db", "stateful-multi", 1))},
			want: "invalid admission request: statefulsets.apps is not stamped by statekeeper",
		},
		{
			name: "another kind's body",
			req:  Request{Operation: policy.OpCreate, Resource: podsResource, Namespace: "shop", Object: raw(t, statefulSet("db", "stateful-multi", 1))},
			want: `invalid admission request: expected a Pod object, got kind "StatefulSet"`,
		},
		{
			name: "a decoded object of another type",
			req:  Request{Operation: policy.OpCreate, Resource: podsResource, Namespace: "shop", DecodedObject: statefulSet("db", "stateful-multi", 1)},
			want: "invalid admission request: expected a Pod object, got *v1.StatefulSet",
		},
		{
			name: "no object",
			req:  Request{Operation: policy.OpCreate, Resource: podsResource, Namespace: "shop"},
			want: "invalid admission request: the request carries no Pod object",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := engine.StampPod(ctx, tt.req)
			assert.EqualError(t, err, tt.want)
			assert.ErrorIs(t, err, ErrInvalidRequest)
		})
	}
}

// ownerLookupDown reads namespaces but not StatefulSets.
type ownerLookupDown struct{ *lookup.Memory }

func (ownerLookupDown) StatefulSet(context.Context, string, string, types.UID) (*appsv1.StatefulSet, error) {
	return nil, errCacheDown
}

func TestStampPodLookupErrorsAreReturned(t *testing.T) {
	_, err := newEngine(ownerLookupDown{podCluster()}, "").StampPod(context.Background(),
		podRequest(t, policy.OpCreate, statefulPod("shop", "redis", redisUID, "1")))
	assert.EqualError(t, err, `looking up statefulset "redis", the owner of pod "redis-1": cache not synced`)
	assert.NotErrorIs(t, err, ErrInvalidRequest, "the webhook answers 500 and the API server applies the failure policy")
}

// TestStampPodUnderClusterIPService: a StatefulSet whose serviceName is a
// ClusterIP Service of the user's (a single-instance chart's) gets only the
// identity that is true, read from the cached Service; with inject-env, no
// variable naming DNS names either.
func TestStampPodUnderClusterIPService(t *testing.T) {
	cluster := podCluster()
	db := inNamespace(statefulSet("db", "stateful-single", 1), "shop")
	db.UID, db.Spec.ServiceName = "uid-db", "db"
	db.Annotations = map[string]string{policy.AnnotationInjectEnv: "true"}
	cluster.Add(db)
	cluster.Add(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.20", Selector: map[string]string{"app": "db"}}})

	d, err := decideAlike(t, cluster, "", podRequest(t, policy.OpCreate, statefulPod("shop", "db", "uid-db", "0")), (*Engine).StampPod)
	require.NoError(t, err)
	assert.Equal(t, Decision{
		Mode: policy.ModeEnforce, Name: "db-0",
		Patch: []jsonpatch.Operation{
			{Operation: "add", Path: "/metadata/annotations", Value: map[string]string{
				policy.AnnotationOrdinal: "0", policy.AnnotationHostname: "db-0", policy.AnnotationService: "db"}},
			{Operation: "add", Path: "/spec/containers/0/env", Value: []corev1.EnvVar{
				{Name: policy.EnvOrdinal, Value: "0"}, {Name: policy.EnvService, Value: "db"}}},
		},
	}, d)
}

// serviceLookupDown reads everything but Services.
type serviceLookupDown struct{ *lookup.Memory }

func (serviceLookupDown) Service(context.Context, string, string) (*corev1.Service, error) {
	return nil, errCacheDown
}

func TestStampPodServiceLookupErrorsAreReturned(t *testing.T) {
	_, err := newEngine(serviceLookupDown{podCluster()}, "").StampPod(context.Background(),
		podRequest(t, policy.OpCreate, statefulPod("shop", "redis", redisUID, "1")))
	assert.EqualError(t, err, `looking up service "redis-headless" of statefulset "redis": cache not synced`)
}
