package policy

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	jsonpatchv5 "github.com/evanphx/json-patch/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gomodules.xyz/jsonpatch/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
)

func identitySTS(name string, replicas *int32, start *int32, service string) *appsv1.StatefulSet {
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"},
		Spec:       appsv1.StatefulSetSpec{Replicas: replicas, ServiceName: service},
	}
	if start != nil {
		sts.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: *start}
	}
	return sts
}

func identityPod(name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: labels}}
}

func TestPodIdentity(t *testing.T) {
	// A 58-character StatefulSet: its pods are named up to 63 characters and
	// "<name>-headless" is too long, so the Service name is hashed.
	longName := strings.Repeat("a", 50) + "-cluster"
	const longService = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-42e18e11-headless"
	longSuffix := "." + longService + ".shop.svc.cluster.local"

	tests := []struct {
		name          string
		pod           *corev1.Pod
		owner         *appsv1.StatefulSet
		clusterDomain string
		want          Identity
	}{
		{
			name:          "spec example: ordinal from the name, start 0",
			pod:           identityPod("db-1", nil),
			owner:         identitySTS("db", ptr.To[int32](2), nil, "db-headless"),
			clusterDomain: "cluster.local",
			want: Identity{
				Replicas: 2,
				Ordinal:  1, Hostname: "db-1", Service: "db-headless",
				FQDN:        "db-1.db-headless.shop.svc.cluster.local",
				PrimaryFQDN: "db-0.db-headless.shop.svc.cluster.local",
				Peers:       []string{"db-0.db-headless.shop.svc.cluster.local", "db-1.db-headless.shop.svc.cluster.local"},
			},
		},
		{
			name:          "ordinals.start moves the primary and the peers",
			pod:           identityPod("db-6", nil),
			owner:         identitySTS("db", ptr.To[int32](3), ptr.To[int32](5), "db-headless"),
			clusterDomain: "cluster.local",
			want: Identity{
				Replicas: 3,
				Ordinal:  6, Hostname: "db-6", Service: "db-headless",
				FQDN:        "db-6.db-headless.shop.svc.cluster.local",
				PrimaryFQDN: "db-5.db-headless.shop.svc.cluster.local",
				Peers: []string{
					"db-5.db-headless.shop.svc.cluster.local",
					"db-6.db-headless.shop.svc.cluster.local",
					"db-7.db-headless.shop.svc.cluster.local",
				},
			},
		},
		{
			name:          "pod-index label is preferred to the name",
			pod:           identityPod("db-9", map[string]string{appsv1.PodIndexLabel: "0"}),
			owner:         identitySTS("db", ptr.To[int32](1), nil, "db-headless"),
			clusterDomain: "cluster.local",
			want: Identity{
				Replicas: 1,
				Ordinal:  0, Hostname: "db-9", Service: "db-headless",
				FQDN:        "db-9.db-headless.shop.svc.cluster.local",
				PrimaryFQDN: "db-0.db-headless.shop.svc.cluster.local",
				Peers:       []string{"db-0.db-headless.shop.svc.cluster.local"},
			},
		},
		{
			name:          "an invalid pod-index label falls back to the name",
			pod:           identityPod("db-2", map[string]string{appsv1.PodIndexLabel: "-2"}),
			owner:         identitySTS("db", ptr.To[int32](3), nil, "db-headless"),
			clusterDomain: "cluster.local",
			want: Identity{
				Replicas: 3,
				Ordinal:  2, Hostname: "db-2", Service: "db-headless",
				FQDN:        "db-2.db-headless.shop.svc.cluster.local",
				PrimaryFQDN: "db-0.db-headless.shop.svc.cluster.local",
				Peers: []string{
					"db-0.db-headless.shop.svc.cluster.local",
					"db-1.db-headless.shop.svc.cluster.local",
					"db-2.db-headless.shop.svc.cluster.local",
				},
			},
		},
		{
			name:          "custom cluster domain, trailing dot dropped; nil replicas means one",
			pod:           identityPod("db-0", nil),
			owner:         identitySTS("db", nil, nil, "db-headless"),
			clusterDomain: "corp.example.",
			want: Identity{
				Replicas: 1,
				Ordinal:  0, Hostname: "db-0", Service: "db-headless",
				FQDN:        "db-0.db-headless.shop.svc.corp.example",
				PrimaryFQDN: "db-0.db-headless.shop.svc.corp.example",
				Peers:       []string{"db-0.db-headless.shop.svc.corp.example"},
			},
		},
		{
			name:  "empty cluster domain means cluster.local; empty serviceName means statekeeper's name",
			pod:   identityPod("redis-0", nil),
			owner: identitySTS("redis", ptr.To[int32](1), nil, ""),
			want: Identity{
				Replicas: 1,
				Ordinal:  0, Hostname: "redis-0", Service: "redis-headless",
				FQDN:        "redis-0.redis-headless.shop.svc.cluster.local",
				PrimaryFQDN: "redis-0.redis-headless.shop.svc.cluster.local",
				Peers:       []string{"redis-0.redis-headless.shop.svc.cluster.local"},
			},
		},
		{
			name:          "names near the 63-character limit",
			pod:           identityPod(longName+"-10", nil),
			owner:         identitySTS(longName, ptr.To[int32](2), ptr.To[int32](9), ""),
			clusterDomain: "cluster.local",
			want: Identity{
				Replicas: 2,
				Ordinal:  10, Hostname: longName + "-10", Service: longService,
				FQDN:        longName + "-10" + longSuffix,
				PrimaryFQDN: longName + "-9" + longSuffix,
				Peers:       []string{longName + "-9" + longSuffix, longName + "-10" + longSuffix},
			},
		},
		{
			name:          "zero replicas: no peers, but an empty list rather than none",
			pod:           identityPod("db-0", nil),
			owner:         identitySTS("db", ptr.To[int32](0), nil, "db-headless"),
			clusterDomain: "cluster.local",
			want: Identity{
				Replicas: 0,
				Ordinal:  0, Hostname: "db-0", Service: "db-headless",
				FQDN:        "db-0.db-headless.shop.svc.cluster.local",
				PrimaryFQDN: "db-0.db-headless.shop.svc.cluster.local",
				Peers:       []string{},
			},
		},
		{
			name:          "too many replicas for an annotation: peers left out",
			pod:           identityPod("db-0", nil),
			owner:         identitySTS("db", ptr.To[int32](math.MaxInt32), ptr.To[int32](math.MaxInt32), "db-headless"),
			clusterDomain: "cluster.local",
			want: Identity{
				Replicas: math.MaxInt32,
				Ordinal:  0, Hostname: "db-0", Service: "db-headless",
				FQDN:        "db-0.db-headless.shop.svc.cluster.local",
				PrimaryFQDN: "db-2147483647.db-headless.shop.svc.cluster.local",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PodIdentity(tt.pod, tt.owner, tt.clusterDomain)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Empty(t, validation.IsDNS1123Label(got.Hostname), "hostname")
			assert.Empty(t, validation.IsDNS1035Label(got.Service), "service")
			assert.Empty(t, validation.IsDNS1123Subdomain(got.FQDN), "fqdn")
		})
	}
}

