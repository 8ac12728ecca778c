package policy

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var (
	pathDeployType  = field.NewPath("metadata", "labels").Key(LabelDeployType)
	pathComponent   = field.NewPath("metadata", "labels").Key(LabelComponent)
	pathName        = field.NewPath("metadata", "name")
	pathAnnotations = field.NewPath("metadata", "annotations")
	pathReplicas    = field.NewPath("spec", "replicas")
	pathMaxReplicas = field.NewPath("spec", "maxReplicas")
	pathServiceName = field.NewPath("spec", "serviceName")
	pathStrategy    = field.NewPath("spec", "strategy")
	pathVolumes     = field.NewPath("spec", "template", "spec", "volumes")
)

// ValidateWorkload applies the rules of docs/spec.md §4 to a workload CREATE or
// UPDATE. Denials come in the order of docs/spec.md §4's table (single-instance,
// kind-mismatch, kind-switch, type-change, quorum, headless-conflict), then
// invalid-annotation; warnings are kind-switch, headless-conflict,
// shared-claim, recreate-strategy, ephemeral-data, then unknown-key.
//
// An unlabelled object is not managed and gets an empty result, except on an
// UPDATE that removes the label from a managed workload: removing the type is
// a type change.
func ValidateWorkload(req WorkloadRequest) Result {
	w := req.Object
	if !w.Managed() {
		if req.Operation == OpUpdate {
			return checkTypeChange(req)
		}
		return Result{}
	}

	var r Result
	t, _, typeErr := w.DeployType()
	if typeErr == nil {
		r.Add(checkSingleInstance(w, t, w.DesiredReplicas()))
		if req.Operation == OpCreate {
			r.Add(checkAutoscalers(w, t, req.Autoscalers))
		}
	}
	r.Add(checkKindMismatch(w, t, typeErr))
	switch req.Operation {
	case OpCreate:
		r.Add(checkKindSwitch(req))
	case OpUpdate:
		r.Add(checkTypeChange(req))
	}
	r.Add(checkQuorum(w, w.DesiredReplicas()))
	// The remaining rules only make sense for a type the object can run as.
	kindMatches := typeErr == nil && t.Kind() == w.Kind
	if kindMatches {
		r.Add(checkHeadlessConflict(req, t))
	}
	if kindMatches && req.Operation == OpUpdate {
		r.Add(checkStorageResize(req, t))
	}
	r.Add(checkAnnotations(w))
	if kindMatches {
		r.Add(checkSharedClaims(req, t))
		r.Add(checkRecreateStrategy(req, t))
		r.Add(checkEphemeralData(w, t))
	}
	r.Add(checkKeys(w, req.Written, true))
	return r
}

// checkEphemeralData warns a stateful workload whose data mounts are all
// emptyDir volumes that its data dies with the pod: statekeeper injects a
// claim only for a mount that names no pod volume, and a chart with
// persistence switched off names an emptyDir volume instead.
func checkEphemeralData(w Workload, t DeployType) Result {
	mounts := w.EphemeralData()
	if !t.Stateful() || len(mounts) == 0 {
		return Result{}
	}
	return warned(RuleEphemeralData, pathVolumes.Index(mounts[0].Index), msgEphemeralData(w, t, mounts))
}

// ValidateUnlabelledCreate applies the kind-switch rule to the CREATE of an
// unlabelled workload: unmanaged itself (docs/spec.md §1), it must still not strand
// the data of the other kind's managed workload of its component. Unmanaged
// counterparts are not statekeeper's to guard. Its keys under statekeeper.io/
// that statekeeper does not read are warned of (unknown-key): a misspelt
// deploy-type is why it is unmanaged.
func ValidateUnlabelledCreate(req WorkloadRequest) Result {
	if req.Object.Managed() || req.Operation != OpCreate {
		return Result{}
	}
	var managed []Observed
	for _, c := range req.Counterparts {
		if c.Managed() {
			managed = append(managed, c)
		}
	}
	req.Counterparts = managed
	r := checkKindSwitch(req)
	r.Add(checkKeys(req.Object, req.Written, false))
	return r
}

