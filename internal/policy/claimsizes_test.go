package policy

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gomodules.xyz/jsonpatch/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// storedClaimTemplate is a claim template as the API server keeps it (and
// defaults an incoming one): volumeMode and status filled in.
func storedClaimTemplate(name, size string, class *string) corev1.PersistentVolumeClaim {
	t := claimTemplate(name, size)
	t.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeFilesystem)
	t.Spec.StorageClassName = class
	t.Status.Phase = corev1.ClaimPending
	return t
}

// chartDB is a StatefulSet as a chart writes it: its own claim templates,
// the statekeeper.io/claim-sizes annotation when recorded is not "".
func chartDB(recorded string, templates ...corev1.PersistentVolumeClaim) *appsv1.StatefulSet {
	return stsFixture("db", "stateful-multi", stsReplicas(ptr.To[int32](2)), stsMounts("data", "logs"), stsTemplates(templates...),
		func(s *appsv1.StatefulSet) {
			s.Spec.ServiceName = "db-headless"
			s.Spec.Template.Labels[LabelDeployType] = "stateful-multi"
			if recorded != "" {
				s.Annotations = map[string]string{AnnotationClaimSizes: recorded}
			}
		})
}

func TestMutateResizedClaimTemplates(t *testing.T) {
	data1, logs1 := storedClaimTemplate("data", "1Gi", nil), storedClaimTemplate("logs", "1Gi", nil)
	stored := chartDB("", data1, logs1)
	tests := []mutateCase{
		{
			name:   "a larger size: the stored one is kept and the larger one recorded",
			object: chartDB("", storedClaimTemplate("data", "20Gi", nil), logs1),
			old:    stored,
			want: `[
				{"op":"replace","path":"/spec/volumeClaimTemplates/0/spec/resources/requests/storage","value":"1Gi"},
				{"op":"add","path":"/metadata/annotations","value":{"statekeeper.io/claim-sizes":"data=20Gi"}}
			]`,
		},
		{
			name:   "two templates grow: both recorded, by name",
			object: chartDB("", storedClaimTemplate("data", "20Gi", nil), storedClaimTemplate("logs", "5Gi", nil)),
			old:    stored,
			want: `[
				{"op":"replace","path":"/spec/volumeClaimTemplates/0/spec/resources/requests/storage","value":"1Gi"},
				{"op":"replace","path":"/spec/volumeClaimTemplates/1/spec/resources/requests/storage","value":"1Gi"},
				{"op":"add","path":"/metadata/annotations","value":{"statekeeper.io/claim-sizes":"data=20Gi,logs=5Gi"}}
			]`,
		},
		{
			name: "next to the user's annotations the recorded one is added",
			object: func() *appsv1.StatefulSet {
				s := chartDB("", storedClaimTemplate("data", "20Gi", nil), logs1)
				s.Annotations = map[string]string{"team": "db"}
				return s
			}(),
			old: stored,
			want: `[
				{"op":"replace","path":"/spec/volumeClaimTemplates/0/spec/resources/requests/storage","value":"1Gi"},
				{"op":"add","path":"/metadata/annotations/statekeeper.io~1claim-sizes","value":"data=20Gi"}
			]`,
		},
		{
			name:   "re-applying the manifest that omits the annotation carries it over (server-side apply, replace)",
			object: chartDB("", storedClaimTemplate("data", "20Gi", nil), logs1),
			old:    chartDB("data=20Gi", data1, logs1),
			want: `[
				{"op":"replace","path":"/spec/volumeClaimTemplates/0/spec/resources/requests/storage","value":"1Gi"},
				{"op":"add","path":"/metadata/annotations","value":{"statekeeper.io/claim-sizes":"data=20Gi"}}
			]`,
		},
		{
			name:   "an unrelated update carries the annotation over",
			object: chartDB("", data1, logs1),
			old:    chartDB("data=20Gi", data1, logs1),
			want:   `[{"op":"add","path":"/metadata/annotations","value":{"statekeeper.io/claim-sizes":"data=20Gi"}}]`,
		},
		{
			name:   "a record lowered by hand is written back: sizes only grow",
			object: chartDB("data=1Gi,logs=2Gi", data1, logs1),
			old:    chartDB("data=20Gi", data1, logs1),
			want:   `[{"op":"replace","path":"/metadata/annotations/statekeeper.io~1claim-sizes","value":"data=20Gi,logs=2Gi"}]`,
		},
		{
			name:   "a record this mutation raised, seen again against the same stored object, stays",
			object: chartDB("data=30Gi", data1, logs1),
			old:    chartDB("data=20Gi", data1, logs1),
		},
		{
			name:   "the object as stored is settled",
			object: chartDB("data=20Gi", data1, logs1),
			old:    chartDB("data=20Gi", data1, logs1),
		},
		{
			name:   "a size below the recorded one is put back without lowering the record",
			object: chartDB("data=20Gi", storedClaimTemplate("data", "10Gi", nil), logs1),
			old:    chartDB("data=20Gi", data1, logs1),
			want:   `[{"op":"replace","path":"/spec/volumeClaimTemplates/0/spec/resources/requests/storage","value":"1Gi"}]`,
		},
		{
			name:   "a larger size again raises the record",
			object: chartDB("data=20Gi", storedClaimTemplate("data", "30Gi", nil), logs1),
			old:    chartDB("data=20Gi", data1, logs1),
			want: `[
				{"op":"replace","path":"/spec/volumeClaimTemplates/0/spec/resources/requests/storage","value":"1Gi"},
				{"op":"replace","path":"/metadata/annotations/statekeeper.io~1claim-sizes","value":"data=30Gi"}
			]`,
		},
		{
			name:   "a size together with another change is left to the API server (and refused, CheckClaimTemplateResize)",
			object: chartDB("", storedClaimTemplate("data", "20Gi", ptr.To("fast")), logs1),
			old:    stored,
		},
		{
			name:   "a template added is left to the API server",
			object: chartDB("", data1, logs1, storedClaimTemplate("backup", "1Gi", nil)),
			old:    stored,
		},
	}
	for _, tt := range tests {
		tt.op = OpUpdate
		t.Run(tt.name, func(t *testing.T) { runSettling(t, tt) })
	}

	t.Run("templates the API server lets change are left as written", func(t *testing.T) {
		req := WorkloadRequest{Operation: OpUpdate, ClaimTemplatesMutable: true,
			Object: FromStatefulSet(chartDB("", storedClaimTemplate("data", "20Gi", nil), logs1)),
			Old:    &Observed{Workload: FromStatefulSet(stored)}}
		assert.Empty(t, MutateWorkload(req, testDefaults))
	})
}

