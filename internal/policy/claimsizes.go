package policy

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Bigger volumes from the manifest itself (docs/spec.md §10): the API server
// refuses any change of a StatefulSet's volumeClaimTemplates, but mutating
// admission runs before that check. An UPDATE whose claim templates differ
// from the stored ones only by larger storage requests gets the stored
// requests back (so the API server accepts it), the larger sizes are
// recorded in AnnotationClaimSizes, and the claims follow the recorded
// sizes (PlanClaimGrowth, and a claim's CREATE: SizeNewClaim).

// ClaimSizes are the sizes recorded in AnnotationClaimSizes, by claim
// template name.
type ClaimSizes map[string]resource.Quantity

// RecordedClaimSizes are the sizes recorded on a StatefulSet (nil: none).
// An entry that cannot be read is left out: only statekeeper writes the
// annotation, and the next UPDATE writes it anew.
func RecordedClaimSizes(w Workload) ClaimSizes {
	return parseClaimSizes(w.Annotations[AnnotationClaimSizes])
}

// parseClaimSizes reads an AnnotationClaimSizes value, leaving out the
// entries it cannot read.
func parseClaimSizes(v string) ClaimSizes {
	if v == "" {
		return nil
	}
	var sizes ClaimSizes
	for entry := range strings.SplitSeq(v, ",") {
		name, size, ok := strings.Cut(strings.TrimSpace(entry), "=")
		if !ok || name == "" {
			continue
		}
		q, err := parseStorageSize(size)
		if err != nil {
			continue
		}
		if sizes == nil {
			sizes = ClaimSizes{}
		}
		sizes[name] = q
	}
	return sizes
}

// String is the annotation's value: "name=size" by template name, comma-separated.
func (s ClaimSizes) String() string {
	names := make([]string, 0, len(s))
	for name := range s {
		names = append(names, name)
	}
	slices.Sort(names)
	entries := make([]string, len(names))
	for i, name := range names {
		q := s[name]
		entries[i] = name + "=" + q.String()
	}
	return strings.Join(entries, ",")
}

// templateResize is how an UPDATE's claim templates differ from the stored
// ones, template by template.
type templateResize struct {
	// sizesOnly: the templates are the stored ones (the same names in the
	// same order) but for their storage requests, so putting the stored
	// requests back makes them equal.
	sizesOnly bool
	// resized are the templates whose storage request differs from the
	// stored template of the same name, in the object's order.
	resized []resizedTemplate
}

type resizedTemplate struct {
	index     int
	template  *corev1.PersistentVolumeClaim
	stored    resource.Quantity
	requested resource.Quantity
}

// compareClaimTemplates compares w's claim templates with the stored
// object's. The stored templates statekeeper injected for mounts the
// incoming object leaves unresolved are not compared: keepClaimTemplates
// carries them over.
func compareClaimTemplates(w Workload, old *Observed) templateResize {
	if old == nil || w.Kind != KindStatefulSet {
		return templateResize{}
	}
	carried := map[string]bool{}
	for _, name := range w.UnresolvedMounts() {
		carried[name] = true
	}
	var stored []*corev1.PersistentVolumeClaim
	for i := range old.ClaimTemplates {
		if t := &old.ClaimTemplates[i]; !carried[t.Name] {
			stored = append(stored, t)
		}
	}
	r := templateResize{sizesOnly: len(stored) == len(w.ClaimTemplates)}
	for i := range w.ClaimTemplates {
		t := &w.ClaimTemplates[i]
		var s *corev1.PersistentVolumeClaim
		for _, candidate := range stored {
			if candidate.Name == t.Name {
				s = candidate
				break
			}
		}
		if s == nil || (i < len(stored) && stored[i] != s) {
			r.sizesOnly = false
		}
		if s == nil {
			continue
		}
		requested, hasRequest := t.Spec.Resources.Requests[corev1.ResourceStorage]
		have, hadRequest := s.Spec.Resources.Requests[corev1.ResourceStorage]
		resized := hasRequest && hadRequest && requested.Cmp(have) != 0
		if resized {
			r.resized = append(r.resized, resizedTemplate{index: i, template: t, stored: have, requested: requested})
		}
		if !equalButStorage(t, s, resized) {
			r.sizesOnly = false
		}
	}
	if len(r.resized) == 0 {
		r.sizesOnly = false
	}
	return r
}