// checkRecreateStrategy warns about a single-instance Deployment with a
// single-node claim whose manifest sets a surging RollingUpdate, which the
// mutation leaves as written (it sets Recreate only where the strategy was
// left unset).
func checkRecreateStrategy(req WorkloadRequest, t DeployType) Result {
	w := req.Object
	if t != StatelessSingle || w.Strategy.Type == appsv1.RecreateDeploymentStrategyType || surgesNone(w.Strategy) ||
		!strategyWrittenByUser(w) || !mountsSingleNodeClaim(w, req.Claims) {
		return Result{}
	}
	return warned(RuleRecreateStrategy, pathStrategy, msgRollingUpdateWithClaim(w))
}

// ValidateScale judges a /scale subresource update to replicas. The Scale
// object carries no labels, so the parent workload's labels and annotations
// decide.
func ValidateScale(parent Workload, replicas int32) Result {
	if !parent.Managed() {
		return Result{}
	}
	var r Result
	if t, _, err := parent.DeployType(); err == nil {
		r.Add(checkSingleInstance(parent, t, replicas))
	}
	r.Add(checkQuorum(parent, replicas))
	return r
}

// ValidateHPA judges a HorizontalPodAutoscaler named hpaName whose scale
// target is target: a single-instance workload must not be scaled past one.
func ValidateHPA(hpaName string, target Workload, maxReplicas int32) Result {
	if !target.Managed() {
		return Result{}
	}
	t, _, err := target.DeployType()
	if err != nil || !t.Single() || maxReplicas <= 1 {
		return Result{}
	}
	return denied(RuleSingleInstance, pathMaxReplicas, msgSingleInstanceHPA(hpaName, target, t, maxReplicas))
}

// ValidateHPAWithoutTarget judges an HPA whose target workload does not
// exist (yet): Helm installs HorizontalPodAutoscalers before the workloads
// they scale, so the pair is judged when the workload is created (see
// checkAutoscalers), and the HPA is admitted with a warning that says so.
// targetKind is an apps kind statekeeper manages.
func ValidateHPAWithoutTarget(hpaName string, targetKind Kind, targetName string, maxReplicas int32) Result {
	if maxReplicas <= 1 {
		return Result{}
	}
	return warned(RuleSingleInstance, pathMaxReplicas, msgSingleInstanceHPANoTarget(hpaName, targetKind, targetName, maxReplicas))
}

// ValidateKind is the kind-mismatch rule alone, for the mutating webhook. The
// API server validates an object between the mutating and the validating
// webhooks, so a StatefulSet of a stateless or unknown type that mounts a
// volume only statekeeper would have declared is refused there ("volumeMounts
// not found") before validation could say why; denying it while mutating
// gives the user the reason, in the same words as ValidateWorkload.
func ValidateKind(w Workload) Result {
	if !w.Managed() {
		return Result{}
	}
	t, _, err := w.DeployType()
	return checkKindMismatch(w, t, err)
}

func checkSingleInstance(w Workload, t DeployType, replicas int32) Result {
	if !t.Single() || replicas <= 1 {
		return Result{}
	}
	return denied(RuleSingleInstance, pathReplicas, msgSingleInstance(w, t, replicas))
}

// checkAutoscalers refuses to create a single-instance workload that an
// existing HPA would scale past one replica: the HPA was admitted before its
// target existed, so this is where the pair is judged.
func checkAutoscalers(w Workload, t DeployType, autoscalers []Autoscaler) Result {
	var r Result
	if !t.Single() {
		return r
	}
	for _, a := range autoscalers {
		if a.MaxReplicas > 1 {
			r.Add(denied(RuleSingleInstance, pathDeployType, msgSingleInstanceAutoscaled(w, t, a)))
		}
	}
	return r
}

func checkKindMismatch(w Workload, t DeployType, typeErr error) Result {
	switch {
	case typeErr != nil:
		return denied(RuleKindMismatch, pathDeployType, msgInvalidDeployType(w, typeErr))
	case t.Kind() != w.Kind:
		return denied(RuleKindMismatch, pathDeployType, msgKindMismatch(w, t))
	}
	return Result{}
}