func TestMutateResizedClaimTemplatesBesideInjected(t *testing.T) {
	// The manifest has the user's template; statekeeper injected "logs" at CREATE.
	injectedLogs := injected("logs", "1Gi", nil)
	injectedLogs.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeFilesystem)
	injectedLogs.Status.Phase = corev1.ClaimPending
	stored := chartDB("", storedClaimTemplate("data", "1Gi", nil), injectedLogs)
	tt := mutateCase{
		name:   "the injected template is carried over, the user's resized",
		op:     OpUpdate,
		object: chartDB("", storedClaimTemplate("data", "20Gi", nil)),
		old:    stored,
		want: `[
			{"op":"add","path":"/spec/volumeClaimTemplates/-","value":{"metadata":{"name":"logs","annotations":{"statekeeper.io/injected":"true"}},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}},"volumeMode":"Filesystem"},"status":{"phase":"Pending"}}},
			{"op":"replace","path":"/spec/volumeClaimTemplates/0/spec/resources/requests/storage","value":"1Gi"},
			{"op":"add","path":"/metadata/annotations","value":{"statekeeper.io/claim-sizes":"data=20Gi"}}
		]`,
		wantAfter: func(t *testing.T, patched any) {
			assert.Equal(t, stored.Spec.VolumeClaimTemplates, patched.(*appsv1.StatefulSet).Spec.VolumeClaimTemplates)
		},
	}
	runSettling(t, tt)
}

