package policy

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	evanphx "github.com/evanphx/json-patch/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gomodules.xyz/jsonpatch/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	kjson "sigs.k8s.io/json"
)

var testDefaults = Defaults{StorageSize: resource.MustParse("1Gi")}

// mutateCase is one MutateWorkload call. object and old are
// *appsv1.StatefulSet or *appsv1.Deployment.
type mutateCase struct {
	name      string
	op        Operation
	object    any
	old       any
	claims    map[string]*corev1.PersistentVolumeClaim
	defaults  *Defaults
	want      string // the whole patch as JSON; "" for none
	wantDeny  []Violation
	wantAfter func(t *testing.T, patched any) // optional checks of the patched object
}

func (c mutateCase) request(obj any) WorkloadRequest {
	req := WorkloadRequest{Operation: c.op, Object: workloadOf(obj), Written: writtenOf(obj), Claims: c.claims}
	if c.old != nil {
		req.Old = &Observed{Workload: workloadOf(c.old)}
	}
	return req
}

func (c mutateCase) run(t *testing.T) {
	t.Helper()
	d := testDefaults
	if c.defaults != nil {
		d = *c.defaults
	}
	ops, result := mutateAndRefusal(c.request(c.object), d)
	assert.Equal(t, Result{Denials: c.wantDeny}, result)
	assertPatch(t, c.want, ops)

	// Idempotence: the patched object needs nothing more.
	doc, err := json.Marshal(c.object)
	require.NoError(t, err)
	patched := decodeLike(t, c.object, applyPatch(t, doc, ops))
	again, againResult := mutateAndRefusal(c.request(patched), d)
	assert.Empty(t, again, "second pass")
	assert.Equal(t, Result{Denials: c.wantDeny}, againResult, "second pass")
	if c.wantAfter != nil {
		c.wantAfter(t, patched)
	}
}

// writtenOf is the keys a workload's manifest writes, as the engine reads them.
func writtenOf(obj any) WrittenKeys {
	switch o := obj.(type) {
	case *appsv1.StatefulSet:
		return WrittenKeysOf(&o.ObjectMeta, &o.Spec.Template)
	case *appsv1.Deployment:
		return WrittenKeysOf(&o.ObjectMeta, &o.Spec.Template)
	}
	panic(fmt.Sprintf("not a workload: %T", obj))
}

func workloadOf(obj any) Workload {
	switch o := obj.(type) {
	case *appsv1.StatefulSet:
		return FromStatefulSet(o)
	case *appsv1.Deployment:
		return FromDeployment(o)
	}
	panic(fmt.Sprintf("not a workload: %T", obj))
}

// decodeLike decodes data into a new value of like's type, as the API machinery
// does (case-sensitive keys).
func decodeLike(t *testing.T, like any, data []byte) any {
	t.Helper()
	var out any
	switch like.(type) {
	case *appsv1.StatefulSet:
		out = &appsv1.StatefulSet{}
	case *appsv1.Deployment:
		out = &appsv1.Deployment{}
	default:
		t.Fatalf("not a workload: %T", like)
	}
	require.NoError(t, kjson.UnmarshalCaseSensitivePreserveInts(data, out))
	return out
}

func applyPatch(t *testing.T, doc []byte, ops []jsonpatch.Operation) []byte {
	t.Helper()
	if len(ops) == 0 {
		return doc
	}
	raw, err := json.Marshal(ops)
	require.NoError(t, err)
	patch, err := evanphx.DecodePatch(raw)
	require.NoError(t, err)
	out, err := patch.Apply(doc)
	require.NoError(t, err, "patch %s", raw)
	return out
}

func assertPatch(t *testing.T, want string, ops []jsonpatch.Operation) {
	t.Helper()
	if want == "" {
		assert.Empty(t, ops)
		return
	}
	got, err := json.Marshal(ops)
	require.NoError(t, err)
	assert.JSONEq(t, want, string(got))
}

// injectedTemplate is the JSON of a claim template statekeeper injects.
func injectedTemplate(name, size, class string) string {
	classField := ""
	if class != "" {
		classField = fmt.Sprintf(`,"storageClassName":%q`, class)
	}
	return fmt.Sprintf(`{"metadata":{"name":%q,"annotations":{"statekeeper.io/injected":"true"}},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":%q}}%s}}`,
		name, size, classField)
}