func TestPodIdentityErrors(t *testing.T) {
	owner := identitySTS("db", ptr.To[int32](1), nil, "db-headless")
	tests := []struct {
		name  string
		pod   *corev1.Pod
		owner *appsv1.StatefulSet
		want  string
	}{
		{name: "no pod", owner: owner, want: "pod identity needs both the pod and its statefulset"},
		{name: "no owner", pod: identityPod("db-0", nil), want: "pod identity needs both the pod and its statefulset"},
		{
			name: "no name", pod: identityPod("", nil), owner: owner,
			want: "pod has no name: a statefulset pod is always named <statefulset>-<ordinal>",
		},
		{
			name: "name of another owner", pod: identityPod("web-0", nil), owner: owner,
			want: `pod "web-0" has no ordinal: neither a valid apps.kubernetes.io/pod-index label nor a name of the form "db-<ordinal>"`,
		},
		{
			name: "signed suffix", pod: identityPod("db-+1", nil), owner: owner,
			want: `pod "db-+1" has no ordinal: neither a valid apps.kubernetes.io/pod-index label nor a name of the form "db-<ordinal>"`,
		},
		{
			name: "suffix past int32", pod: identityPod("db-2147483648", nil), owner: owner,
			want: `pod "db-2147483648" has no ordinal: neither a valid apps.kubernetes.io/pod-index label nor a name of the form "db-<ordinal>"`,
		},
		{
			name: "no namespace anywhere", pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "db-0"}},
			owner: &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db"}},
			want:  `pod "db-0" has no namespace`,
		},
		{
			name: "negative ordinals.start", pod: identityPod("db-0", nil),
			owner: identitySTS("db", nil, ptr.To[int32](-1), ""),
			want:  `statefulset "db" has a negative spec.ordinals.start -1`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PodIdentity(tt.pod, tt.owner, "cluster.local")
			assert.EqualError(t, err, tt.want)
			assert.Equal(t, Identity{}, got)
		})
	}
}