// runSettling runs a StatefulSet UPDATE's mutation as the API server sees
// it twice: the patch against the stored object is c.want; the same
// manifest applied again, against what the first write stored, yields the
// same object (the API server then writes nothing); and the stored object
// itself needs no patch.
func runSettling(t *testing.T, c mutateCase) {
	t.Helper()
	mutate := func(object, old any) []jsonpatch.Operation {
		req := c.request(object)
		req.Old = &Observed{Workload: workloadOf(old)}
		return MutateWorkload(req, testDefaults)
	}
	doc, err := json.Marshal(c.object)
	require.NoError(t, err)
	ops := mutate(c.object, c.old)
	assertPatch(t, c.want, ops)
	patched := decodeLike(t, c.object, applyPatch(t, doc, ops))

	again := decodeLike(t, c.object, applyPatch(t, doc, mutate(c.object, patched)))
	assert.Equal(t, patched, again, "the same manifest applied again")
	assert.Empty(t, mutate(patched, patched), "the stored object")
	if c.wantAfter != nil {
		c.wantAfter(t, patched)
	}
}

func TestCheckClaimTemplateResize(t *testing.T) {
	q := resource.MustParse
	classes := []storagev1.StorageClass{
		storageClass("standard", ptr.To(true), true),
		storageClass("fixed", nil, false),
		storageClass("fast", ptr.To(true), false),
	}
	claim := func(name, size string, class *string) corev1.PersistentVolumeClaim {
		c := corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"}}
		c.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: q(size)}
		c.Spec.StorageClassName = class
		return c
	}
	data1, logs1 := storedClaimTemplate("data", "1Gi", nil), storedClaimTemplate("logs", "1Gi", nil)
	db := FromStatefulSet(chartDB(""))
	classAt := pathClaimTemplates.Index(0).Child("spec", "storageClassName")
	tests := []struct {
		name    string
		old     *appsv1.StatefulSet
		object  *appsv1.StatefulSet
		classes []storagev1.StorageClass
		claims  []corev1.PersistentVolumeClaim
		mutable bool
		want    Result
	}{
		{
			name:   "growth on the default class: warned that the template stays and the claims grow",
			old:    chartDB("", data1, logs1),
			object: chartDB("", storedClaimTemplate("data", "20Gi", nil), logs1),
			claims: []corev1.PersistentVolumeClaim{claim("data-db-0", "1Gi", ptr.To("standard"))},
			want:   warned(RuleStorageResize, pathClaimTemplates.Index(0).Child("spec", "resources", "requests").Key("storage"), msgTemplateKept(db, "data", q("1Gi"), q("20Gi"))),
		},
		{
			name:   "the recorded size again: settled, nothing said",
			old:    chartDB("data=20Gi", data1, logs1),
			object: chartDB("", storedClaimTemplate("data", "20Gi", nil), logs1),
		},
		{
			name:   "the size a claim already requests: nothing said",
			old:    chartDB("", data1, logs1),
			object: chartDB("", storedClaimTemplate("data", "5Gi", nil), logs1),
			claims: []corev1.PersistentVolumeClaim{claim("data-db-1", "5Gi", ptr.To("standard"))},
		},
		{
			name:   "below the recorded size: denied",
			old:    chartDB("data=20Gi", data1, logs1),
			object: chartDB("", storedClaimTemplate("data", "10Gi", nil), logs1),
			want:   denied(RuleStorageResize, pathClaimTemplates.Index(0).Child("spec", "resources", "requests").Key("storage"), msgTemplateShrink(db, "data", q("20Gi"), q("10Gi"))),
		},
		{
			name:   "below the stored template: denied",
			old:    chartDB("", storedClaimTemplate("data", "10Gi", nil), logs1),
			object: chartDB("", storedClaimTemplate("data", "5Gi", nil), logs1),
			want:   denied(RuleStorageResize, pathClaimTemplates.Index(0).Child("spec", "resources", "requests").Key("storage"), msgTemplateShrink(db, "data", q("10Gi"), q("5Gi"))),
		},
		{
			name:   "below what an existing claim requests: denied",
			old:    chartDB("", data1, logs1),
			object: chartDB("", storedClaimTemplate("data", "20Gi", nil), logs1),
			claims: []corev1.PersistentVolumeClaim{claim("data-db-0", "50Gi", ptr.To("standard"))},
			want:   denied(RuleStorageResize, pathClaimTemplates.Index(0).Child("spec", "resources", "requests").Key("storage"), msgTemplateShrink(db, "data", q("50Gi"), q("20Gi"))),
		},
		{
			name:   "the template's class cannot expand: denied, naming it",
			old:    chartDB("", storedClaimTemplate("data", "1Gi", ptr.To("fixed")), logs1),
			object: chartDB("", storedClaimTemplate("data", "20Gi", ptr.To("fixed")), logs1),
			want:   denied(RuleStorageResize, classAt, msgTemplateClassRefuses(db, "data", "", "fixed", q("1Gi"), q("20Gi"))),
		},
		{
			name:    "the default class cannot expand: denied, naming it",
			old:     chartDB("", data1, logs1),
			object:  chartDB("", storedClaimTemplate("data", "20Gi", nil), logs1),
			classes: []storagev1.StorageClass{storageClass("fixed", nil, true)},
			want:    denied(RuleStorageResize, classAt, msgTemplateClassRefuses(db, "data", "", "fixed", q("1Gi"), q("20Gi"))),
		},
		{
			name:   "an existing claim's class cannot expand: denied, naming it and the claim",
			old:    chartDB("", data1, logs1),
			object: chartDB("", storedClaimTemplate("data", "20Gi", nil), logs1),
			claims: []corev1.PersistentVolumeClaim{claim("data-db-0", "1Gi", ptr.To("standard")), claim("data-db-1", "1Gi", ptr.To("fixed"))},
			want:   denied(RuleStorageResize, classAt, msgTemplateClassRefuses(db, "data", "data-db-1", "fixed", q("1Gi"), q("20Gi"))),
		},
		{
			name:    "no class and no default: denied",
			old:     chartDB("", data1, logs1),
			object:  chartDB("", storedClaimTemplate("data", "20Gi", nil), logs1),
			classes: []storagev1.StorageClass{storageClass("fixed", nil, false)},
			want:    denied(RuleStorageResize, classAt, msgTemplateNoClass(db, "data", "", q("1Gi"), q("20Gi"))),
		},
		{
			name:   "a class that does not exist: warned, with the template kept",
			old:    chartDB("", storedClaimTemplate("data", "1Gi", ptr.To("gone")), logs1),
			object: chartDB("", storedClaimTemplate("data", "20Gi", ptr.To("gone")), logs1),
			want: Result{Warnings: []Violation{
				{Rule: RuleStorageResize, Field: classAt, Message: msgStorageClassMissing(db, "data", "gone", q("20Gi"))},
				{Rule: RuleStorageResize, Field: pathClaimTemplates.Index(0).Child("spec", "resources", "requests").Key("storage"), Message: msgTemplateKept(db, "data", q("1Gi"), q("20Gi"))},
			}},
		},
		{
			name:   "a size changed with the class: denied, with the orphan-delete step",
			old:    chartDB("", data1, logs1),
			object: chartDB("", storedClaimTemplate("data", "20Gi", ptr.To("fast")), logs1),
			want:   denied(RuleStorageResize, pathClaimTemplates, msgTemplateResizeMixed(db, "data", q("1Gi"), q("20Gi"))),
		},
		{
			name:   "a size changed with a template added: denied",
			old:    chartDB("", data1, logs1),
			object: chartDB("", storedClaimTemplate("data", "20Gi", nil), logs1, storedClaimTemplate("backup", "1Gi", nil)),
			want:   denied(RuleStorageResize, pathClaimTemplates, msgTemplateResizeMixed(db, "data", q("1Gi"), q("20Gi"))),
		},
		{
			name:   "another change alone is the API server's to refuse",
			old:    chartDB("", data1, logs1),
			object: chartDB("", storedClaimTemplate("data", "1Gi", ptr.To("fast")), logs1),
		},
		{
			name:    "templates the API server lets change: refusals only, no warning",
			old:     chartDB("", data1, logs1),
			object:  chartDB("", storedClaimTemplate("data", "20Gi", nil), logs1),
			mutable: true,
		},
		{
			name:    "templates the API server lets change: a shrink is still refused",
			old:     chartDB("", storedClaimTemplate("data", "10Gi", nil), logs1),
			object:  chartDB("", storedClaimTemplate("data", "5Gi", nil), logs1),
			mutable: true,
			want:    denied(RuleStorageResize, pathClaimTemplates.Index(0).Child("spec", "resources", "requests").Key("storage"), msgTemplateShrink(db, "data", q("10Gi"), q("5Gi"))),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := classes
			if tt.classes != nil {
				c = tt.classes
			}
			req := WorkloadRequest{
				Operation: OpUpdate, Object: FromStatefulSet(tt.object), Old: &Observed{Workload: FromStatefulSet(tt.old)},
				StorageClasses: c, TemplateClaims: tt.claims, ClaimTemplatesMutable: tt.mutable,
			}
			assert.Equal(t, tt.want, CheckClaimTemplateResize(req))
		})
	}
}