func TestMutateStatefulSetCreate(t *testing.T) {
	withServiceAndLabel := func(s *appsv1.StatefulSet) {
		s.Spec.ServiceName = "db"
		s.Spec.Template.Labels[LabelDeployType] = "stateful-single"
	}
	longName := "orders-" + strings.Repeat("x", 53)
	tests := []mutateCase{
		{
			name:   "service name, a claim template per mount and the template label",
			object: stsFixture("redis", "stateful-multi", stsReplicas(ptr.To[int32](2)), stsMounts("data")),
			want: `[
				{"op":"add","path":"/spec/serviceName","value":"redis-headless"},
				{"op":"add","path":"/spec/volumeClaimTemplates","value":[` + injectedTemplate("data", "1Gi", "") + `]},
				{"op":"add","path":"/spec/template/metadata/labels/statekeeper.io~1deploy-type","value":"stateful-multi"}
			]`,
		},
		{
			name: "init container and container mounts, once each in start order; pod volumes satisfy mounts",
			object: stsFixture("db", "stateful-single", withServiceAndLabel,
				stsVolumes(
					corev1.Volume{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}}},
					corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				),
				stsMounts("data", "config", "logs", "scratch"),
				func(s *appsv1.StatefulSet) {
					s.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "restore", VolumeMounts: volumeMounts("seed", "data")}}
					s.Spec.Template.Spec.Containers = append(s.Spec.Template.Spec.Containers,
						corev1.Container{Name: "sidecar", VolumeMounts: volumeMounts("logs", "config")})
				}),
			want: `[
				{"op":"add","path":"/spec/volumeClaimTemplates","value":[` +
				injectedTemplate("seed", "1Gi", "") + "," + injectedTemplate("data", "1Gi", "") + "," + injectedTemplate("logs", "1Gi", "") + `]}
			]`,
		},
		{
			name: "existing templates are kept and new ones appended",
			object: stsFixture("db", "stateful-single", withServiceAndLabel, stsMounts("data", "logs"),
				stsTemplates(corev1.PersistentVolumeClaim{
					ObjectMeta: metav1.ObjectMeta{Name: "data"},
					Spec: corev1.PersistentVolumeClaimSpec{
						AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod},
						StorageClassName: ptr.To("fast"),
						Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("50Gi")}},
					},
				})),
			want: `[{"op":"add","path":"/spec/volumeClaimTemplates/-","value":` + injectedTemplate("logs", "1Gi", "") + `}]`,
			wantAfter: func(t *testing.T, patched any) {
				templates := patched.(*appsv1.StatefulSet).Spec.VolumeClaimTemplates
				require.Len(t, templates, 2)
				assert.Equal(t, "50Gi", templates[0].Spec.Resources.Requests.Storage().String())
				assert.Equal(t, ptr.To("fast"), templates[0].Spec.StorageClassName)
			},
		},
		{
			name:   "size and class from the annotations",
			object: stsFixture("db", "stateful-single", withServiceAndLabel, stsMounts("data"), stsAnnotations(AnnotationStorageSize, "20Gi", AnnotationStorageClass, "fast-ssd")),
			want:   `[{"op":"add","path":"/spec/volumeClaimTemplates","value":[` + injectedTemplate("data", "20Gi", "fast-ssd") + `]}]`,
		},
		{
			name:     "size and class from the defaults",
			object:   stsFixture("db", "stateful-single", withServiceAndLabel, stsMounts("data")),
			defaults: &Defaults{StorageSize: resource.MustParse("5Gi"), StorageClass: "standard"},
			want:     `[{"op":"add","path":"/spec/volumeClaimTemplates","value":[` + injectedTemplate("data", "5Gi", "standard") + `]}]`,
		},
		{
			name:     "an empty class annotation overrides the default class with the cluster's",
			object:   stsFixture("db", "stateful-single", withServiceAndLabel, stsMounts("data"), stsAnnotations(AnnotationStorageClass, "")),
			defaults: &Defaults{StorageSize: resource.MustParse("5Gi"), StorageClass: "standard"},
			want:     `[{"op":"add","path":"/spec/volumeClaimTemplates","value":[` + injectedTemplate("data", "5Gi", "") + `]}]`,
		},
		{
			name:   "a long name gets a hashed service name",
			object: stsFixture(longName, "stateful-multi", func(s *appsv1.StatefulSet) { s.Spec.Template.Labels[LabelDeployType] = "stateful-multi" }),
			want:   `[{"op":"add","path":"/spec/serviceName","value":"orders-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx-d71b6d2e-headless"}]`,
		},
		{
			name: "template without labels gets the labels map",
			object: stsFixture("db", "stateful-single", func(s *appsv1.StatefulSet) {
				s.Spec.ServiceName = "db"
				s.Spec.Template.Annotations = map[string]string{"a": "b"}
				s.Spec.Template.Labels = nil
			}),
			want: `[{"op":"add","path":"/spec/template/metadata/labels","value":{"statekeeper.io/deploy-type":"stateful-single"}}]`,
		},
		{
			name: "template without metadata gets the metadata",
			object: stsFixture("db", "stateful-single", func(s *appsv1.StatefulSet) {
				s.Spec.ServiceName = "db"
				s.Spec.Template.ObjectMeta = metav1.ObjectMeta{}
			}),
			want: `[{"op":"add","path":"/spec/template/metadata","value":{"labels":{"statekeeper.io/deploy-type":"stateful-single"}}}]`,
		},
		{
			name: "a template label set by the user is kept",
			object: stsFixture("db", "stateful-single", func(s *appsv1.StatefulSet) {
				s.Spec.ServiceName = "db"
				s.Spec.Template.Labels[LabelDeployType] = "custom"
			}),
		},
		{
			name: "nothing to do",
			object: stsFixture("db", "stateful-single", withServiceAndLabel, stsMounts("data"),
				stsTemplates(claimTemplate("data", "1Gi"))),
		},
		{
			name:   "an invalid storage size is denied, with no patch",
			object: stsFixture("db", "stateful-single", stsMounts("data"), stsAnnotations(AnnotationStorageSize, "big")),
			wantDeny: []Violation{violation(RuleInvalidAnnotation, atAnnotation(AnnotationStorageSize),
				`statefulset "db": annotation statekeeper.io/storage-size must be a positive resource quantity such as "10Gi", got "big"`)},
		},
		{name: "a stateless type on a statefulset is not mutated", object: stsFixture("db", "stateless-multi", stsMounts("data"))},
		{name: "an unknown type is not mutated", object: stsFixture("db", "database", stsMounts("data"))},
		{name: "an unlabelled statefulset is not mutated", object: stsFixture("db", "", stsMounts("data"))},
	}
	for _, tt := range tests {
		tt.op = OpCreate
		t.Run(tt.name, tt.run)
	}
}

