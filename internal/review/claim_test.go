package review

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/statekeeper/statekeeper/internal/lookup"
	"github.com/statekeeper/statekeeper/internal/policy"
)

var claimsResource = Resource{Version: "v1", Resource: "persistentvolumeclaims"}

// sizedStatefulSet is statefulSet with a "data" template of size in class,
// and the sizes recorded when recorded is not "".
func sizedStatefulSet(namespace, size, class, recorded string) *appsv1.StatefulSet {
	sts := inNamespace(statefulSet("db", "stateful-multi", 2), namespace)
	sts.Spec.VolumeClaimTemplates[0].Spec = corev1.PersistentVolumeClaimSpec{
		AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		StorageClassName: ptr.To(class),
		Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
	}
	if recorded != "" {
		sts.Annotations = map[string]string{policy.AnnotationClaimSizes: recorded}
	}
	return sts
}

func resizeCluster() *lookup.Memory {
	m := testCluster()
	m.Add(&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "expands"}, AllowVolumeExpansion: ptr.To(true)})
	m.Add(&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fixed"}})
	m.Add(sizedStatefulSet("shop", "1Gi", "expands", "data=5Gi"))
	return m
}

// TestResizeClaimTemplateOutcomes: the mutating webhook judges a resized
// claim template (the API server's immutability check would refuse it
// before the validating one), over the cluster whole and as the cache holds it.
func TestResizeClaimTemplateOutcomes(t *testing.T) {
	update := func(namespace string, old, object *appsv1.StatefulSet) Request {
		return Request{Operation: policy.OpUpdate, Resource: statefulSetsResource, Namespace: namespace, Name: "db",
			Object: raw(t, object), OldObject: raw(t, old)}
	}
	tests := []struct {
		name string
		req  func(t *testing.T) Request
		want outcome
	}{
		{"growth: patched, warned",
			func(*testing.T) Request {
				return update("shop", sizedStatefulSet("shop", "1Gi", "expands", ""), sizedStatefulSet("shop", "5Gi", "expands", ""))
			},
			outcome{Mode: policy.ModeEnforce, Name: "db", Warned: []policy.Rule{policy.RuleStorageResize}, Patched: true}},
		{"the recorded size again: patched, silent",
			func(*testing.T) Request {
				return update("shop", sizedStatefulSet("shop", "1Gi", "expands", "data=5Gi"), sizedStatefulSet("shop", "5Gi", "expands", ""))
			},
			outcome{Mode: policy.ModeEnforce, Name: "db", Patched: true}},
		{"a class that cannot expand: denied",
			func(*testing.T) Request {
				return update("shop", sizedStatefulSet("shop", "1Gi", "fixed", ""), sizedStatefulSet("shop", "5Gi", "fixed", ""))
			},
			outcome{Mode: policy.ModeEnforce, Name: "db", Denied: []policy.Rule{policy.RuleStorageResize}, Patched: true}},
		{"a shrink in a warn namespace: warned, the template kept",
			func(*testing.T) Request {
				return update("relaxed", sizedStatefulSet("relaxed", "4Gi", "expands", ""), sizedStatefulSet("relaxed", "2Gi", "expands", ""))
			},
			outcome{Mode: policy.ModeWarn, Name: "db", Warned: []policy.Rule{policy.RuleStorageResize}, Patched: true}},
	}
	for _, cluster := range []struct {
		name   string
		lookup func() lookup.Lookup
	}{
		{"whole", func() lookup.Lookup { return resizeCluster() }},
		{"as cached", func() lookup.Lookup { return resizeCluster().AsCached() }},
	} {
		for _, tt := range tests {
			t.Run(cluster.name+"/"+tt.name, func(t *testing.T) {
				d, err := newEngine(cluster.lookup(), "").Mutate(context.Background(), tt.req(t))
				require.NoError(t, err)
				assert.Equal(t, tt.want, outcomeOf(d))
			})
		}
	}
}

// TestAdmitResizedClaimTemplate: what the API server stores is the stored
// template with the size recorded.
func TestAdmitResizedClaimTemplate(t *testing.T) {
	old := sizedStatefulSet("shop", "1Gi", "expands", "")
	req := Request{Operation: policy.OpUpdate, Resource: statefulSetsResource, Namespace: "shop", Name: "db",
		Object: raw(t, sizedStatefulSet("shop", "5Gi", "expands", "")), OldObject: raw(t, old)}
	a, err := newEngine(resizeCluster(), "").Admit(context.Background(), req)
	require.NoError(t, err)
	var stored appsv1.StatefulSet
	require.NoError(t, json.Unmarshal(a.Object, &stored))
	assert.Equal(t, old.Spec.VolumeClaimTemplates, stored.Spec.VolumeClaimTemplates)
	assert.Equal(t, map[string]string{policy.AnnotationClaimSizes: "data=5Gi"}, stored.Annotations)
	assert.Equal(t, []policy.Rule{policy.RuleStorageResize}, outcomeOf(Decision{Result: a.Result}).Warned)
}

func TestSizeClaimOutcomes(t *testing.T) {
	claim := func(name string, labels map[string]string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Spec: corev1.PersistentVolumeClaimSpec{
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		}
	}
	ofDB := map[string]string{"app": "db"}
	tests := []struct {
		name      string
		namespace string
		op        policy.Operation
		claim     *corev1.PersistentVolumeClaim
		want      outcome
	}{
		{"a new ordinal's claim: sized", "shop", policy.OpCreate, claim("data-db-2", ofDB),
			outcome{Mode: policy.ModeEnforce, Name: "data-db-2", Patched: true}},
		{"a claim of another statefulset's name", "shop", policy.OpCreate, claim("data-other-0", ofDB),
			outcome{Skipped: true, Reason: reasonClaimNotOwned, Mode: policy.ModeEnforce, Name: "data-other-0"}},
		{"a claim without the statefulset's labels", "shop", policy.OpCreate, claim("data-db-2", nil),
			outcome{Skipped: true, Reason: reasonClaimNotOwned, Mode: policy.ModeEnforce, Name: "data-db-2"}},
		{"a claim of no ordinal", "shop", policy.OpCreate, claim("scratch", ofDB),
			outcome{Skipped: true, Reason: reasonClaimNotOwned, Name: "scratch"}},
		{"an update", "shop", policy.OpUpdate, claim("data-db-2", ofDB),
			outcome{Skipped: true, Reason: reasonClaimNotCreate, Name: "data-db-2"}},
		{"an off namespace", "quiet", policy.OpCreate, claim("data-db-2", ofDB),
			outcome{Skipped: true, Mode: policy.ModeOff, Name: "data-db-2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := newEngine(resizeCluster().AsCached(), "").SizeClaim(context.Background(), Request{
				Operation: tt.op, Resource: claimsResource, Namespace: tt.namespace, Name: tt.claim.Name, Object: raw(t, tt.claim),
			})
			require.NoError(t, err)
			assert.Equal(t, tt.want, outcomeOf(d))
			if tt.want.Patched {
				sized, err := ApplyPatch(raw(t, tt.claim), d.Patch)
				require.NoError(t, err)
				var got corev1.PersistentVolumeClaim
				require.NoError(t, json.Unmarshal(sized, &got))
				assert.Equal(t, resource.MustParse("5Gi"), got.Spec.Resources.Requests[corev1.ResourceStorage])
			}
		})
	}
}
