package policy

import (
	"iter"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// AnnotationInjected marks the volume claim templates statekeeper injected;
// the StatefulSet controller copies it onto their claims. Only those claims
// grow with statekeeper.io/storage-size: a template the user wrote is the
// user's to size.
const AnnotationInjected = "statekeeper.io/injected"

// annotationDefaultClass marks the cluster's default StorageClass.
const annotationDefaultClass = "storageclass.kubernetes.io/is-default-class"

// RequestedStorageSize is the size statekeeper.io/storage-size asks for; ok
// is false when the annotation is absent or not a positive quantity.
func RequestedStorageSize(w Workload) (resource.Quantity, bool) {
	v, ok := w.Annotations[AnnotationStorageSize]
	if !ok {
		return resource.Quantity{}, false
	}
	q, err := parseStorageSize(v)
	return q, err == nil
}

// InjectedClaimTemplates are the claim templates statekeeper injected.
func InjectedClaimTemplates(w Workload) []corev1.PersistentVolumeClaim {
	var out []corev1.PersistentVolumeClaim
	for _, t := range w.ClaimTemplates {
		if t.Annotations[AnnotationInjected] == "true" {
			out = append(out, t)
		}
	}
	return out
}

// DefaultStorageClass is the name of the class the API server gives a claim
// that names none: the default-annotated one, the newest when several are
// (as the DefaultStorageClass admission plugin picks), "" when none is.
func DefaultStorageClass(classes []storagev1.StorageClass) string {
	var best *storagev1.StorageClass
	for i := range classes {
		c := &classes[i]
		if c.Annotations[annotationDefaultClass] != "true" {
			continue
		}
		if best == nil || best.CreationTimestamp.Before(&c.CreationTimestamp) {
			best = c
		}
	}
	if best == nil {
		return ""
	}
	return best.Name
}

// ClaimAction is what the volume reconciler does about one claim.
type ClaimAction string

const (
	// ClaimGrow: the claim requests less than statekeeper.io/storage-size and
	// its class allows expansion; its request is raised.
	ClaimGrow ClaimAction = "grow"
	// ClaimWaitBound: only a bound claim can be expanded; the claim is grown
	// once it is bound.
	ClaimWaitBound ClaimAction = "wait-bound"
	// ClaimRefused: the claim's class cannot expand it; Reason names the class.
	ClaimRefused ClaimAction = "refused"
)

// ClaimStep is the reconciler's next step for one claim that is smaller than wanted.
type ClaimStep struct {
	Claim  string
	Action ClaimAction
	From   resource.Quantity
	To     resource.Quantity
	Reason string
}

// PlanClaimGrowth lists, in the order of claims, what to do about every
// claim of sts's templates that have a wanted size (WantedClaimSizes: the
// templates statekeeper injected, sized by statekeeper.io/storage-size, and
// those whose larger size is recorded in statekeeper.io/claim-sizes) that
// requests less than that size. Claims are named
// <template>-<statefulset>-<ordinal>; retained claims of scaled-down
// ordinals are included. A claim larger than wanted is left alone: claims
// cannot shrink, and admission refuses the shrink in the first place.
// classes are the cluster's StorageClasses.
func PlanClaimGrowth(sts Workload, claims []corev1.PersistentVolumeClaim, classes []storagev1.StorageClass) []ClaimStep {
	var steps []ClaimStep
	for claim, t := range sizedClaims(sts, claims) {
		template, want := t.name, t.size
		have := claim.Spec.Resources.Requests[corev1.ResourceStorage]
		if have.Cmp(want) >= 0 {
			continue
		}
		step := ClaimStep{Claim: claim.Name, From: have, To: want, Action: ClaimGrow}
		class := ""
		if claim.Spec.StorageClassName != nil {
			class = *claim.Spec.StorageClassName
		}
		switch {
		case claim.Status.Phase != corev1.ClaimBound:
			step.Action = ClaimWaitBound
		case !classExpands(class, classes):
			step.Action, step.Reason = ClaimRefused, msgClaimClassRefuses(sts, claim.Name, class, want, sizeSource(sts, template))
		}
		steps = append(steps, step)
	}
	return steps
}

// sizedTemplate is a claim template with a wanted size.
type sizedTemplate struct {
	name string
	size resource.Quantity
}

// sizedClaims yields the claims made from sts's templates that have a
// wanted size (WantedClaimSizes), each with its template and that size.
func sizedClaims(sts Workload, claims []corev1.PersistentVolumeClaim) iter.Seq2[*corev1.PersistentVolumeClaim, sizedTemplate] {
	wanted := WantedClaimSizes(sts)
	return func(yield func(*corev1.PersistentVolumeClaim, sizedTemplate) bool) {
		for i := range claims {
			template, ok := templateOfClaim(claims[i].Name, sts.Name, wanted)
			if ok && !yield(&claims[i], sizedTemplate{template, wanted[template]}) {
				return
			}
		}
	}
}

// IsSizedClaimOf reports whether the claim named claim was made from one
// of sts's templates that have a wanted size (WantedClaimSizes).
func IsSizedClaimOf(claim string, sts Workload) bool {
	_, ok := templateOfClaim(claim, sts.Name, WantedClaimSizes(sts))
	return ok
}

// templateOfClaim is the template of sizes that claim
// ("<template>-<statefulset>-<ordinal>") was made from.
func templateOfClaim(claim, sts string, sizes ClaimSizes) (string, bool) {
	for template := range sizes {
		if claimOfTemplate(claim, sts, template) {
			return template, true
		}
	}
	return "", false
}

// classExpands reports whether the class named exists and allows expansion.
// A claim of no class cannot be expanded (the API server refuses it).
func classExpands(name string, classes []storagev1.StorageClass) bool {
	c := findClass(name, classes)
	return c != nil && c.AllowVolumeExpansion != nil && *c.AllowVolumeExpansion
}

func findClass(name string, classes []storagev1.StorageClass) *storagev1.StorageClass {
	if name == "" {
		return nil
	}
	for i := range classes {
		if classes[i].Name == name {
			return &classes[i]
		}
	}
	return nil
}

// checkStorageResize judges a change of statekeeper.io/storage-size on a
// StatefulSet UPDATE: a shrink is refused (claims only grow), and so is a
// growth that a claim template's class cannot carry out. req.StorageClasses
// are the cluster's classes, looked up by the caller when the size changes.
func checkStorageResize(req WorkloadRequest, t DeployType) Result {
	w, old := req.Object, req.Old
	if w.Kind != KindStatefulSet || !t.Stateful() || old == nil {
		return Result{}
	}
	want, ok := RequestedStorageSize(w)
	if !ok {
		return Result{}
	}
	have, ok := currentStorageSize(old.Workload)
	if !ok || want.Cmp(have) == 0 {
		return Result{}
	}
	at := pathAnnotations.Key(AnnotationStorageSize)
	if want.Cmp(have) < 0 {
		return denied(RuleStorageResize, at, msgStorageShrink(w, have, want))
	}
	templates := InjectedClaimTemplates(w)
	if len(templates) == 0 {
		return warned(RuleStorageResize, at, msgStorageNoInjectedTemplate(w, want))
	}
	var r Result
	defaultClass := DefaultStorageClass(req.StorageClasses)
	for _, tpl := range templates {
		class := defaultClass
		if tpl.Spec.StorageClassName != nil && *tpl.Spec.StorageClassName != "" {
			class = *tpl.Spec.StorageClassName
		}
		switch c := findClass(class, req.StorageClasses); {
		case class == "":
			r.Add(denied(RuleStorageResize, at, msgStorageNoClass(w, tpl.Name, have, want)))
		case c == nil:
			r.Add(warned(RuleStorageResize, at, msgStorageClassMissing(w, tpl.Name, class, want)))
		case c.AllowVolumeExpansion == nil || !*c.AllowVolumeExpansion:
			r.Add(denied(RuleStorageResize, at, msgStorageClassRefuses(w, tpl.Name, class, have, want)))
		}
	}
	return r
}

// currentStorageSize is the size a StatefulSet's injected claims were asked
// for: its annotation, or else the largest injected template.
func currentStorageSize(w Workload) (resource.Quantity, bool) {
	if q, ok := RequestedStorageSize(w); ok {
		return q, true
	}
	var largest resource.Quantity
	found := false
	for _, t := range InjectedClaimTemplates(w) {
		if q, ok := t.Spec.Resources.Requests[corev1.ResourceStorage]; ok && (!found || q.Cmp(largest) > 0) {
			largest, found = q, true
		}
	}
	return largest, found
}