func TestResizesClaimTemplates(t *testing.T) {
	data1, logs1 := storedClaimTemplate("data", "1Gi", nil), storedClaimTemplate("logs", "1Gi", nil)
	old := &Observed{Workload: FromStatefulSet(chartDB("", data1, logs1))}
	assert.True(t, ResizesClaimTemplates(FromStatefulSet(chartDB("", storedClaimTemplate("data", "2Gi", nil), logs1)), old))
	assert.True(t, ResizesClaimTemplates(FromStatefulSet(chartDB("", storedClaimTemplate("data", "2Gi", ptr.To("fast")))), old), "with other changes")
	assert.False(t, ResizesClaimTemplates(FromStatefulSet(chartDB("", storedClaimTemplate("data", "1024Mi", nil), logs1)), old), "the same size written differently")
	assert.False(t, ResizesClaimTemplates(FromStatefulSet(chartDB("", storedClaimTemplate("data", "1Gi", ptr.To("fast")), logs1)), old))
	assert.False(t, ResizesClaimTemplates(FromStatefulSet(chartDB("", storedClaimTemplate("data", "2Gi", nil), logs1)), nil), "a CREATE")
}

func TestWantedClaimSizes(t *testing.T) {
	q := resource.MustParse
	sts := FromStatefulSet(stsFixture("db", "stateful-multi", stsMounts("data", "logs", "wal"),
		stsTemplates(injected("data", "1Gi", nil), claimTemplate("logs", "1Gi"), claimTemplate("wal", "1Gi")),
		stsAnnotations(AnnotationStorageSize, "2Gi", AnnotationClaimSizes, "logs=5Gi,data=3Gi,gone=9Gi,broken=x,=1Gi")))
	assert.Equal(t, ClaimSizes{"data": q("3Gi"), "logs": q("5Gi")}, WantedClaimSizes(sts),
		"the larger of storage-size and the record for an injected template; only templates the statefulset has; unreadable entries left out")
	assert.Equal(t, "data=3Gi,logs=5Gi", WantedClaimSizes(sts).String())
	assert.Nil(t, WantedClaimSizes(FromStatefulSet(stsFixture("db", "stateful-multi", stsTemplates(claimTemplate("logs", "1Gi"))))))
}

