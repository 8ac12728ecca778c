package policy

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// AuditService judges the Service that the pods of a stored StatefulSet live
// under (svc, nil when none of that name exists), for the background audit.
// Admission judges the Service when the StatefulSet is created
// (headless-conflict), and on an UPDATE only when it turns inject-env on; afterwards the Service can be deleted or replaced, and
// in an audit namespace statekeeper never creates it. A StatefulSet that is
// not stateful-* gets an empty result.
func AuditService(sts *appsv1.StatefulSet, svc *corev1.Service) Result {
	w := FromStatefulSet(sts)
	if t, _, err := w.DeployType(); err != nil || !t.Stateful() {
		return Result{}
	}
	plan := PlanHeadlessService(sts, svc)
	switch {
	case plan.Action == ServiceCreate:
		return denied(RuleHeadlessMissing, pathServiceName, msgHeadlessMissing(w, w.ServiceNameOrDefault()))
	case plan.Action != ServiceConflict:
		// In sync, foreign but headless, or a managed Service the
		// reconciler repairs: the pods get their DNS names.
		return Result{}
	case !GivesPodDNSNames(svc):
		return auditHeadlessConflict(w, svc)
	default:
		return denied(RuleHeadlessConflict, pathServiceName, plan.Reason)
	}
}