func TestMutateStatefulSetUpdate(t *testing.T) {
	// manifest is what the user applies; stored is what the API server kept
	// after statekeeper's CREATE mutation and its own defaulting.
	manifest := func(edits ...func(*appsv1.StatefulSet)) *appsv1.StatefulSet {
		return stsFixture("redis", "stateful-multi", append([]func(*appsv1.StatefulSet){stsReplicas(ptr.To[int32](2)), stsMounts("data")}, edits...)...)
	}
	storedTemplate := claimTemplate("data", "1Gi")
	storedTemplate.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeFilesystem)
	storedTemplate.Status.Phase = corev1.ClaimPending
	stored := manifest(func(s *appsv1.StatefulSet) {
		s.Spec.ServiceName = "redis-headless"
		s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{storedTemplate}
		s.Spec.Template.Labels[LabelDeployType] = "stateful-multi"
	})
	legacy := stsFixture("db", "stateful-single", stsMounts("data"), stsTemplates(claimTemplate("data", "1Gi")),
		func(s *appsv1.StatefulSet) { s.Spec.ServiceName = "db" })

	tests := []mutateCase{
		{
			name:   "re-applying the original manifest carries the injected fields over",
			object: manifest(),
			old:    stored,
			want: `[
				{"op":"add","path":"/spec/serviceName","value":"redis-headless"},
				{"op":"add","path":"/spec/volumeClaimTemplates","value":[{"metadata":{"name":"data"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}},"volumeMode":"Filesystem"},"status":{"phase":"Pending"}}]},
				{"op":"add","path":"/spec/template/metadata/labels/statekeeper.io~1deploy-type","value":"stateful-multi"}
			]`,
			wantAfter: func(t *testing.T, patched any) {
				s := patched.(*appsv1.StatefulSet)
				assert.Equal(t, stored.Spec.ServiceName, s.Spec.ServiceName)
				assert.Equal(t, stored.Spec.VolumeClaimTemplates, s.Spec.VolumeClaimTemplates)
				assert.Equal(t, stored.Spec.Template.Labels, s.Spec.Template.Labels)
			},
		},
		{
			name: "re-applying with a scale change carries over only what is missing",
			object: manifest(stsReplicas(ptr.To[int32](3)), func(s *appsv1.StatefulSet) {
				s.Spec.Template.Labels[LabelDeployType] = "stateful-multi"
			}),
			old: stored,
			want: `[
				{"op":"add","path":"/spec/serviceName","value":"redis-headless"},
				{"op":"add","path":"/spec/volumeClaimTemplates","value":[{"metadata":{"name":"data"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}},"volumeMode":"Filesystem"},"status":{"phase":"Pending"}}]}
			]`,
		},
		{
			name:   "the stored template label value is carried over, even after a type change",
			object: stsFixture("db", "stateful-multi", func(s *appsv1.StatefulSet) { s.Spec.ServiceName = "db" }),
			old: stsFixture("db", "stateful-single", func(s *appsv1.StatefulSet) {
				s.Spec.ServiceName = "db"
				s.Spec.Template.Labels[LabelDeployType] = "stateful-single"
			}),
			want: `[{"op":"add","path":"/spec/template/metadata/labels/statekeeper.io~1deploy-type","value":"stateful-single"}]`,
		},
		{
			name:   "a workload from before statekeeper is left as it is",
			object: legacy,
			old:    legacy,
		},
		{
			name:   "a workload from before statekeeper, now labelled, is left as it is",
			object: legacy,
			old:    stsFixture("db", "", stsMounts("data"), stsTemplates(claimTemplate("data", "1Gi")), func(s *appsv1.StatefulSet) { s.Spec.ServiceName = "db" }),
		},
		{
			name:   "a new mount is not given a template on update",
			object: stsFixture("db", "stateful-single", stsMounts("data", "logs"), stsTemplates(claimTemplate("data", "1Gi")), func(s *appsv1.StatefulSet) { s.Spec.ServiceName = "db" }),
			old:    legacy,
		},
		{
			name: "a service name the user changed is theirs",
			object: manifest(func(s *appsv1.StatefulSet) {
				s.Spec.ServiceName = "other"
				s.Spec.Template.Labels[LabelDeployType] = "x"
			}, stsTemplates(claimTemplate("data", "1Gi"))),
			old: stored,
		},
		{
			name:   "without the stored object nothing is carried over",
			object: manifest(),
		},
	}
	for _, tt := range tests {
		tt.op = OpUpdate
		t.Run(tt.name, tt.run)
	}
}