// equalButStorage reports whether t equals stored once its storage request
// is stored's (semantically, as the API server's immutability check compares).
func equalButStorage(t, stored *corev1.PersistentVolumeClaim, resized bool) bool {
	if !resized {
		return apiequality.Semantic.DeepEqual(t, stored)
	}
	c := t.DeepCopy()
	c.Spec.Resources.Requests[corev1.ResourceStorage] = stored.Spec.Resources.Requests[corev1.ResourceStorage]
	return apiequality.Semantic.DeepEqual(c, stored)
}

// claimSizeBaseline is what the claims of a template already ask for: the
// stored template, the size recorded, and every existing claim of it.
func claimSizeBaseline(sts Workload, template string, stored resource.Quantity, recorded ClaimSizes, claims []corev1.PersistentVolumeClaim) resource.Quantity {
	baseline := stored
	if q, ok := recorded[template]; ok && q.Cmp(baseline) > 0 {
		baseline = q
	}
	for i := range claims {
		if ok := claimOfTemplate(claims[i].Name, sts.Name, template); !ok {
			continue
		}
		if q, ok := claims[i].Spec.Resources.Requests[corev1.ResourceStorage]; ok && q.Cmp(baseline) > 0 {
			baseline = q
		}
	}
	return baseline
}

// CheckClaimTemplateResize judges the storage requests of a StatefulSet
// UPDATE's claim templates (rule storage-resize), as the mutating webhook
// answers it: the API server's immutability check would refuse the write
// before any validating webhook saw it. req.StorageClasses are the
// cluster's classes and req.TemplateClaims the existing claims of the
// StatefulSet's templates, both gathered when ResizesClaimTemplates.
//
// Refused: a request smaller than the claims already ask for (the stored
// template, the size recorded, an existing claim); growth that a class (the
// template's, the default one, an existing claim's) cannot carry out; a
// size change together with any other change of the templates. Warned:
// growth that is recorded (the template stays, the claims grow), a class
// that does not exist.
func CheckClaimTemplateResize(req WorkloadRequest) Result {
	w := req.Object
	t, _, err := w.DeployType()
	if err != nil || !t.Stateful() || w.Kind != KindStatefulSet || req.Operation != OpUpdate {
		return Result{}
	}
	change := compareClaimTemplates(w, req.Old)
	if len(change.resized) == 0 {
		return Result{}
	}
	if !change.sizesOnly {
		first := change.resized[0]
		return denied(RuleStorageResize, pathClaimTemplates,
			msgTemplateResizeMixed(w, first.template.Name, first.stored, first.requested))
	}
	recorded := RecordedClaimSizes(req.Old.Workload)
	var r Result
	for _, rt := range change.resized {
		at := pathClaimTemplates.Index(rt.index).Child("spec", "resources", "requests").Key(string(corev1.ResourceStorage))
		baseline := claimSizeBaseline(w, rt.template.Name, rt.stored, recorded, req.TemplateClaims)
		switch rt.requested.Cmp(baseline) {
		case -1:
			r.Add(denied(RuleStorageResize, at, msgTemplateShrink(w, rt.template.Name, baseline, rt.requested)))
			continue
		case 0:
			continue // settled: the claims already ask for it
		}
		if q, ok := recorded[rt.template.Name]; ok && rt.requested.Cmp(q) <= 0 {
			continue
		}
		growth := checkTemplateClasses(w, rt, baseline, req.StorageClasses, req.TemplateClaims)
		r.Add(growth)
		if growth.Allowed() && !req.ClaimTemplatesMutable {
			r.Add(warned(RuleStorageResize, at, msgTemplateKept(w, rt.template.Name, rt.stored, rt.requested)))
		}
	}
	return r
}