func TestPlanClaimGrowthOfRecordedSizes(t *testing.T) {
	q := resource.MustParse
	sts := FromStatefulSet(stsFixture("db", "stateful-multi", stsMounts("data"),
		stsTemplates(claimTemplate("data", "1Gi")), stsAnnotations(AnnotationClaimSizes, "data=20Gi")))
	claim := func(name, size, class string, phase corev1.PersistentVolumeClaimPhase) corev1.PersistentVolumeClaim {
		c := corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"}}
		c.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: q(size)}
		c.Spec.StorageClassName = &class
		c.Status.Phase = phase
		return c
	}
	classes := []storagev1.StorageClass{storageClass("standard", ptr.To(true), true), storageClass("fixed", nil, false)}
	assert.Equal(t, []ClaimStep{
		{Claim: "data-db-0", Action: ClaimGrow, From: q("1Gi"), To: q("20Gi")},
		{Claim: "data-db-5", Action: ClaimWaitBound, From: q("1Gi"), To: q("20Gi")},
		{Claim: "data-db-6", Action: ClaimRefused, From: q("1Gi"), To: q("20Gi"),
			Reason: msgClaimClassRefuses(sts, "data-db-6", "fixed", q("20Gi"), AnnotationClaimSizes)},
	}, PlanClaimGrowth(sts, []corev1.PersistentVolumeClaim{
		claim("data-db-0", "1Gi", "standard", corev1.ClaimBound),
		claim("data-db-1", "20Gi", "standard", corev1.ClaimBound),
		claim("data-db-5", "1Gi", "standard", corev1.ClaimPending),
		claim("data-db-6", "1Gi", "fixed", corev1.ClaimBound),
		claim("data-other-0", "1Gi", "standard", corev1.ClaimBound),
	}, classes))
	assert.True(t, IsSizedClaimOf("data-db-3", sts))
	assert.False(t, IsSizedClaimOf("logs-db-3", sts))
}