// checkKindSwitch guards the data of the other kind's workload of the same
// component: a Deployment's claim volumes and a StatefulSet's per-ordinal
// claims are not mounted the same way, so switching kinds strands the data.
func checkKindSwitch(req WorkloadRequest) Result {
	var r Result
	at := pathName
	if _, ok := req.Object.Labels[LabelComponent]; ok {
		at = pathComponent
	}
	for _, existing := range req.Counterparts {
		if !existing.HasPersistentVolumes() {
			continue
		}
		if existing.Running() {
			r.Add(denied(RuleKindSwitch, at, msgKindSwitchRunning(existing, req.Object)))
			continue
		}
		r.Add(warned(RuleKindSwitch, at, msgKindSwitchClosed(existing, req.Object, existing.Storage().DataClaims(existing.Name))))
	}
	return r
}

// checkTypeChange refuses to change (or remove) the deploy type of a running
// workload with persistent volumes. Labelling an unmanaged workload is not a
// change.
func checkTypeChange(req WorkloadRequest) Result {
	old := req.Old
	if old == nil || !old.Managed() {
		return Result{}
	}
	from := old.Labels[LabelDeployType]
	to, labelled := req.Object.Labels[LabelDeployType]
	if labelled && to == from {
		return Result{}
	}
	if !old.Running() || !old.HasPersistentVolumes() {
		return Result{}
	}
	if !labelled {
		to = typeRemoved
	}
	return denied(RuleTypeChange, pathDeployType, msgTypeChange(req.Object, from, to))
}

// checkQuorum refuses a replica count that lets the workload's quorum split
// into halves: an even number of votes, counting the voters it declares
// outside itself (statekeeper.io/quorum-external-votes).
func checkQuorum(w Workload, replicas int32) Result {
	votes := w.QuorumVotesAt(replicas)
	if !w.Quorum() || !votes.Split() {
		return Result{}
	}
	// Unusable external votes count as none, and are denied as such.
	if _, err := w.quorumExternalVotes(); err == nil && w.declaresExternalVotes() {
		return denied(RuleQuorum, pathReplicas, msgQuorumWithExternalVotes(w, votes))
	}
	return denied(RuleQuorum, pathReplicas, msgQuorum(w, replicas))
}

// checkHeadlessConflict judges a stateful StatefulSet whose Service is
// someone else's and not headless: the ClusterIP Service that single-instance
// databases and gossip systems name, which never use per-pod DNS. Such a
// StatefulSet is admitted with a warning that says what its pods do not get;
// statekeeper then stamps no DNS names on them (GivesPodDNSNames). Only
// statekeeper.io/inject-env is refused: it asks statekeeper to hand the
// containers FQDN and peer addresses, and an application that bootstraps from
// them would find no peers. A CREATE is judged whole; an UPDATE only when it
// turns inject-env on (serviceName cannot change, and the warning was given
// when the StatefulSet was created; the background audit keeps reporting it).
func checkHeadlessConflict(req WorkloadRequest, t DeployType) Result {
	w, svc := req.Object, req.Service
	if w.Kind != KindStatefulSet || !t.Stateful() || GivesPodDNSNames(svc) {
		return Result{}
	}
	switch {
	case req.Operation == OpCreate && w.injectEnv():
		return denied(RuleHeadlessConflict, pathAnnotations.Key(AnnotationInjectEnv), msgHeadlessConflictInjectEnv(w, svc.Name, svc.Spec.ClusterIP, true))
	case req.Operation == OpCreate:
		return warned(RuleHeadlessConflict, pathServiceName, msgHeadlessConflict(w, svc.Name, svc.Spec.ClusterIP))
	case req.Operation == OpUpdate && turnsInjectEnvOn(req):
		return denied(RuleHeadlessConflict, pathAnnotations.Key(AnnotationInjectEnv), msgHeadlessConflictInjectEnv(w, svc.Name, svc.Spec.ClusterIP, false))
	}
	return Result{}
}

// turnsInjectEnvOn reports whether an UPDATE asks for the identity as
// environment variables that the stored object did not ask for.
func turnsInjectEnvOn(req WorkloadRequest) bool {
	return TurnsInjectEnvOn(req.Object, req.Old)
}

