package policy

// Deletion protection is opt-in: the annotation on a workload, or the label
// on its namespace (a label, because a webhook's namespaceSelector can select
// labels only, and the chart sends only protected deletions to statekeeper).
const (
	AnnotationProtect = "statekeeper.io/protect"
	LabelProtect      = "statekeeper.io/protect"
)

// Protected reports whether deleting w is guarded: it says so itself, or
// its namespace does (namespaceProtected).
func Protected(w Workload, namespaceProtected bool) bool {
	return w.Annotations[AnnotationProtect] == "true" || namespaceProtected
}

// ValidateDelete judges deleting a managed workload: a protected one that is
// running with persistent volumes is refused, with the way out (scale it to
// 0 first). A workload at rest can go: its claims outlive it anyway, unless
// a StatefulSet's persistentVolumeClaimRetentionPolicy says otherwise, which
// is then a deliberate second step.
func ValidateDelete(w Observed, namespaceProtected bool) Result {
	if !w.Managed() || !Protected(w.Workload, namespaceProtected) || !w.Running() || !w.HasPersistentVolumes() {
		return Result{}
	}
	by := "the " + w.Kind.Lower()
	if w.Annotations[AnnotationProtect] != "true" {
		by = "namespace " + quote(w.Namespace)
	}
	return denied(RuleDeletionProtection, pathAnnotations.Key(AnnotationProtect), msgDeletionProtected(w, by))
}