func TestPodIdentityNamespaceFromOwner(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "db-0"}}
	got, err := PodIdentity(pod, identitySTS("db", nil, nil, "db-headless"), "cluster.local")
	require.NoError(t, err)
	assert.Equal(t, Identity{
		Replicas: 1,
		Ordinal:  0, Hostname: "db-0", Service: "db-headless",
		FQDN:        "db-0.db-headless.shop.svc.cluster.local",
		PrimaryFQDN: "db-0.db-headless.shop.svc.cluster.local",
		Peers:       []string{"db-0.db-headless.shop.svc.cluster.local"},
	}, got)
}

// stampIdentity is the docs/spec.md §5 example: pod db-1 of a two-replica "db".
var stampIdentity = Identity{
	Replicas: 2,
	Ordinal:  1, Hostname: "db-1", Service: "db-headless",
	FQDN:        "db-1.db-headless.shop.svc.cluster.local",
	PrimaryFQDN: "db-0.db-headless.shop.svc.cluster.local",
	Peers:       []string{"db-0.db-headless.shop.svc.cluster.local", "db-1.db-headless.shop.svc.cluster.local"},
}

const stampPeers = "db-0.db-headless.shop.svc.cluster.local,db-1.db-headless.shop.svc.cluster.local"

var stampEnv = []corev1.EnvVar{
	{Name: EnvOrdinal, Value: "1"},
	{Name: EnvFQDN, Value: "db-1.db-headless.shop.svc.cluster.local"},
	{Name: EnvPrimaryFQDN, Value: "db-0.db-headless.shop.svc.cluster.local"},
	{Name: EnvService, Value: "db-headless"},
	{Name: EnvPeers, Value: stampPeers},
}