func TestMutateDeployment(t *testing.T) {
	withClaim := func(deployType string, edits ...func(*appsv1.Deployment)) *appsv1.Deployment {
		edits = append([]func(*appsv1.Deployment){deployVolumes(claimVolume("data", "web-data")), deployMounts("data")}, edits...)
		return deployFixture("web", deployType, edits...)
	}
	rollingUpdate := func(d *appsv1.Deployment) {
		d.Spec.Strategy = appsv1.DeploymentStrategy{
			Type: appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxSurge:       ptr.To(intstr.FromString("25%")),
				MaxUnavailable: ptr.To(intstr.FromString("25%")),
			},
		}
	}
	recreate := func(d *appsv1.Deployment) {
		d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	}
	claims := func(modes ...corev1.PersistentVolumeAccessMode) map[string]*corev1.PersistentVolumeClaim {
		return map[string]*corev1.PersistentVolumeClaim{"web-data": existingClaim("web-data", modes...)}
	}
	replaceWithRecreate := `[{"op":"replace","path":"/spec/strategy","value":{"type":"Recreate"}}]`
	recreatedWithoutRollingUpdate := func(t *testing.T, patched any) {
		assert.Equal(t, appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}, patched.(*appsv1.Deployment).Spec.Strategy)
	}

	tests := []mutateCase{
		{
			name:      "a rolling update with a ReadWriteOnce claim becomes Recreate, dropping rollingUpdate",
			op:        OpCreate,
			object:    withClaim("stateless-single", rollingUpdate),
			claims:    claims(corev1.ReadWriteOnce),
			want:      replaceWithRecreate,
			wantAfter: recreatedWithoutRollingUpdate,
		},
		{
			name:      "a claim that was not found counts as ReadWriteOnce",
			op:        OpCreate,
			object:    withClaim("stateless-single"),
			want:      `[{"op":"add","path":"/spec/strategy","value":{"type":"Recreate"}}]`,
			wantAfter: recreatedWithoutRollingUpdate,
		},
		{
			name:   "a ReadWriteOncePod claim, on update",
			op:     OpUpdate,
			object: withClaim("stateless-single", rollingUpdate),
			old:    withClaim("stateless-single", rollingUpdate),
			claims: claims(corev1.ReadWriteOncePod),
			want:   replaceWithRecreate,
		},
		{
			name:      "Recreate with a stray rollingUpdate is cleaned",
			op:        OpUpdate,
			object:    withClaim("stateless-single", rollingUpdate, func(d *appsv1.Deployment) { d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType }),
			claims:    claims(corev1.ReadWriteOnce),
			want:      replaceWithRecreate,
			wantAfter: recreatedWithoutRollingUpdate,
		},
		{
			name: "a claim mounted only by an init container counts",
			op:   OpCreate,
			object: deployFixture("web", "stateless-single", rollingUpdate, deployVolumes(claimVolume("data", "web-data")), func(d *appsv1.Deployment) {
				d.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "migrate", VolumeMounts: volumeMounts("data")}}
			}),
			claims: claims(corev1.ReadWriteOnce),
			want:   replaceWithRecreate,
		},
		{name: "already Recreate", op: OpCreate, object: withClaim("stateless-single", recreate), claims: claims(corev1.ReadWriteOnce)},
		// A strategy the manifest sets is left as written (validation warns,
		// recreate-strategy): GitOps tools would re-apply it forever.
		{
			name:   "a RollingUpdate the manifest tunes is left as written",
			op:     OpCreate,
			object: withClaim("stateless-single", rollingUpdate, func(d *appsv1.Deployment) { d.Spec.Strategy.RollingUpdate.MaxSurge = ptr.To(intstr.FromInt32(1)) }),
			claims: claims(corev1.ReadWriteOnce),
		},
		{
			name: "a RollingUpdate a server-side apply set is left as written",
			op:   OpUpdate,
			object: withClaim("stateless-single", rollingUpdate, func(d *appsv1.Deployment) {
				d.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kustomize-controller", Operation: metav1.ManagedFieldsOperationApply,
					FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:replicas":{},"f:strategy":{"f:type":{}}}}`)}}}
			}),
			claims: claims(corev1.ReadWriteOnce),
		},
		{
			name: "a server-side apply that does not set the strategy: Recreate",
			op:   OpCreate,
			object: withClaim("stateless-single", rollingUpdate, func(d *appsv1.Deployment) {
				d.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kustomize-controller", Operation: metav1.ManagedFieldsOperationApply,
					FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:replicas":{}}}`)}}}
			}),
			claims: claims(corev1.ReadWriteOnce),
			want:   replaceWithRecreate,
		},
		{
			name: "a RollingUpdate in kubectl's last applied manifest is left as written",
			op:   OpCreate,
			object: withClaim("stateless-single", rollingUpdate, deployAnnotations(lastAppliedConfiguration,
				`{"kind":"Deployment","spec":{"strategy":{"type":"RollingUpdate"}}}`)),
			claims: claims(corev1.ReadWriteOnce),
		},
		{
			name:   "a last applied manifest without a strategy (or an empty one): Recreate",
			op:     OpCreate,
			object: withClaim("stateless-single", rollingUpdate, deployAnnotations(lastAppliedConfiguration, `{"kind":"Deployment","spec":{"replicas":1,"strategy":{}}}`)),
			claims: claims(corev1.ReadWriteOnce),
			want:   replaceWithRecreate,
		},
		{name: "a ReadWriteMany claim can roll", op: OpCreate, object: withClaim("stateless-single", rollingUpdate), claims: claims(corev1.ReadWriteMany)},
		{
			name:   "a claim volume no container mounts",
			op:     OpCreate,
			object: deployFixture("web", "stateless-single", rollingUpdate, deployVolumes(claimVolume("data", "web-data"))),
		},
		{name: "no claim at all", op: OpCreate, object: deployFixture("web", "stateless-single", rollingUpdate)},
		{name: "stateless-multi is not changed", op: OpCreate, object: withClaim("stateless-multi", rollingUpdate), claims: claims(corev1.ReadWriteOnce)},
		{name: "a stateful type on a deployment is not mutated", op: OpCreate, object: withClaim("stateful-single", rollingUpdate)},
		{
			name:   "an invalid quorum annotation is denied, with no patch",
			op:     OpCreate,
			object: withClaim("stateless-single", deployAnnotations(AnnotationQuorum, "maybe")),
			wantDeny: []Violation{violation(RuleInvalidAnnotation, atAnnotation(AnnotationQuorum),
				`deployment "web": annotation statekeeper.io/quorum must be "true" or "false", got "maybe"`)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// TestMutateWorkloadRawObject applies the patch to raw request bodies whose
// shape the typed view cannot see: absent, null or empty members, and fields
// the Go types do not know, which must survive.
func TestMutateWorkloadRawObject(t *testing.T) {
	const labels = `"labels":{"statekeeper.io/deploy-type":"stateful-single"}`
	const mount = `"containers":[{"name":"main","image":"db","volumeMounts":[{"name":"data","mountPath":"/data"}],"x-unknown":1}]`
	tests := []struct {
		name   string
		object string
		want   string
	}{
		{
			name:   "template without metadata, unknown fields",
			object: `{"kind":"StatefulSet","metadata":{"name":"db",` + labels + `},"spec":{"x-future":{"keep":true},"selector":{"matchLabels":{"app":"db"}},"template":{"spec":{` + mount + `}}}}`,
			want: `{"kind":"StatefulSet","metadata":{"name":"db",` + labels + `},"spec":{"x-future":{"keep":true},"selector":{"matchLabels":{"app":"db"}},` +
				`"serviceName":"db-headless","volumeClaimTemplates":[` + injectedTemplate("data", "1Gi", "") + `],` +
				`"template":{"metadata":{` + labels + `},"spec":{` + mount + `}}}}`,
		},
		{
			name:   "empty and null members",
			object: `{"kind":"StatefulSet","metadata":{"name":"db",` + labels + `},"spec":{"serviceName":"","volumeClaimTemplates":[],"selector":{},"template":{"metadata":{"labels":{}},"spec":{` + mount + `}}}}`,
			want: `{"kind":"StatefulSet","metadata":{"name":"db",` + labels + `},"spec":{"serviceName":"db-headless","volumeClaimTemplates":[` + injectedTemplate("data", "1Gi", "") + `],` +
				`"selector":{},"template":{"metadata":{` + labels + `},"spec":{` + mount + `}}}}`,
		},
		{
			name:   "null template metadata and claim templates",
			object: `{"kind":"StatefulSet","metadata":{"name":"db",` + labels + `},"spec":{"volumeClaimTemplates":null,"selector":{},"template":{"metadata":null,"spec":{` + mount + `}}}}`,
			want: `{"kind":"StatefulSet","metadata":{"name":"db",` + labels + `},"spec":{"serviceName":"db-headless","volumeClaimTemplates":[` + injectedTemplate("data", "1Gi", "") + `],` +
				`"selector":{},"template":{"metadata":{` + labels + `},"spec":{` + mount + `}}}}`,
		},
		{
			name:   "no spec at all",
			object: `{"kind":"StatefulSet","metadata":{"name":"db",` + labels + `}}`,
			want:   `{"kind":"StatefulSet","metadata":{"name":"db",` + labels + `},"spec":{"serviceName":"db-headless","template":{"metadata":{` + labels + `}}}}`,
		},
		{
			name: "deployment without strategy",
			object: `{"kind":"Deployment","metadata":{"name":"web","labels":{"statekeeper.io/deploy-type":"stateless-single"}},"spec":{"selector":{},"template":{"spec":{` +
				`"volumes":[{"name":"data","persistentVolumeClaim":{"claimName":"web-data"}}],` + mount + `}}}}`,
			want: `{"kind":"Deployment","metadata":{"name":"web","labels":{"statekeeper.io/deploy-type":"stateless-single"}},"spec":{"strategy":{"type":"Recreate"},"selector":{},"template":{"spec":{` +
				`"volumes":[{"name":"data","persistentVolumeClaim":{"claimName":"web-data"}}],` + mount + `}}}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, w, err := decodeWorkload([]byte(tt.object))
			require.NoError(t, err)
			req := WorkloadRequest{Operation: OpCreate, Object: w, Written: writtenOf(obj)}
			ops, result := mutateAndRefusal(req, testDefaults)
			require.Equal(t, Result{}, result)
			patched := applyPatch(t, []byte(tt.object), ops)
			assert.JSONEq(t, tt.want, string(patched))

			req.Object = workloadOf(decodeLike(t, obj, patched))
			again, _ := mutateAndRefusal(req, testDefaults)
			assert.Empty(t, again, "second pass")
		})
	}
}

// decodeWorkload decodes a Deployment or StatefulSet as the API machinery
// does; err is set for anything else.
func decodeWorkload(data []byte) (any, Workload, error) {
	var meta metav1.TypeMeta
	if err := kjson.UnmarshalCaseSensitivePreserveInts(data, &meta); err != nil {
		return nil, Workload{}, err
	}
	switch meta.Kind {
	case "StatefulSet":
		s := &appsv1.StatefulSet{}
		if err := kjson.UnmarshalCaseSensitivePreserveInts(data, s); err != nil {
			return nil, Workload{}, err
		}
		return s, FromStatefulSet(s), nil
	case "Deployment":
		d := &appsv1.Deployment{}
		if err := kjson.UnmarshalCaseSensitivePreserveInts(data, d); err != nil {
			return nil, Workload{}, err
		}
		return d, FromDeployment(d), nil
	}
	return nil, Workload{}, fmt.Errorf("kind %q is not a workload", meta.Kind)
}

func TestMutateWorkloadCraftedViews(t *testing.T) {
	// Hand-built views with nil template and selector must not panic, and
	// their patch must still address existing paths.
	tests := []struct {
		name string
		req  WorkloadRequest
		want string
	}{
		{name: "zero request", req: WorkloadRequest{}},
		{
			name: "statefulset with nothing but a type",
			req:  WorkloadRequest{Operation: OpCreate, Object: Workload{Kind: KindStatefulSet, Name: "db", Labels: map[string]string{LabelDeployType: "stateful-multi"}}},
			want: `[
				{"op":"add","path":"/spec","value":{"serviceName":"db-headless"}},
				{"op":"add","path":"/spec/template","value":{"metadata":{"labels":{"statekeeper.io/deploy-type":"stateful-multi"}}}}
			]`,
		},
		{
			name: "update with nothing but a type",
			req: WorkloadRequest{Operation: OpUpdate, Object: Workload{Kind: KindStatefulSet, Labels: map[string]string{LabelDeployType: "stateful-multi"}},
				Old: &Observed{Workload: Workload{Kind: KindStatefulSet, ServiceName: "db"}}},
			want: `[{"op":"add","path":"/spec","value":{"serviceName":"db"}}]`,
		},
		{
			name: "deployment with nothing but a type",
			req:  WorkloadRequest{Operation: OpUpdate, Object: Workload{Kind: KindDeployment, Labels: map[string]string{LabelDeployType: "stateless-single"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops, result := mutateAndRefusal(tt.req, testDefaults)
			assert.Equal(t, Result{}, result)
			assertPatch(t, tt.want, ops)
		})
	}
}

// mutateSeeds are the fuzz corpus: the shapes the table tests cover.
func mutateSeeds(t testing.TB) [][2][]byte {
	marshal := func(v any) []byte {
		data, err := json.Marshal(v)
		require.NoError(t, err)
		return data
	}
	stored := stsFixture("redis", "stateful-multi", stsMounts("data"), stsTemplates(claimTemplate("data", "1Gi")),
		func(s *appsv1.StatefulSet) { s.Spec.ServiceName = "redis-headless" })
	return [][2][]byte{
		{marshal(stsFixture("redis", "stateful-multi", stsMounts("data", "logs"), stsAnnotations(AnnotationStorageSize, "5Gi")))},
		{marshal(stsFixture("redis", "stateful-multi", stsMounts("data"))), marshal(stored)},
		{marshal(stsFixture("db", "stateful-single", stsMounts("data"), stsAnnotations(AnnotationStorageSize, "0")))},
		{marshal(stsFixture("db", "stateful-single", func(s *appsv1.StatefulSet) { s.Spec.Template.ObjectMeta = metav1.ObjectMeta{} }))},
		{marshal(deployFixture("web", "stateless-single", deployVolumes(claimVolume("data", "web-data")), deployMounts("data"),
			func(d *appsv1.Deployment) {
				d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: ptr.To(intstr.FromInt32(1))}
			}))},
		// A claim template resized in the manifest, against a stored record.
		{marshal(stsFixture("redis", "stateful-multi", stsMounts("data"), stsTemplates(claimTemplate("data", "5Gi")),
			stsAnnotations("team", "cache"), func(s *appsv1.StatefulSet) { s.Spec.ServiceName = "redis-headless" })),
			marshal(stsFixture("redis", "stateful-multi", stsMounts("data"), stsTemplates(claimTemplate("data", "1Gi")),
				stsAnnotations(AnnotationClaimSizes, "data=2Gi,gone=1Gi"), func(s *appsv1.StatefulSet) { s.Spec.ServiceName = "redis-headless" }))},
		{[]byte(`{"kind":"StatefulSet","metadata":{"name":"db","labels":{"statekeeper.io/deploy-type":"stateful-single"}}}`)},
		{[]byte(`{"kind":"StatefulSet","metadata":{"labels":{"statekeeper.io/deploy-type":"stateful-multi"}},"spec":{"template":{"metadata":null,"spec":{"initContainers":[{"volumeMounts":[{"name":"a~b/c"},{"name":""}]}]}}}}`)},
		{[]byte(`{"kind":"Deployment","metadata":{"labels":{"statekeeper.io/deploy-type":"stateless-single"}},"spec":{"strategy":{"type":"Recreate","rollingUpdate":{}},"template":{"spec":{"volumes":[{"name":"v","persistentVolumeClaim":{}}],"containers":[{"volumeDevices":[{"name":"v"}]}]}}}}`)},
	}
}

// FuzzMutateWorkload decodes arbitrary workloads (and, for an UPDATE, a stored
// object of the same kind) and checks that mutation never panics, that its
// patch applies, and that a second pass on the patched object is empty. The
// patch is applied to the object as the API server serializes it, which is
// what an admission request carries.
func FuzzMutateWorkload(f *testing.F) {
	for _, seed := range mutateSeeds(f) {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, object, old []byte) {
		obj, w, err := decodeWorkload(object)
		if err != nil {
			return
		}
		req := WorkloadRequest{Operation: OpCreate, Object: w, Written: writtenOf(obj)}
		if _, oldW, err := decodeWorkload(old); err == nil && oldW.Kind == w.Kind {
			req.Operation = OpUpdate
			req.Old = &Observed{Workload: oldW}
		}
		ops, result := mutateAndRefusal(req, testDefaults)
		if !result.Allowed() {
			assert.Empty(t, ops)
			return
		}
		doc, err := json.Marshal(obj)
		require.NoError(t, err)
		patched := decodeLike(t, obj, applyPatch(t, doc, ops))
		req.Object, req.Written = workloadOf(patched), writtenOf(patched)
		again, _ := mutateAndRefusal(req, testDefaults)
		assert.Empty(t, again, "second pass after %s", mustJSON(t, ops))
	})
}

func mustJSON(t *testing.T, v any) string {
	data, err := json.Marshal(v)
	require.NoError(t, err)
	return string(data)
}

// mutateAndRefusal is MutateWorkload with, for a workload that is not
// Mutable, the annotation denials that make it so (the review engine answers
// such a workload with the whole validation verdict).
func mutateAndRefusal(req WorkloadRequest, d Defaults) ([]jsonpatch.Operation, Result) {
	ops := MutateWorkload(req, d)
	if Mutable(req.Object) {
		return ops, Result{}
	}
	return ops, checkAnnotations(req.Object)
}

// TestClaimTemplateIsAClaim: the lean claim template encodes to the same
// bytes as the typed PersistentVolumeClaim it stands for (without status),
// for every field it sets, and its annotation is AnnotationInjected.
func TestClaimTemplateIsAClaim(t *testing.T) {
	type typedClaim struct {
		metav1.ObjectMeta `json:"metadata"`
		Spec              corev1.PersistentVolumeClaimSpec `json:"spec"`
	}
	for _, c := range []struct {
		name, size, class string
	}{
		{"data", "1Gi", ""},
		{"wal", "500M", "fast-ssd"},
		{`odd "name" <&>` + "\u2028\x01", "1.5Ti", "é"},
	} {
		size := resource.MustParse(c.size)
		want := typedClaim{
			ObjectMeta: metav1.ObjectMeta{Name: c.name, Annotations: map[string]string{AnnotationInjected: "true"}},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
			},
		}
		if c.class != "" {
			want.Spec.StorageClassName = &c.class
		}
		wantJSON, err := json.Marshal(want)
		require.NoError(t, err)
		got, err := json.Marshal(newClaimTemplate(c.name, size, c.class))
		require.NoError(t, err)
		assert.Equal(t, string(wantJSON), string(got))
	}
}