// TurnsInjectEnvOn reports whether w asks for the identity as environment
// variables and old (the stored object of an UPDATE, nil on CREATE) did
// not: the review engine then looks up the Service for headless-conflict.
func TurnsInjectEnvOn(w Workload, old *Observed) bool {
	return w.injectEnv() && (old == nil || !old.injectEnv())
}

// auditHeadlessConflict is checkHeadlessConflict on a stored StatefulSet,
// for the background audit: its Service is foreign and not headless
// (GivesPodDNSNames is false), so it reports the warning the CREATE gave, or
// the denial when the StatefulSet asks for inject-env.
func auditHeadlessConflict(w Workload, svc *corev1.Service) Result {
	if w.injectEnv() {
		return denied(RuleHeadlessConflict, pathAnnotations.Key(AnnotationInjectEnv), msgHeadlessConflictInjectEnv(w, svc.Name, svc.Spec.ClusterIP, false))
	}
	return warned(RuleHeadlessConflict, pathServiceName, msgHeadlessConflict(w, svc.Name, svc.Spec.ClusterIP))
}

// checkSharedClaims warns about claims that several instances would share:
// any claim volume of a stateful-multi StatefulSet, and a single-node claim
// of a stateless-multi Deployment with more than one replica.
func checkSharedClaims(req WorkloadRequest, t DeployType) Result {
	w := req.Object
	var r Result
	for v := range w.Storage().Mounted() {
		at := pathVolumes.Index(v.Index).Child("persistentVolumeClaim", "claimName")
		switch t {
		case StatefulMulti:
			r.Add(warned(RuleSharedClaim, at, msgSharedClaimStatefulMulti(w, v.Name, v.Claim)))
		case StatelessMulti:
			if w.DesiredReplicas() <= 1 {
				continue
			}
			if mode, single := singleNodeAccessMode(req.Claims[v.Claim]); single {
				r.Add(warned(RuleSharedClaim, at, msgSharedClaimSingleNode(w, w.DesiredReplicas(), v.Name, v.Claim, string(mode))))
			}
		}
	}
	return r
}

// checkAnnotations reports statekeeper annotations whose values cannot be used.
func checkAnnotations(w Workload) Result {
	var r Result
	if v, ok := w.Annotations[AnnotationStorageSize]; ok {
		if _, err := parseStorageSize(v); err != nil {
			r.Add(denied(RuleInvalidAnnotation, pathAnnotations.Key(AnnotationStorageSize), msgInvalidStorageSize(w, v)))
		}
	}
	if v, ok := w.Annotations[AnnotationStorageClass]; ok && v != "" {
		if len(validation.IsDNS1123Subdomain(v)) > 0 {
			r.Add(denied(RuleInvalidAnnotation, pathAnnotations.Key(AnnotationStorageClass), msgInvalidStorageClass(w, v)))
		}
	}
	if _, err := w.quorumExternalVotes(); err != nil {
		r.Add(denied(RuleInvalidAnnotation, pathAnnotations.Key(AnnotationQuorumExternalVotes), msgInvalidExternalVotes(w, w.Annotations[AnnotationQuorumExternalVotes])))
	}
	for _, key := range []string{AnnotationQuorum, AnnotationInjectEnv} {
		if v, ok := w.Annotations[key]; ok && v != "true" && v != "false" {
			r.Add(denied(RuleInvalidAnnotation, pathAnnotations.Key(key), msgInvalidBool(w, key, v)))
		}
	}
	return r
}

// parseStorageSize accepts only positive quantities: a claim of size zero
// (or less) cannot be provisioned.
func parseStorageSize(v string) (resource.Quantity, error) {
	q, err := resource.ParseQuantity(v)
	if err != nil {
		return resource.Quantity{}, err
	}
	if q.Sign() <= 0 {
		return resource.Quantity{}, fmt.Errorf("storage size %q is not positive", v)
	}
	return q, nil
}

func denied(rule Rule, at *field.Path, msg string) Result {
	return Result{Denials: []Violation{{Rule: rule, Field: at, Message: msg}}}
}

func warned(rule Rule, at *field.Path, msg string) Result {
	return Result{Warnings: []Violation{{Rule: rule, Field: at, Message: msg}}}
}