func TestStampPod(t *testing.T) {
	allAnnotations := map[string]string{
		AnnotationOrdinal:       "1",
		AnnotationHostname:      "db-1",
		AnnotationService:       "db-headless",
		AnnotationFQDN:          "db-1.db-headless.shop.svc.cluster.local",
		AnnotationPrimaryFQDN:   "db-0.db-headless.shop.svc.cluster.local",
		AnnotationPeers:         stampPeers,
		AnnotationPeersReplicas: "2",
	}
	podWith := func(annotations map[string]string, init, containers []corev1.Container) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "db-1", Namespace: "shop", Annotations: annotations},
			Spec:       corev1.PodSpec{InitContainers: init, Containers: containers},
		}
	}
	userSet := []corev1.EnvVar{
		{Name: EnvService, Value: "mine"},
		{Name: EnvPeers, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
	}

	tests := []struct {
		name      string
		pod       *corev1.Pod
		id        Identity
		injectEnv bool
		want      []jsonpatch.Operation
	}{
		{
			name: "no annotations: the map is added whole",
			pod:  podWith(nil, nil, []corev1.Container{{Name: "db"}}),
			id:   stampIdentity,
			want: []jsonpatch.Operation{jsonpatch.NewOperation("add", "/metadata/annotations", allAnnotations)},
		},
		{
			name: "other annotations kept, a stale one replaced, keys escaped",
			pod: podWith(map[string]string{"team": "a", AnnotationOrdinal: "7", AnnotationHostname: "db-1"},
				nil, []corev1.Container{{Name: "db"}}),
			id: stampIdentity,
			want: []jsonpatch.Operation{
				jsonpatch.NewOperation("replace", "/metadata/annotations/statekeeper.io~1ordinal", "1"),
				jsonpatch.NewOperation("add", "/metadata/annotations/statekeeper.io~1service", "db-headless"),
				jsonpatch.NewOperation("add", "/metadata/annotations/statekeeper.io~1fqdn", "db-1.db-headless.shop.svc.cluster.local"),
				jsonpatch.NewOperation("add", "/metadata/annotations/statekeeper.io~1primary-fqdn", "db-0.db-headless.shop.svc.cluster.local"),
				jsonpatch.NewOperation("add", "/metadata/annotations/statekeeper.io~1peers", stampPeers),
				jsonpatch.NewOperation("add", "/metadata/annotations/statekeeper.io~1peers-replicas", "2"),
			},
		},
		{
			name: "env: added whole where absent, appended where the user set some, init containers too",
			pod: podWith(allAnnotations,
				[]corev1.Container{{Name: "init"}},
				[]corev1.Container{
					{Name: "db", Env: userSet},
					{Name: "exporter", Env: []corev1.EnvVar{}},
				}),
			id:        stampIdentity,
			injectEnv: true,
			want: []jsonpatch.Operation{
				jsonpatch.NewOperation("add", "/spec/initContainers/0/env", stampEnv),
				jsonpatch.NewOperation("add", "/spec/containers/0/env/-", stampEnv[0]),
				jsonpatch.NewOperation("add", "/spec/containers/0/env/-", stampEnv[1]),
				jsonpatch.NewOperation("add", "/spec/containers/0/env/-", stampEnv[2]),
				jsonpatch.NewOperation("add", "/spec/containers/1/env", stampEnv),
			},
		},
		{
			name: "without inject-env containers are untouched",
			pod:  podWith(allAnnotations, []corev1.Container{{Name: "init"}}, []corev1.Container{{Name: "db"}}),
			id:   stampIdentity,
		},
		{
			name: "every variable set by the user: nothing injected",
			pod: podWith(allAnnotations, nil, []corev1.Container{{Name: "db", Env: []corev1.EnvVar{
				{Name: EnvOrdinal, Value: "x"}, {Name: EnvFQDN, Value: "x"}, {Name: EnvPrimaryFQDN, Value: "x"},
				{Name: EnvService, Value: "x"}, {Name: EnvPeers, Value: "x"},
			}}}),
			id:        stampIdentity,
			injectEnv: true,
		},
		{
			name: "peers too long to stamp: no peers annotation nor variable",
			pod:  podWith(map[string]string{"team": "a"}, nil, []corev1.Container{{Name: "db"}}),
			id: Identity{
				Ordinal: 0, Hostname: "db-0", Service: "db-headless",
				FQDN: "db-0.db-headless.shop.svc.cluster.local", PrimaryFQDN: "db-0.db-headless.shop.svc.cluster.local",
				Replicas: 100000,
			},
			injectEnv: true,
			want: []jsonpatch.Operation{
				jsonpatch.NewOperation("add", "/metadata/annotations/statekeeper.io~1ordinal", "0"),
				jsonpatch.NewOperation("add", "/metadata/annotations/statekeeper.io~1hostname", "db-0"),
				jsonpatch.NewOperation("add", "/metadata/annotations/statekeeper.io~1service", "db-headless"),
				jsonpatch.NewOperation("add", "/metadata/annotations/statekeeper.io~1fqdn", "db-0.db-headless.shop.svc.cluster.local"),
				jsonpatch.NewOperation("add", "/metadata/annotations/statekeeper.io~1primary-fqdn", "db-0.db-headless.shop.svc.cluster.local"),
				jsonpatch.NewOperation("add", "/metadata/annotations/statekeeper.io~1peers-replicas", "100000"),
				jsonpatch.NewOperation("add", "/spec/containers/0/env", []corev1.EnvVar{
					{Name: EnvOrdinal, Value: "0"},
					{Name: EnvFQDN, Value: "db-0.db-headless.shop.svc.cluster.local"},
					{Name: EnvPrimaryFQDN, Value: "db-0.db-headless.shop.svc.cluster.local"},
					{Name: EnvService, Value: "db-headless"},
				}),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, StampPod(tt.pod, tt.id, tt.injectEnv))
		})
	}
}