// checkTemplateClasses refuses growth that a class of the template's claims
// cannot carry out: the template's (or the default one), and every
// existing claim's, naming each once.
func checkTemplateClasses(w Workload, rt resizedTemplate, baseline resource.Quantity, classes []storagev1.StorageClass, claims []corev1.PersistentVolumeClaim) Result {
	at := pathClaimTemplates.Index(rt.index).Child("spec", "storageClassName")
	var r Result
	judged := map[string]bool{}
	judge := func(class, claim string) {
		if judged[class] {
			return
		}
		judged[class] = true
		switch c := findClass(class, classes); {
		case class == "":
			r.Add(denied(RuleStorageResize, at, msgTemplateNoClass(w, rt.template.Name, claim, baseline, rt.requested)))
		case c == nil:
			r.Add(warned(RuleStorageResize, at, msgStorageClassMissing(w, rt.template.Name, class, rt.requested)))
		case c.AllowVolumeExpansion == nil || !*c.AllowVolumeExpansion:
			r.Add(denied(RuleStorageResize, at, msgTemplateClassRefuses(w, rt.template.Name, claim, class, baseline, rt.requested)))
		}
	}
	class := DefaultStorageClass(classes)
	if name := rt.template.Spec.StorageClassName; name != nil {
		class = *name
	}
	judge(class, "")
	for i := range claims {
		if !claimOfTemplate(claims[i].Name, w.Name, rt.template.Name) {
			continue
		}
		claimClass := ""
		if claims[i].Spec.StorageClassName != nil {
			claimClass = *claims[i].Spec.StorageClassName
		}
		judge(claimClass, claims[i].Name)
	}
	return r
}

// ResizesClaimTemplates reports whether an UPDATE changes the storage
// request of a claim template: only then does the engine gather the classes
// and claims CheckClaimTemplateResize reads.
func ResizesClaimTemplates(w Workload, old *Observed) bool {
	return len(compareClaimTemplates(w, old).resized) > 0
}

// TemplateClaimNames are the names the claims of sts's templates have for
// the ordinals it runs or ran (the larger of spec.replicas and
// status.replicas, from ordinal 0), for the engine to look up.
func TemplateClaimNames(sts Workload) []string {
	n := max(sts.DesiredReplicas(), sts.StatusReplicas)
	var names []string
	for _, t := range sts.ClaimTemplates {
		for i := range n {
			names = append(names, t.Name+"-"+sts.Name+"-"+strconv.Itoa(int(i)))
		}
	}
	return names
}

// keepTemplateSizes puts the stored storage request back into every claim
// template that differs from the stored one only by it, and records the
// larger sizes in AnnotationClaimSizes, which it also carries over when the
// incoming object lacks it (a manifest never has it: statekeeper writes
// it). Recorded sizes only grow: the stored record, raised by the resized
// templates and by the incoming object's own record (so that a second pass
// over this mutation's output, against the same stored object, adds
// nothing), never lowered by it. With ClaimTemplatesMutable (the API server
// lets templates change) the templates are left as written.
func keepTemplateSizes(m *mutation) {
	w, old := m.req.Object, m.req.Old
	if old == nil || !m.deployType.Stateful() {
		return
	}
	recorded := RecordedClaimSizes(old.Workload)
	raise := func(template string, size resource.Quantity) {
		if q, ok := recorded[template]; !ok || size.Cmp(q) > 0 {
			if recorded == nil {
				recorded = ClaimSizes{}
			}
			recorded[template] = size
		}
	}
	// Written.Annotations are the object's own (the effective ones may come
	// from its pod template), which also tell whether the raw object has them.
	own := m.req.Written.Annotations
	for template, size := range parseClaimSizes(own[AnnotationClaimSizes]) {
		raise(template, size)
	}
	change := compareClaimTemplates(w, old)
	if change.sizesOnly && !m.req.ClaimTemplatesMutable {
		for _, rt := range change.resized {
			if rt.requested.Cmp(rt.stored) > 0 {
				raise(rt.template.Name, rt.requested)
			}
			m.patch.set(rt.stored, specStep(w), step("volumeClaimTemplates", true), step(strconv.Itoa(rt.index), true),
				step("spec", true), step("resources", true), step("requests", true), step(string(corev1.ResourceStorage), true))
		}
	}
	if len(recorded) == 0 {
		return
	}
	value := recorded.String()
	current, ownKey := own[AnnotationClaimSizes]
	if ownKey && current == value {
		return
	}
	m.patch.setMembers([]member{{key: AnnotationClaimSizes, value: value, present: ownKey}},
		step("metadata", true), step("annotations", len(own) > 0))
}

