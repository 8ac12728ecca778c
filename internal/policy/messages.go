package policy

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Every message users read lives in this file, so that wording stays
// consistent and reviewable in one place. A message is lowercase, names the
// object, says what was refused or is at risk, why, and how to proceed. It
// never carries the rule ID: Violation.String appends it.

func msgInvalidDeployType(w Workload, err error) string {
	return fmt.Sprintf("%s has an invalid %s label: %v", w.Ref(), LabelDeployType, err)
}

func msgKindMismatch(w Workload, t DeployType) string {
	msg := fmt.Sprintf("%s is labelled %s, which runs as a %s: use %s, or create a %s",
		w.Ref(), t, t.Kind(), orList(typesOfKind(w.Kind)), t.Kind().Lower())
	if w.Kind == KindDeployment && t.Stateful() {
		// Charts with only chart-wide labels (commonLabels) put the type of
		// their database on its exporter or proxy Deployments too.
		msg += fmt.Sprintf("; if a chart's common labels put it there, label only the chart's StatefulSet "+
			"(a Helm post-renderer, see the README's %s) or remove the label from this deployment and its pod template",
			readmeOptingIn)
	}
	return msg
}

// readmeOptingIn names the README section on labelling charts one does not write.
const readmeOptingIn = "'Opting in charts you do not write'"

func msgSingleInstance(w Workload, t DeployType, replicas int32) string {
	return fmt.Sprintf("%s is %s: replicas must be 0 or 1, got %d", w.Ref(), t, replicas)
}

func msgSingleInstanceHPA(hpaName string, target Workload, t DeployType, maxReplicas int32) string {
	return fmt.Sprintf("horizontalpodautoscaler %q targets %s, which is %s: maxReplicas must be 1, got %d",
		hpaName, target.Ref(), t, maxReplicas)
}

func msgSingleInstanceAutoscaled(w Workload, t DeployType, a Autoscaler) string {
	return fmt.Sprintf("%s is %s, but horizontalpodautoscaler %q scales it up to %d replicas: set its maxReplicas to 1 or delete it first",
		w.Ref(), t, a.Name, a.MaxReplicas)
}

func msgSingleInstanceHPANoTarget(hpaName string, kind Kind, target string, maxReplicas int32) string {
	return fmt.Sprintf("horizontalpodautoscaler %q targets %s %q, which does not exist yet: if it is created as %s, it will be denied while maxReplicas is %d; "+
		"set maxReplicas to 1, or create it as %s",
		hpaName, kind.Lower(), target, orList(typesOfKindBySize(kind, true)), maxReplicas, orList(typesOfKindBySize(kind, false)))
}

func msgQuorum(w Workload, replicas int32) string {
	return fmt.Sprintf("%s requires an odd number of replicas (%s: \"true\") so that a quorum cannot split, got %d: use %d or %d; "+
		"if other workloads vote in the same quorum (an arbiter), declare their votes with %s",
		w.Ref(), AnnotationQuorum, replicas, replicas-1, replicas+1, AnnotationQuorumExternalVotes)
}

func msgQuorumWithExternalVotes(w Workload, v QuorumVotes) string {
	return fmt.Sprintf("%s requires an odd number of votes (%s: \"true\") so that a quorum cannot split, "+
		"got %s + %s (%s) = %d votes: use %d or %d replicas",
		w.Ref(), AnnotationQuorum, plural(int64(v.Replicas), "replica"), plural(int64(v.External), "external vote"),
		AnnotationQuorumExternalVotes, v.Total(), v.Replicas-1, int64(v.Replicas)+1)
}

func msgInvalidExternalVotes(w Workload, value string) string {
	return fmt.Sprintf("%s: annotation %s must be a non-negative integer, the number of voters of its quorum outside this workload (\"1\" for an arbiter in another workload), got %q",
		w.Ref(), AnnotationQuorumExternalVotes, value)
}