// TestStampPodRaw applies the patch to raw pod JSON, as the API server does:
// every operation must apply, fields unknown to the Go types survive, the
// result carries the identity, and stamping the result again yields nothing.
func TestStampPodRaw(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want string
	}{
		{
			name: "no annotations, no env, an unknown field",
			raw: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"db-1","namespace":"shop"},` +
				`"spec":{"futureField":{"x":1},"containers":[{"name":"db","image":"db"}]}}`,
			want: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"db-1","namespace":"shop","annotations":{` +
				`"statekeeper.io/ordinal":"1","statekeeper.io/hostname":"db-1","statekeeper.io/service":"db-headless",` +
				`"statekeeper.io/fqdn":"db-1.db-headless.shop.svc.cluster.local",` +
				`"statekeeper.io/primary-fqdn":"db-0.db-headless.shop.svc.cluster.local",` +
				`"statekeeper.io/peers":"` + stampPeers + `","statekeeper.io/peers-replicas":"2"}},` +
				`"spec":{"futureField":{"x":1},"containers":[{"name":"db","image":"db","env":[` +
				`{"name":"STATEKEEPER_ORDINAL","value":"1"},` +
				`{"name":"STATEKEEPER_FQDN","value":"db-1.db-headless.shop.svc.cluster.local"},` +
				`{"name":"STATEKEEPER_PRIMARY_FQDN","value":"db-0.db-headless.shop.svc.cluster.local"},` +
				`{"name":"STATEKEEPER_SERVICE","value":"db-headless"},` +
				`{"name":"STATEKEEPER_PEERS","value":"` + stampPeers + `"}]}]}}`,
		},
		{
			name: "empty annotations and env, a stale ordinal, a user variable by valueFrom",
			raw: `{"metadata":{"name":"db-1","namespace":"shop","annotations":{"statekeeper.io/ordinal":"0"}},` +
				`"spec":{"initContainers":[{"name":"init","env":[]}],"containers":[{"name":"db","env":[` +
				`{"name":"STATEKEEPER_FQDN","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}}]}]}}`,
			want: `{"metadata":{"name":"db-1","namespace":"shop","annotations":{` +
				`"statekeeper.io/ordinal":"1","statekeeper.io/hostname":"db-1","statekeeper.io/service":"db-headless",` +
				`"statekeeper.io/fqdn":"db-1.db-headless.shop.svc.cluster.local",` +
				`"statekeeper.io/primary-fqdn":"db-0.db-headless.shop.svc.cluster.local",` +
				`"statekeeper.io/peers":"` + stampPeers + `","statekeeper.io/peers-replicas":"2"}},` +
				`"spec":{"initContainers":[{"name":"init","env":[` +
				`{"name":"STATEKEEPER_ORDINAL","value":"1"},` +
				`{"name":"STATEKEEPER_FQDN","value":"db-1.db-headless.shop.svc.cluster.local"},` +
				`{"name":"STATEKEEPER_PRIMARY_FQDN","value":"db-0.db-headless.shop.svc.cluster.local"},` +
				`{"name":"STATEKEEPER_SERVICE","value":"db-headless"},` +
				`{"name":"STATEKEEPER_PEERS","value":"` + stampPeers + `"}]}],` +
				`"containers":[{"name":"db","env":[` +
				`{"name":"STATEKEEPER_FQDN","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}},` +
				`{"name":"STATEKEEPER_ORDINAL","value":"1"},` +
				`{"name":"STATEKEEPER_PRIMARY_FQDN","value":"db-0.db-headless.shop.svc.cluster.local"},` +
				`{"name":"STATEKEEPER_SERVICE","value":"db-headless"},` +
				`{"name":"STATEKEEPER_PEERS","value":"` + stampPeers + `"}]}]}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			patched := applyStamp(t, []byte(tt.raw))
			assert.JSONEq(t, tt.want, string(patched))

			var again corev1.Pod
			require.NoError(t, json.Unmarshal(patched, &again))
			assert.Empty(t, StampPod(&again, stampIdentity, true), "second pass")
		})
	}
}

func applyStamp(t *testing.T, raw []byte) []byte {
	t.Helper()
	var pod corev1.Pod
	require.NoError(t, json.Unmarshal(raw, &pod))
	ops, err := json.Marshal(StampPod(&pod, stampIdentity, true))
	require.NoError(t, err)
	patch, err := jsonpatchv5.DecodePatch(ops)
	require.NoError(t, err)
	patched, err := patch.Apply(raw)
	require.NoError(t, err)
	return patched
}

func TestInjectEnvRequested(t *testing.T) {
	for value, want := range map[string]bool{"true": true, "false": false, "": false, "True": false} {
		sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{AnnotationInjectEnv: value}}}
		assert.Equal(t, want, InjectEnvRequested(sts), "value %q", value)
	}
	assert.False(t, InjectEnvRequested(&appsv1.StatefulSet{}), "no annotations")
}

func TestStatefulSetOwner(t *testing.T) {
	ref := func(apiVersion, kind, name string, controller bool) metav1.OwnerReference {
		return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: "u", Controller: ptr.To(controller)}
	}
	tests := []struct {
		name     string
		refs     []metav1.OwnerReference
		want     string
		wantOwns bool
	}{
		{name: "no owner"},
		{name: "controlled by a StatefulSet", refs: []metav1.OwnerReference{ref("apps/v1", "StatefulSet", "db", true)}, want: "db", wantOwns: true},
		{name: "a StatefulSet that is not the controller", refs: []metav1.OwnerReference{ref("apps/v1", "StatefulSet", "db", false)}},
		{name: "controlled by a ReplicaSet", refs: []metav1.OwnerReference{ref("apps/v1", "ReplicaSet", "web-1", true)}},
		{name: "a StatefulSet kind of another group", refs: []metav1.OwnerReference{ref("apps.kruise.io/v1beta1", "StatefulSet", "db", true)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "db-0", OwnerReferences: tt.refs}}
			got, ok := StatefulSetOwner(pod)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wantOwns, ok)
		})
	}
}

func TestStampStatefulPod(t *testing.T) {
	owner := func(deployType string, annotations map[string]string) *appsv1.StatefulSet {
		sts := identitySTS("db", ptr.To[int32](2), nil, "db-headless")
		sts.Labels = map[string]string{LabelDeployType: deployType}
		sts.Annotations = annotations
		return sts
	}
	pod := func() *corev1.Pod {
		p := identityPod("db-1", nil)
		p.Spec.Containers = []corev1.Container{{Name: "db"}}
		return p
	}
	annotations := jsonpatch.NewOperation("add", "/metadata/annotations", map[string]string{
		AnnotationOrdinal:       "1",
		AnnotationHostname:      "db-1",
		AnnotationService:       "db-headless",
		AnnotationFQDN:          "db-1.db-headless.shop.svc.cluster.local",
		AnnotationPrimaryFQDN:   "db-0.db-headless.shop.svc.cluster.local",
		AnnotationPeers:         stampPeers,
		AnnotationPeersReplicas: "2",
	})
	clusterIP := func(labels map[string]string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db-headless", Namespace: "shop", Labels: labels},
			Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10"}}
	}
	// Under a Service that gives no DNS names, only what is true.
	noDNSAnnotations := jsonpatch.NewOperation("add", "/metadata/annotations", map[string]string{
		AnnotationOrdinal:  "1",
		AnnotationHostname: "db-1",
		AnnotationService:  "db-headless",
	})
	tests := []struct {
		name        string
		pod         *corev1.Pod
		owner       *appsv1.StatefulSet
		svc         *corev1.Service
		want        []jsonpatch.Operation
		wantManaged bool
		wantErr     string
	}{
		{name: "stateful-multi", pod: pod(), owner: owner("stateful-multi", nil),
			want: []jsonpatch.Operation{annotations}, wantManaged: true},
		{name: "under a headless service of the user's", pod: pod(), owner: owner("stateful-multi", nil),
			svc: &corev1.Service{Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone}}, want: []jsonpatch.Operation{annotations}, wantManaged: true},
		{name: "under statekeeper's service, headless again once recreated", pod: pod(), owner: owner("stateful-multi", nil),
			svc: clusterIP(map[string]string{LabelManagedBy: ManagerName}), want: []jsonpatch.Operation{annotations}, wantManaged: true},
		{name: "under a clusterIP service of the user's: no DNS names", pod: pod(), owner: owner("stateful-single", nil),
			svc: clusterIP(nil), want: []jsonpatch.Operation{noDNSAnnotations}, wantManaged: true},
		{name: "under a clusterIP service with inject-env: no variable naming DNS names", pod: pod(),
			owner: owner("stateful-single", map[string]string{AnnotationInjectEnv: "true"}), svc: clusterIP(nil),
			want: []jsonpatch.Operation{noDNSAnnotations, jsonpatch.NewOperation("add", "/spec/containers/0/env", []corev1.EnvVar{
				{Name: EnvOrdinal, Value: "1"}, {Name: EnvService, Value: "db-headless"}})}, wantManaged: true},
		{name: "stateful-single with inject-env", pod: pod(), owner: owner("stateful-single", map[string]string{AnnotationInjectEnv: "true"}),
			want: []jsonpatch.Operation{annotations, jsonpatch.NewOperation("add", "/spec/containers/0/env", stampEnv)}, wantManaged: true},
		{name: "stateless owner is not managed", pod: pod(), owner: owner("stateless-multi", nil)},
		{name: "unknown deploy type is not managed", pod: pod(), owner: owner("stateful", nil)},
		{name: "owner without a deploy type", pod: pod(), owner: identitySTS("db", nil, nil, "")},
		{name: "no owner", pod: pod()},
		{name: "managed but without an ordinal", pod: identityPod("other-1", nil), owner: owner("stateful-multi", nil), wantManaged: true,
			wantErr: `pod "other-1" has no ordinal: neither a valid apps.kubernetes.io/pod-index label nor a name of the form "db-<ordinal>"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, managed, err := StampStatefulPod(tt.pod, tt.owner, tt.svc, "cluster.local")
			if tt.wantErr != "" {
				assert.EqualError(t, err, tt.wantErr)
			} else {
				assert.NoError(t, err)
			}
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wantManaged, managed)
		})
	}
}