// WantedClaimSizes are the sizes the claims of sts's templates are to
// request, by template name: statekeeper.io/storage-size for the templates
// statekeeper injected, and the sizes recorded in AnnotationClaimSizes;
// the larger where both apply.
func WantedClaimSizes(sts Workload) ClaimSizes {
	wanted := RecordedClaimSizes(sts)
	if size, ok := RequestedStorageSize(sts); ok {
		for _, t := range InjectedClaimTemplates(sts) {
			if q, ok := wanted[t.Name]; !ok || size.Cmp(q) > 0 {
				if wanted == nil {
					wanted = ClaimSizes{}
				}
				wanted[t.Name] = size
			}
		}
	}
	// Only templates the StatefulSet has.
	for name := range wanted {
		if !slices.ContainsFunc(sts.ClaimTemplates, func(t corev1.PersistentVolumeClaim) bool { return t.Name == name }) {
			delete(wanted, name)
		}
	}
	return wanted
}

// sizeSource names where a template's wanted size comes from, for messages.
func sizeSource(sts Workload, template string) string {
	if _, ok := RecordedClaimSizes(sts)[template]; ok {
		return AnnotationClaimSizes
	}
	return AnnotationStorageSize
}

// claimOfTemplate reports whether claim is "<template>-<statefulset>-<ordinal>".
func claimOfTemplate(claim, sts, template string) bool {
	rest, ok := strings.CutPrefix(claim, template+"-"+sts+"-")
	if !ok {
		return false
	}
	_, ok = parseOrdinal(rest)
	return ok
}

// ClaimOwner is the StatefulSet and claim template a claim's name may come
// from ("<template>-<statefulset>-<ordinal>"; both names may hold dashes).
type ClaimOwner struct {
	StatefulSet, Template string
}

// ClaimOwners lists every way to read a claim's name as
// "<template>-<statefulset>-<ordinal>", for the engine to look the
// StatefulSets up; none when the name ends in no ordinal.
func ClaimOwners(claim string) []ClaimOwner {
	cut := strings.LastIndexByte(claim, '-')
	if cut < 0 {
		return nil
	}
	if _, ok := parseOrdinal(claim[cut+1:]); !ok {
		return nil
	}
	prefix := claim[:cut]
	var owners []ClaimOwner
	for i := 1; i < len(prefix)-1; i++ {
		if prefix[i] == '-' {
			owners = append(owners, ClaimOwner{Template: prefix[:i], StatefulSet: prefix[i+1:]})
		}
	}
	return owners
}

// SizeNewClaim is the storage request a claim being created should have:
// the size recorded for its template when the claim is one of sts's (its
// name is "<template>-<sts>-<ordinal>" and its labels match sts's
// selector, as the StatefulSet controller makes them) and asks for less.
// ok is false when the claim is left as it is.
func SizeNewClaim(claim *corev1.PersistentVolumeClaim, sts Workload, template string) (resource.Quantity, bool) {
	if !claimOfTemplate(claim.Name, sts.Name, template) || sts.Selector == nil {
		return resource.Quantity{}, false
	}
	for k, v := range sts.Selector.MatchLabels {
		if claim.Labels[k] != v {
			return resource.Quantity{}, false
		}
	}
	want, ok := RecordedClaimSizes(sts)[template]
	if !ok {
		return resource.Quantity{}, false
	}
	have := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	if have.Cmp(want) >= 0 {
		return resource.Quantity{}, false
	}
	return want, true
}

// MutateNewClaim returns the patch that gives a claim being created the
// size SizeNewClaim says, nil when there is none.
func MutateNewClaim(claim *corev1.PersistentVolumeClaim, sts Workload, template string) []jsonpatch.Operation {
	size, ok := SizeNewClaim(claim, sts, template)
	if !ok {
		return nil
	}
	var p patchBuilder
	p.set(size, step("spec", !isZero(claim.Spec)), step("resources", len(claim.Spec.Resources.Requests) > 0 || len(claim.Spec.Resources.Limits) > 0),
		step("requests", len(claim.Spec.Resources.Requests) > 0), step(string(corev1.ResourceStorage), hasStorageRequest(claim)))
	return p.ops
}

func hasStorageRequest(claim *corev1.PersistentVolumeClaim) bool {
	_, ok := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	return ok
}