// plural is "1 replica", "3 replicas".
func plural(n int64, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func msgTypeChange(w Workload, from, to string) string {
	return fmt.Sprintf("%s is running with persistent volumes: its deploy type cannot change from %s to %s; scale it to 0 and back up its data first",
		w.Ref(), from, to)
}

// typeRemoved is how msgTypeChange names a removed deploy-type label.
var typeRemoved = fmt.Sprintf("unmanaged (%s label removed)", LabelDeployType)

func msgKindSwitchRunning(existing Observed, created Workload) string {
	return fmt.Sprintf("%s (component %q) is running with persistent volumes; scale it to 0 and back up its data before creating %s",
		existing.Ref(), created.Component(), created.Ref())
}

func msgKindSwitchClosed(existing Observed, created Workload, claims []string) string {
	return fmt.Sprintf("%s (component %q) is scaled to 0 but keeps its data in claims %s; %s mounts storage differently and will not reuse them: back up the data first",
		existing.Ref(), created.Component(), joinQuoted(claims), created.Ref())
}

// clusterIPIs says what a Service's spec.clusterIP is: the address, or, in a
// manifest not created yet (the API server allocates the address), that it
// is not None.
func clusterIPIs(clusterIP string) string {
	if clusterIP == "" {
		return "spec.clusterIP is not None"
	}
	return fmt.Sprintf("spec.clusterIP is %q", clusterIP)
}

func msgHeadlessConflict(w Workload, service, clusterIP string) string {
	return fmt.Sprintf("service %q named by spec.serviceName of %s is not headless (%s) and is not managed by %s, "+
		"so its pods get no per-pod DNS names (such as %s-0.%s.%s.svc) and %s stamps no fqdn, primary-fqdn or peers on them; "+
		"%s creates no headless Service because the name is taken: if the pods need those names, make that Service headless (clusterIP: None), "+
		"or set spec.serviceName to an unused name and %s creates a headless one",
		service, w.Ref(), clusterIPIs(clusterIP), ManagerName, w.Name, service, w.Namespace, ManagerName, ManagerName, ManagerName)
}

// msgHeadlessConflictInjectEnv refuses inject-env under a Service that gives
// no DNS names; creating says whether spec.serviceName can still be chosen
// (it cannot change once the StatefulSet exists).
func msgHeadlessConflictInjectEnv(w Workload, service, clusterIP string, creating bool) string {
	wayOut := fmt.Sprintf("make service %q headless (clusterIP: None), or set spec.serviceName to an unused name and %s creates a headless one, or remove %s",
		service, ManagerName, AnnotationInjectEnv)
	if !creating {
		wayOut = fmt.Sprintf("make service %q headless (clusterIP: None), or remove %s (spec.serviceName cannot change on an existing statefulset)",
			service, AnnotationInjectEnv)
	}
	return fmt.Sprintf("%s asks for its pods' identity as environment variables (%s: \"true\"), but service %q named by its spec.serviceName is not headless "+
		"(%s) and is not managed by %s, so its pods get no per-pod DNS names: %s, %s and %s would name addresses that never resolve, "+
		"and an application that finds its peers through them would start alone; %s",
		w.Ref(), AnnotationInjectEnv, service, clusterIPIs(clusterIP), ManagerName, EnvFQDN, EnvPrimaryFQDN, EnvPeers, wayOut)
}

func msgHeadlessMissing(w Workload, service string) string {
	return fmt.Sprintf("service %q named by spec.serviceName of %s does not exist, so its pods get no per-pod DNS names; "+
		"%s creates it in enforce and warn namespaces (in audit mode create it yourself, headless: clusterIP: None)",
		service, w.Ref(), ManagerName)
}

func msgSharedClaimStatefulMulti(w Workload, volume, claim string) string {
	return fmt.Sprintf("%s is %s but mounts claim %q (volume %q), which all its instances share: use a volume claim template for one volume per instance",
		w.Ref(), StatefulMulti, claim, volume)
}

func msgSharedClaimSingleNode(w Workload, replicas int32, volume, claim, accessMode string) string {
	return fmt.Sprintf("%s runs %d replicas but mounts %s claim %q (volume %q), which instances on other nodes cannot attach: use a ReadWriteMany claim, or run it as a %s StatefulSet for one volume per instance",
		w.Ref(), replicas, accessMode, claim, volume, StatefulMulti)
}

func msgInvalidStorageSize(w Workload, value string) string {
	return fmt.Sprintf("%s: annotation %s must be a positive resource quantity such as \"10Gi\", got %q",
		w.Ref(), AnnotationStorageSize, value)
}

func msgInvalidStorageClass(w Workload, value string) string {
	return fmt.Sprintf("%s: annotation %s must name a storage class (lowercase letters, digits, '-' and '.', at most 253 characters) or be empty for the cluster default, got %q",
		w.Ref(), AnnotationStorageClass, value)
}

func msgInvalidBool(w Workload, key, value string) string {
	return fmt.Sprintf("%s: annotation %s must be \"true\" or \"false\", got %q", w.Ref(), key, value)
}

// keyOwner opens an unknown-key message: the workload, and for an unmanaged
// one that it is not statekeeper's and why (its keys may be a failed opt-in).
func keyOwner(w Workload, managed bool) string {
	if managed {
		return w.Ref() + ":"
	}
	return fmt.Sprintf("%s is not managed by %s: it has no %s label, and", w.Ref(), ManagerName, LabelDeployType)
}

func msgUnknownKey(w Workload, managed bool, key string, in *field.Path, nearest string) string {
	head := fmt.Sprintf("%s %s (%s) is not a key %s knows, so nothing reads it", keyOwner(w, managed), key, in, ManagerName)
	if nearest == "" {
		return fmt.Sprintf("%s: remove it, or use a key %s reads on a workload: the labels %s, the annotations %s",
			head, ManagerName, strings.Join(keysOfPlace(PlaceWorkloadLabel), ", "), strings.Join(keysOfPlace(PlaceWorkloadAnnotation), ", "))
	}
	return fmt.Sprintf("%s: did you mean %s, %s?", head, nearest, orJoin(placeNames(placesOf(nearest))))
}

func msgMisplacedKey(w Workload, managed bool, key string, kind keyKind, in *field.Path, places []KeyPlace) string {
	wayOut := "move it there"
	if statekeeperWritesOnly(places) {
		wayOut = "remove it"
	}
	return fmt.Sprintf("%s %s is written as %s (%s), where %s does not read it: it is %s; %s",
		keyOwner(w, managed), key, kind, in, ManagerName, orJoin(placeNames(places)), wayOut)
}

func placeNames(places []KeyPlace) []string {
	names := make([]string, len(places))
	for i, p := range places {
		names[i] = wherePlace(p)
	}
	return names
}

// orJoin renders "a", "a or b", "a, b or c".
func orJoin(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

func msgEphemeralData(w Workload, t DeployType, mounts []DataMount) string {
	described := make([]string, len(mounts))
	for i, m := range mounts {
		described[i] = fmt.Sprintf("%q", m.Volume)
		if len(m.Paths) > 0 {
			described[i] += " at " + strings.Join(m.Paths, ", ")
		}
	}
	return fmt.Sprintf("%s is %s, but its data lives in emptyDir volumes only (%s), which die with the pod: "+
		"give it persistent volumes (enable the chart's persistence, or a volume claim template of that name), "+
		"or drop those emptyDir volumes from the pod template so that %s injects a claim for each mount (when the statefulset is created: claim templates cannot be added later)",
		w.Ref(), t, strings.Join(described, "; "), ManagerName)
}

func msgInvalidMode(namespace string, err error) string {
	return fmt.Sprintf("namespace %q has an invalid %s label (%v); statekeeper enforces its rules there until it is fixed",
		namespace, LabelMode, err)
}

// The reconciler's reasons for leaving a Service alone (ServicePlan.Reason),
// recorded as an Event on the StatefulSet. They carry no rule ID.

func msgServiceNotHeadless(service, clusterIP, statefulSet string) string {
	return fmt.Sprintf("service %q is not managed by %s (no %s=%s label) and is not headless (%s), "+
		"so the pods of statefulset %q get no per-pod DNS names and %s stamps no fqdn, primary-fqdn or peers on them; %s leaves the service alone: "+
		"if the pods need those names, recreate it with clusterIP: None",
		service, ManagerName, LabelManagedBy, ManagerName, clusterIPIs(clusterIP), statefulSet, ManagerName, ManagerName)
}

func msgServiceOfAnother(service, owner string) string {
	return fmt.Sprintf("service %q is managed by %s for %s; %s leaves it alone: "+
		"each StatefulSet needs a headless Service of its own (spec.serviceName)",
		service, ManagerName, owner, ManagerName)
}

func msgStorageShrink(w Workload, have, want resource.Quantity) string {
	return fmt.Sprintf("%s: %s cannot shrink from %s to %s, because volume claims only grow: keep %s or more, "+
		"or back the data up and recreate the statefulset and its claims to use smaller volumes",
		w.Ref(), AnnotationStorageSize, have.String(), want.String(), have.String())
}

func msgStorageClassRefuses(w Workload, template, class string, have, want resource.Quantity) string {
	return fmt.Sprintf("%s: %s cannot grow to %s: storage class %q of claim template %q does not allow volume expansion (allowVolumeExpansion is not true); "+
		"set allowVolumeExpansion: true on the class if its provisioner can expand volumes, or keep %s",
		w.Ref(), AnnotationStorageSize, want.String(), class, template, have.String())
}

func msgStorageNoClass(w Workload, template string, have, want resource.Quantity) string {
	return fmt.Sprintf("%s: %s cannot grow to %s: claim template %q names no storage class and the cluster has no default one, "+
		"and only claims of a class that allows volume expansion can grow; keep %s",
		w.Ref(), AnnotationStorageSize, want.String(), template, have.String())
}

func msgStorageClassMissing(w Workload, template, class string, want resource.Quantity) string {
	return fmt.Sprintf("%s: storage class %q of claim template %q does not exist, so its claims grow to %s only once it exists and allows volume expansion",
		w.Ref(), class, template, want.String())
}

func msgStorageNoInjectedTemplate(w Workload, want resource.Quantity) string {
	return fmt.Sprintf("%s: %s changes to %s, but no claim template of it was injected by %s (annotation %s), so no claim grows: "+
		"resize the claims of your own templates yourself",
		w.Ref(), AnnotationStorageSize, want.String(), ManagerName, AnnotationInjected)
}

// Claim templates resized in the manifest (CheckClaimTemplateResize).

func msgTemplateKept(w Workload, template string, stored, requested resource.Quantity) string {
	return fmt.Sprintf("%s: claim template %q keeps %s, because the API server does not let claim templates change; "+
		"its claims grow to %s instead (recorded in %s): the existing ones now, new ones when they are created",
		w.Ref(), template, stored.String(), requested.String(), AnnotationClaimSizes)
}

func msgTemplateShrink(w Workload, template string, have, want resource.Quantity) string {
	return fmt.Sprintf("%s: claim template %q cannot shrink from %s to %s, because volume claims only grow: keep %s or more, "+
		"or back the data up and recreate the statefulset and its claims to use smaller volumes",
		w.Ref(), template, have.String(), want.String(), have.String())
}

func msgTemplateClassRefuses(w Workload, template, claim, class string, have, want resource.Quantity) string {
	which := fmt.Sprintf("its storage class %q", class)
	if claim != "" {
		which = fmt.Sprintf("storage class %q of its claim %q", class, claim)
	}
	return fmt.Sprintf("%s: claim template %q cannot grow to %s: %s does not allow volume expansion (allowVolumeExpansion is not true); "+
		"set allowVolumeExpansion: true on the class if its provisioner can expand volumes, or keep %s",
		w.Ref(), template, want.String(), which, have.String())
}

func msgTemplateNoClass(w Workload, template, claim string, have, want resource.Quantity) string {
	what := "it names no storage class and the cluster has no default one"
	if claim != "" {
		what = fmt.Sprintf("its claim %q has no storage class", claim)
	}
	return fmt.Sprintf("%s: claim template %q cannot grow to %s: %s, and only claims of a class that allows volume expansion can grow; keep %s",
		w.Ref(), template, want.String(), what, have.String())
}

func msgTemplateResizeMixed(w Workload, template string, stored, requested resource.Quantity) string {
	return fmt.Sprintf("%s: claim template %q changes its size (%s to %s) together with other fields of the claim templates, "+
		"and the API server lets no claim template change: %s grows the claims of a size change alone. "+
		"Change only the sizes, or make the other change by re-creating the statefulset without its pods and claims: "+
		"kubectl delete statefulset %s -n %s --cascade=orphan, then apply the manifest again (the pods and claims are adopted; "+
		"existing claims keep their size)",
		w.Ref(), template, stored.String(), requested.String(), ManagerName, w.Name, w.Namespace)
}

// The audit's findings about claims being expanded (AuditClaimExpansion).

func msgClaimExpansionFailed(sts Workload, claim string, want resource.Quantity, why string) string {
	return fmt.Sprintf("claim %q of %s could not be expanded to %s (%s): fix what the storage provider reports in the claim's conditions and events "+
		"(kubectl describe pvc %s); the resizer then retries",
		claim, sts.Ref(), want.String(), why, claim)
}

func msgClaimExpansionPending(sts Workload, claim string, capacity, want resource.Quantity, since time.Time) string {
	return fmt.Sprintf("claim %q of %s has been growing from %s to %s since %s: the storage provider or the kubelet has not finished; "+
		"read the claim's conditions and events (kubectl describe pvc %s); a FileSystemResizePending claim grows when its pod restarts",
		claim, sts.Ref(), capacity.String(), want.String(), since.UTC().Format(time.RFC3339), claim)
}

// The volume reconciler's reason for leaving a claim as it is (ClaimStep.Reason).

func msgClaimClassRefuses(sts Workload, claim, class string, want resource.Quantity, source string) string {
	if class == "" {
		return fmt.Sprintf("claim %q of %s names no storage class, so it cannot grow to %s (%s)",
			claim, sts.Ref(), want.String(), source)
	}
	return fmt.Sprintf("claim %q of %s cannot grow to %s (%s): storage class %q does not exist or does not allow volume expansion; "+
		"set allowVolumeExpansion: true on the class if its provisioner can expand volumes",
		claim, sts.Ref(), want.String(), source, class)
}

func msgRollingUpdateWithClaim(w Workload) string {
	return fmt.Sprintf("%s is %s and mounts a single-node claim, but its manifest sets a RollingUpdate strategy, which %s leaves as written: "+
		"a rolling update starts the new pod while the old one still holds the volume, and waits for it; set strategy.type: Recreate, or rollingUpdate.maxSurge: 0",
		w.Ref(), StatelessSingle, ManagerName)
}

func msgDeletionProtected(w Observed, by string) string {
	return fmt.Sprintf("%s is protected from deletion (%s: \"true\" on %s) and is running with persistent volumes: "+
		"scale it to 0 first (kubectl scale %s %s --replicas=0), wait for its pods to stop, then delete it",
		w.Ref(), AnnotationProtect, by, w.Kind.Lower(), w.Name)
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// The disruption-budget reconciler's reasons (BudgetPlan.Reason), recorded
// as Events on the StatefulSet.

func msgBudgetNotWanted(sts string) string {
	return fmt.Sprintf("statefulset %q is not %s or has %s: \"false\": its pod disruption budget is removed",
		sts, StatefulMulti, AnnotationDisruptionBudget)
}

func msgBudgetBlocksDrains(w Workload, minAvailable int32) string {
	return fmt.Sprintf("%s runs %s with %s: \"true\": a pod disruption budget keeping its quorum (minAvailable %d) would refuse every eviction and block every node drain, "+
		"so its pod disruption budget is removed and a drain evicts it like any other pod; %s keeps one again once it runs enough replicas that its quorum survives an eviction",
		w.Ref(), plural(int64(w.DesiredReplicas()), "replica"), AnnotationQuorum, minAvailable, ManagerName)
}

func msgBudgetForeign(sts string, budgets []string) string {
	return fmt.Sprintf("pod disruption budget %s, not managed by %s, covers the pods of statefulset %q; %s keeps no budget of its own for them "+
		"(the eviction API refuses pods covered by two budgets): delete yours to get one that follows the replica count, or set %s: \"false\" to silence this",
		joinQuoted(budgets), ManagerName, sts, ManagerName, AnnotationDisruptionBudget)
}

// orList renders deploy types as "a or b" / "a, b or c".
func orList(types []DeployType) string {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = string(t)
	}
	return orJoin(names)
}

// typesOfKindBySize lists the deploy types that run as kind and are
// single-instance (single) or not.
func typesOfKindBySize(kind Kind, single bool) []DeployType {
	var out []DeployType
	for _, t := range typesOfKind(kind) {
		if t.Single() == single {
			out = append(out, t)
		}
	}
	return out
}

// typesOfKind lists the deploy types that run as kind, in DeployTypes order.
func typesOfKind(kind Kind) []DeployType {
	var out []DeployType
	for _, t := range DeployTypes {
		if t.Kind() == kind {
			out = append(out, t)
		}
	}
	return out
}