// FuzzStampStatefulPod feeds crafted names, labels and counts: no panic, and
// whenever a patch comes out it applies to the raw pod and is idempotent.
func FuzzStampStatefulPod(f *testing.F) {
	f.Add("db-1", "db", "", int32(0), int32(2), "cluster.local", true)
	f.Add("db-2147483647", "db", "7", int32(2147483647), int32(2147483647), "", false)
	f.Add("", "", "-1", int32(-5), int32(-1), ".", true)
	f.Fuzz(func(t *testing.T, podName, owner, index string, start, replicas int32, domain string, injectEnv bool) {
		// Objects reach statekeeper as JSON, whose strings are valid UTF-8.
		for _, s := range []string{podName, owner, index, domain} {
			if !utf8.ValidString(s) {
				t.Skip("not valid UTF-8")
			}
		}
		sts := identitySTS(owner, ptr.To(replicas), ptr.To(start), "")
		sts.Labels = map[string]string{LabelDeployType: string(StatefulMulti)}
		if injectEnv {
			sts.Annotations = map[string]string{AnnotationInjectEnv: "true"}
		}
		pod := identityPod(podName, map[string]string{appsv1.PodIndexLabel: index})
		pod.Spec.Containers = []corev1.Container{{Name: "c"}}
		var svc *corev1.Service
		if !injectEnv {
			svc = &corev1.Service{Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10"}}
		}
		ops, _, err := StampStatefulPod(pod, sts, svc, domain)
		if err != nil {
			return
		}
		raw, err := json.Marshal(pod)
		require.NoError(t, err)
		encoded, err := json.Marshal(ops)
		require.NoError(t, err)
		patch, err := jsonpatchv5.DecodePatch(encoded)
		require.NoError(t, err)
		patched, err := patch.Apply(raw)
		require.NoError(t, err)
		var again corev1.Pod
		require.NoError(t, json.Unmarshal(patched, &again))
		again2, _, err := StampStatefulPod(&again, sts, svc, domain)
		require.NoError(t, err)
		assert.Empty(t, again2)
	})
}