func TestClaimOwners(t *testing.T) {
	assert.Equal(t, []ClaimOwner{
		{Template: "data", StatefulSet: "my-db"},
		{Template: "data-my", StatefulSet: "db"},
	}, ClaimOwners("data-my-db-0"))
	assert.Equal(t, []ClaimOwner{{Template: "data", StatefulSet: "db"}}, ClaimOwners("data-db-12"))
	assert.Nil(t, ClaimOwners("data-db"))
	assert.Nil(t, ClaimOwners("db-0"))
	assert.Nil(t, ClaimOwners("-0"))
	assert.Nil(t, ClaimOwners(""))
}

func TestMutateNewClaim(t *testing.T) {
	sts := FromStatefulSet(stsFixture("db", "stateful-multi", stsMounts("data"),
		stsTemplates(claimTemplate("data", "1Gi")), stsAnnotations(AnnotationClaimSizes, "data=20Gi")))
	newClaim := func(name, size string, labels map[string]string) *corev1.PersistentVolumeClaim {
		c := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: labels}}
		c.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}
		return c
	}
	ofDB := map[string]string{"app": "db"}
	tests := []struct {
		name     string
		claim    *corev1.PersistentVolumeClaim
		template string
		want     string
	}{
		{"a new ordinal's claim gets the recorded size", newClaim("data-db-2", "1Gi", ofDB), "data",
			`[{"op":"replace","path":"/spec/resources/requests/storage","value":"20Gi"}]`},
		{"a claim already as large is left alone", newClaim("data-db-2", "20Gi", ofDB), "data", ""},
		{"a claim without the statefulset's labels is not its", newClaim("data-db-2", "1Gi", map[string]string{"app": "other"}), "data", ""},
		{"a claim of another template is left alone", newClaim("logs-db-2", "1Gi", ofDB), "logs", ""},
		{"a claim of no ordinal is not the statefulset's", newClaim("data-db-x", "1Gi", ofDB), "data", ""},
		{"a claim without a spec gets one", &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data-db-3", Labels: ofDB}}, "data",
			`[{"op":"add","path":"/spec","value":{"resources":{"requests":{"storage":"20Gi"}}}}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertPatch(t, tt.want, MutateNewClaim(tt.claim, sts, tt.template))
		})
	}
}

func TestClaimSizesKey(t *testing.T) {
	db := FromStatefulSet(stsFixture("db", "stateful-multi"))
	written := WrittenKeys{
		Annotations:         map[string]string{AnnotationClaimSizes: "data=2Gi"},
		TemplateAnnotations: map[string]string{AnnotationClaimSizes: "data=2Gi"},
	}
	assert.Equal(t, warned(RuleUnknownKey, pathTemplateAnnotations.Key(AnnotationClaimSizes),
		msgMisplacedKey(db, true, AnnotationClaimSizes, asAnnotation, pathTemplateAnnotations, []KeyPlace{PlaceRecordedAnnotation})),
		checkKeys(db, written, true), "read on the statefulset's own metadata only")
}

func TestClaimsAwaitingExpansion(t *testing.T) {
	sts := FromStatefulSet(stsFixture("db", "stateful-multi", stsMounts("data"),
		stsTemplates(claimTemplate("data", "1Gi")), stsAnnotations(AnnotationClaimSizes, "data=20Gi")))
	claim := func(name, request, capacity string, phase corev1.PersistentVolumeClaimPhase) corev1.PersistentVolumeClaim {
		c := corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name}}
		c.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(request)}
		if capacity != "" {
			c.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(capacity)}
		}
		c.Status.Phase = phase
		return c
	}
	assert.Equal(t, 3, ClaimsAwaitingExpansion(sts, []corev1.PersistentVolumeClaim{
		claim("data-db-0", "20Gi", "1Gi", corev1.ClaimBound),   // requested, the volume not grown yet
		claim("data-db-1", "1Gi", "1Gi", corev1.ClaimBound),    // not requested yet
		claim("data-db-2", "1Gi", "", corev1.ClaimPending),     // made before the record, waits to bind
		claim("data-db-3", "20Gi", "20Gi", corev1.ClaimBound),  // done
		claim("data-db-4", "20Gi", "", corev1.ClaimPending),    // made at the size, being provisioned
		claim("data-other-0", "1Gi", "1Gi", corev1.ClaimBound), // not the statefulset's
	}))
}

func TestAuditClaimExpansion(t *testing.T) {
	q := resource.MustParse
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	sts := FromStatefulSet(stsFixture("db", "stateful-multi", stsMounts("data", "logs"),
		stsTemplates(claimTemplate("data", "1Gi"), claimTemplate("logs", "1Gi"))))
	claim := func(name, request, capacity string, conditions ...corev1.PersistentVolumeClaimCondition) corev1.PersistentVolumeClaim {
		c := corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name}}
		c.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: q(request)}
		c.Status.Phase = corev1.ClaimBound
		c.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: q(capacity)}
		c.Status.Conditions = conditions
		return c
	}
	condition := func(typ corev1.PersistentVolumeClaimConditionType, ago time.Duration, message string) corev1.PersistentVolumeClaimCondition {
		return corev1.PersistentVolumeClaimCondition{Type: typ, Status: corev1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(now.Add(-ago)), Message: message}
	}
	infeasible := claim("data-db-2", "20Gi", "1Gi")
	infeasible.Status.AllocatedResourceStatuses = map[corev1.ResourceName]corev1.ClaimResourceStatus{
		corev1.ResourceStorage: corev1.PersistentVolumeClaimControllerResizeInfeasible,
	}
	got := AuditClaimExpansion(sts, []corev1.PersistentVolumeClaim{
		claim("data-db-0", "20Gi", "1Gi", condition(corev1.PersistentVolumeClaimResizing, 2*time.Hour, "")),
		claim("data-db-1", "20Gi", "1Gi", condition(corev1.PersistentVolumeClaimControllerResizeError, time.Minute, "quota exceeded")),
		infeasible,
		claim("logs-db-0", "5Gi", "1Gi", condition(corev1.PersistentVolumeClaimFileSystemResizePending, 10*time.Minute, "")), // under way, not for long
		claim("logs-db-1", "5Gi", "1Gi"), // requested, nothing reported yet
		claim("logs-db-2", "5Gi", "5Gi", condition(corev1.PersistentVolumeClaimResizing, 3*time.Hour, "")),                   // done
		claim("data-other-0", "20Gi", "1Gi", condition(corev1.PersistentVolumeClaimControllerResizeError, time.Minute, "x")), // not the statefulset's
	}, now)
	data := pathClaimTemplates.Index(0)
	assert.Equal(t, Result{
		Denials: []Violation{
			{Rule: RuleStorageResize, Field: data, Message: msgClaimExpansionFailed(sts, "data-db-1", q("20Gi"), "ControllerResizeError: quota exceeded")},
			{Rule: RuleStorageResize, Field: data, Message: msgClaimExpansionFailed(sts, "data-db-2", q("20Gi"), "ControllerResizeInfeasible")},
		},
		Warnings: []Violation{
			{Rule: RuleStorageResize, Field: data, Message: msgClaimExpansionPending(sts, "data-db-0", q("1Gi"), q("20Gi"), now.Add(-2*time.Hour))},
		},
	}, got)
	assert.Equal(t, `claim "data-db-0" of statefulset "db" has been growing from 1Gi to 20Gi since 2026-12-07T10:00:00Z: the storage provider or the kubelet has not finished; `+
		`read the claim's conditions and events (kubectl describe pvc data-db-0); a FileSystemResizePending claim grows when its pod restarts`, got.Warnings[0].Message)
}