var pathClaimTemplates = field.NewPath("spec", "volumeClaimTemplates")

// ClaimsAwaitingExpansion counts the claims of sts's templates that have a
// wanted size (WantedClaimSizes) and do not have it yet: a claim that
// requests less, or a bound one whose status.capacity is still smaller (the
// storage provider or the kubelet has not finished growing its volume).
func ClaimsAwaitingExpansion(sts Workload, claims []corev1.PersistentVolumeClaim) int {
	n := 0
	for c, t := range sizedClaims(sts, claims) {
		want := t.size
		request := c.Spec.Resources.Requests[corev1.ResourceStorage]
		capacity := c.Status.Capacity[corev1.ResourceStorage]
		if request.Cmp(want) < 0 || (c.Status.Phase == corev1.ClaimBound && capacity.Cmp(want) < 0) {
			n++
		}
	}
	return n
}

// ClaimExpansionPendingLimit is how long a claim's expansion may be under
// way (its Resizing or FileSystemResizePending condition) before the audit
// reports it.
const ClaimExpansionPendingLimit = time.Hour

// AuditClaimExpansion judges the expansion of the claims of a stored
// StatefulSet's templates (claims named <template>-<statefulset>-<ordinal>),
// for the background audit, from what the storage provider and the kubelet
// report on each claim: an expansion they gave up on
// (status.allocatedResourceStatuses[storage] is ControllerResizeInfeasible or
// NodeResizeInfeasible, or a ControllerResizeError or NodeResizeError
// condition) fails; one under way for longer than
// ClaimExpansionPendingLimit at now is warned of. Rule storage-resize.
func AuditClaimExpansion(sts Workload, claims []corev1.PersistentVolumeClaim, now time.Time) Result {
	var r Result
	for i := range claims {
		c := &claims[i]
		index := slices.IndexFunc(sts.ClaimTemplates, func(t corev1.PersistentVolumeClaim) bool { return claimOfTemplate(c.Name, sts.Name, t.Name) })
		if index < 0 {
			continue
		}
		at := pathClaimTemplates.Index(index)
		want := c.Spec.Resources.Requests[corev1.ResourceStorage]
		if failed, why := expansionFailed(c); failed {
			r.Add(denied(RuleStorageResize, at, msgClaimExpansionFailed(sts, c.Name, want, why)))
			continue
		}
		capacity, bound := c.Status.Capacity[corev1.ResourceStorage]
		if !bound || capacity.Cmp(want) >= 0 {
			continue
		}
		if since, ok := expansionSince(c); ok && now.Sub(since) > ClaimExpansionPendingLimit {
			r.Add(warned(RuleStorageResize, at, msgClaimExpansionPending(sts, c.Name, capacity, want, since)))
		}
	}
	return r
}

// expansionFailed reports whether the claim's expansion was given up on, and why.
func expansionFailed(c *corev1.PersistentVolumeClaim) (bool, string) {
	for _, cond := range c.Status.Conditions {
		if (cond.Type == corev1.PersistentVolumeClaimControllerResizeError || cond.Type == corev1.PersistentVolumeClaimNodeResizeError) &&
			cond.Status == corev1.ConditionTrue {
			return true, string(cond.Type) + ": " + cond.Message
		}
	}
	switch status := c.Status.AllocatedResourceStatuses[corev1.ResourceStorage]; status {
	case corev1.PersistentVolumeClaimControllerResizeInfeasible, corev1.PersistentVolumeClaimNodeResizeInfeasible:
		return true, string(status)
	}
	return false, ""
}

// expansionSince is when the claim's expansion began: the earliest
// transition of its Resizing or FileSystemResizePending condition.
func expansionSince(c *corev1.PersistentVolumeClaim) (time.Time, bool) {
	var since time.Time
	found := false
	for _, cond := range c.Status.Conditions {
		if cond.Type != corev1.PersistentVolumeClaimResizing && cond.Type != corev1.PersistentVolumeClaimFileSystemResizePending {
			continue
		}
		if cond.Status != corev1.ConditionTrue {
			continue
		}
		if t := cond.LastTransitionTime.Time; !found || t.Before(since) {
			since, found = t, true
		}
	}
	return since, found
}
