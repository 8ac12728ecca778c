package policy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func injected(name, size string, class *string) corev1.PersistentVolumeClaim {
	t := claimTemplate(name, size)
	t.Annotations = map[string]string{AnnotationInjected: "true"}
	t.Spec.StorageClassName = class
	return t
}

func storageClass(name string, expands *bool, isDefault bool) storagev1.StorageClass {
	c := storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, AllowVolumeExpansion: expands}
	if isDefault {
		c.Annotations = map[string]string{annotationDefaultClass: "true"}
	}
	return c
}

func TestValidateStorageResize(t *testing.T) {
	sized := func(size string, templates ...corev1.PersistentVolumeClaim) Workload {
		edits := []func(*appsv1.StatefulSet){stsMounts("data"), stsTemplates(templates...)}
		if size != "" {
			edits = append(edits, stsAnnotations(AnnotationStorageSize, size))
		}
		return FromStatefulSet(stsFixture("db", "stateful-multi", edits...))
	}
	classes := []storagev1.StorageClass{
		storageClass("standard", ptr.To(true), true),
		storageClass("fixed", nil, false),
	}
	at := pathAnnotations.Key(AnnotationStorageSize)
	db := sized("1Gi")
	q := resource.MustParse
	tests := []struct {
		name    string
		old     Workload
		object  Workload
		classes []storagev1.StorageClass
		want    Result
	}{
		{"growth on the default class that expands: allowed",
			sized("1Gi", injected("data", "1Gi", nil)), sized("2Gi", injected("data", "1Gi", nil)), classes, Result{}},
		{"first annotation, larger than the injected template: allowed",
			sized("", injected("data", "1Gi", nil)), sized("5Gi", injected("data", "1Gi", nil)), classes, Result{}},
		{"unchanged: allowed", sized("1Gi", injected("data", "1Gi", ptr.To("fixed"))), sized("1Gi", injected("data", "1Gi", ptr.To("fixed"))), nil, Result{}},
		{"the same size written differently: allowed",
			sized("1Gi", injected("data", "1Gi", ptr.To("fixed"))), sized("1024Mi", injected("data", "1Gi", ptr.To("fixed"))), classes, Result{}},
		{"shrink: denied",
			sized("2Gi", injected("data", "1Gi", nil)), sized("1Gi", injected("data", "1Gi", nil)), classes,
			denied(RuleStorageResize, at, msgStorageShrink(db, q("2Gi"), q("1Gi")))},
		{"shrink below the injected template: denied",
			sized("", injected("data", "10Gi", nil)), sized("1Gi", injected("data", "10Gi", nil)), classes,
			denied(RuleStorageResize, at, msgStorageShrink(db, q("10Gi"), q("1Gi")))},
		{"a class that cannot expand: denied, naming it",
			sized("1Gi", injected("data", "1Gi", ptr.To("fixed"))), sized("2Gi", injected("data", "1Gi", ptr.To("fixed"))), classes,
			denied(RuleStorageResize, at, msgStorageClassRefuses(db, "data", "fixed", q("1Gi"), q("2Gi")))},
		{"no class and no default: denied",
			sized("1Gi", injected("data", "1Gi", nil)), sized("2Gi", injected("data", "1Gi", nil)), classes[1:],
			denied(RuleStorageResize, at, msgStorageNoClass(db, "data", q("1Gi"), q("2Gi")))},
		{"a class that does not exist: warned",
			sized("1Gi", injected("data", "1Gi", ptr.To("gone"))), sized("2Gi", injected("data", "1Gi", ptr.To("gone"))), classes,
			warned(RuleStorageResize, at, msgStorageClassMissing(db, "data", "gone", q("2Gi")))},
		{"templates the user wrote: warned that nothing grows",
			sized("1Gi", claimTemplate("data", "1Gi")), sized("2Gi", claimTemplate("data", "1Gi")), classes,
			warned(RuleStorageResize, at, msgStorageNoInjectedTemplate(db, q("2Gi")))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ValidateWorkload(WorkloadRequest{
				Operation: OpUpdate, Object: tt.object, Old: &Observed{Workload: tt.old}, StorageClasses: tt.classes,
			})
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestPlanClaimGrowth(t *testing.T) {
	sts := FromStatefulSet(stsFixture("db", "stateful-multi", stsMounts("data", "logs"),
		stsTemplates(injected("data", "1Gi", nil), claimTemplate("logs", "1Gi")),
		stsAnnotations(AnnotationStorageSize, "2Gi")))
	claim := func(name, size string, class string, phase corev1.PersistentVolumeClaimPhase) corev1.PersistentVolumeClaim {
		c := corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"}}
		c.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}
		if class != "" {
			c.Spec.StorageClassName = &class
		}
		c.Status.Phase = phase
		return c
	}
	classes := []storagev1.StorageClass{storageClass("standard", ptr.To(true), true), storageClass("fixed", ptr.To(false), false)}
	q := resource.MustParse
	got := PlanClaimGrowth(sts, []corev1.PersistentVolumeClaim{
		claim("data-db-0", "1Gi", "standard", corev1.ClaimBound),
		claim("data-db-1", "2Gi", "standard", corev1.ClaimBound),       // grown already
		claim("data-db-2", "1Gi", "standard", corev1.ClaimPending),     // a new instance's claim, not bound yet
		claim("data-db-7", "1Gi", "fixed", corev1.ClaimBound),          // retained from a larger scale, class cannot expand
		claim("data-db-8", "1Gi", "", corev1.ClaimBound),               // no class
		claim("logs-db-0", "1Gi", "standard", corev1.ClaimBound),       // the user's template
		claim("data-db-other-0", "1Gi", "standard", corev1.ClaimBound), // another statefulset's
		claim("data-dbx-0", "1Gi", "standard", corev1.ClaimBound),
		claim("data-db-x", "1Gi", "standard", corev1.ClaimBound),
	}, classes)
	assert.Equal(t, []ClaimStep{
		{Claim: "data-db-0", Action: ClaimGrow, From: q("1Gi"), To: q("2Gi")},
		{Claim: "data-db-2", Action: ClaimWaitBound, From: q("1Gi"), To: q("2Gi")},
		{Claim: "data-db-7", Action: ClaimRefused, From: q("1Gi"), To: q("2Gi"), Reason: msgClaimClassRefuses(sts, "data-db-7", "fixed", q("2Gi"), AnnotationStorageSize)},
		{Claim: "data-db-8", Action: ClaimRefused, From: q("1Gi"), To: q("2Gi"), Reason: msgClaimClassRefuses(sts, "data-db-8", "", q("2Gi"), AnnotationStorageSize)},
	}, got)

	delete(sts.Annotations, AnnotationStorageSize)
	assert.Empty(t, PlanClaimGrowth(sts, []corev1.PersistentVolumeClaim{claim("data-db-0", "1Gi", "standard", corev1.ClaimBound)}, classes),
		"without the annotation nothing grows")
}

func TestDefaultStorageClass(t *testing.T) {
	older := storageClass("old", nil, true)
	newer := storageClass("new", nil, true)
	newer.CreationTimestamp = metav1.Unix(100, 0)
	assert.Equal(t, "new", DefaultStorageClass([]storagev1.StorageClass{older, newer, storageClass("plain", nil, false)}))
	assert.Equal(t, "", DefaultStorageClass([]storagev1.StorageClass{storageClass("plain", nil, false)}))
}
