package policy

import (
	"fmt"
	"iter"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Operation is the admission operation a workload request carries.
type Operation string

const (
	OpCreate Operation = "CREATE"
	OpUpdate Operation = "UPDATE"
)

// WorkloadRequest is a CREATE or UPDATE of a Deployment or StatefulSet
// together with the cluster facts the rules need, gathered by the caller.
type WorkloadRequest struct {
	Operation Operation
	Object    Workload
	// Old is the stored object on UPDATE, nil on CREATE.
	Old *Observed
	// Counterparts are, on CREATE, the workloads of the other kind with the
	// same component in the namespace, labelled or not.
	Counterparts []Observed
	// Claims holds the existing claims named by the pod template's
	// persistentVolumeClaim volumes; a name absent from the map is a claim
	// that was not found.
	Claims map[string]*corev1.PersistentVolumeClaim
	// Service is, on CREATE of a stateful-* StatefulSet, the existing Service
	// named by spec.serviceName (after mutation), or nil.
	Service *corev1.Service
	// StorageClasses are the cluster's classes, looked up on a StatefulSet
	// UPDATE that changes statekeeper.io/storage-size (nil otherwise).
	StorageClasses []storagev1.StorageClass
}

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

// ValidateWorkload applies the rules of SPEC §4 to a workload CREATE or
// UPDATE. Denials come in the order of SPEC §4's table (single-instance,
// kind-mismatch, kind-switch, type-change, quorum, headless-conflict), then
// invalid-annotation; warnings are kind-switch, then shared-claim.
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
	if kindMatches && req.Operation == OpCreate {
		r.Add(checkHeadlessConflict(req, t))
	}
	if kindMatches && req.Operation == OpUpdate {
		r.Add(checkStorageResize(req, t))
	}
	r.Add(checkAnnotations(w))
	if kindMatches {
		r.Add(checkSharedClaims(req, t))
	}
	return r
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
		r.Add(warned(RuleKindSwitch, at, msgKindSwitchClosed(existing, req.Object, claimNames(existing.Workload))))
	}
	return r
}

// claimNames names the claims a workload keeps its data in: its claim
// volumes' claims, and for each claim template the per-ordinal pattern the
// StatefulSet controller creates ("data-db-*").
func claimNames(w Workload) []string {
	var names []string
	seen := map[string]bool{}
	add := func(name string) {
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	for _, v := range w.ClaimVolumes() {
		add(v.PersistentVolumeClaim.ClaimName)
	}
	for _, t := range w.ClaimTemplates {
		add(fmt.Sprintf("%s-%s-*", t.Name, w.Name))
	}
	return names
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

func checkQuorum(w Workload, replicas int32) Result {
	if !w.Quorum() || replicas < 2 || replicas%2 != 0 {
		return Result{}
	}
	return denied(RuleQuorum, pathReplicas, msgQuorum(w, replicas))
}

// checkHeadlessConflict refuses a stateful StatefulSet whose Service exists,
// belongs to someone else and is not headless: its pods would get no per-pod
// DNS names, and statekeeper leaves foreign Services alone.
func checkHeadlessConflict(req WorkloadRequest, t DeployType) Result {
	svc := req.Service
	if req.Object.Kind != KindStatefulSet || !t.Stateful() || svc == nil {
		return Result{}
	}
	if IsManagedService(svc) || IsHeadless(svc) {
		return Result{}
	}
	return denied(RuleHeadlessConflict, pathServiceName, msgHeadlessConflict(req.Object, svc.Name, svc.Spec.ClusterIP))
}

// checkSharedClaims warns about claims that several instances would share:
// any claim volume of a stateful-multi StatefulSet, and a single-node claim
// of a stateless-multi Deployment with more than one replica.
func checkSharedClaims(req WorkloadRequest, t DeployType) Result {
	w := req.Object
	var r Result
	for _, mv := range mountedClaimVolumes(w.Template) {
		at := pathVolumes.Index(mv.index).Child("persistentVolumeClaim", "claimName")
		claim := mv.volume.PersistentVolumeClaim.ClaimName
		switch t {
		case StatefulMulti:
			r.Add(warned(RuleSharedClaim, at, msgSharedClaimStatefulMulti(w, mv.volume.Name, claim)))
		case StatelessMulti:
			if w.DesiredReplicas() <= 1 {
				continue
			}
			if mode, single := singleNodeAccessMode(req.Claims[claim]); single {
				r.Add(warned(RuleSharedClaim, at, msgSharedClaimSingleNode(w, w.DesiredReplicas(), mv.volume.Name, claim, string(mode))))
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

// singleNodeAccessMode reports whether a claim can be attached on one node
// only, and the access mode that says so. The bound volume's modes (status)
// are the truth once bound; the requested ones (spec) before. A nil claim is
// unknown, not single-node.
func singleNodeAccessMode(claim *corev1.PersistentVolumeClaim) (corev1.PersistentVolumeAccessMode, bool) {
	if claim == nil {
		return "", false
	}
	modes := claim.Status.AccessModes
	if len(modes) == 0 {
		modes = claim.Spec.AccessModes
	}
	has := map[corev1.PersistentVolumeAccessMode]bool{}
	for _, m := range modes {
		has[m] = true
	}
	switch {
	case has[corev1.ReadWriteMany]:
		return "", false
	case has[corev1.ReadWriteOncePod]:
		return corev1.ReadWriteOncePod, true
	case has[corev1.ReadWriteOnce]:
		return corev1.ReadWriteOnce, true
	}
	return "", false
}

type indexedVolume struct {
	index  int
	volume corev1.Volume
}

// mountedClaimVolumes lists the claim volumes some container or init
// container mounts or uses as a block device: the kubelet sets up only those,
// so only those constrain where and how pods run.
func mountedClaimVolumes(tpl *corev1.PodTemplateSpec) []indexedVolume {
	if tpl == nil {
		return nil
	}
	used := map[string]bool{}
	for c := range podContainers(&tpl.Spec) {
		for _, m := range c.VolumeMounts {
			used[m.Name] = true
		}
		for _, d := range c.VolumeDevices {
			used[d.Name] = true
		}
	}
	var out []indexedVolume
	for i, v := range tpl.Spec.Volumes {
		if v.PersistentVolumeClaim != nil && used[v.Name] {
			out = append(out, indexedVolume{index: i, volume: v})
		}
	}
	return out
}

// podContainers yields init containers, then containers: the order in which
// the kubelet starts them.
func podContainers(spec *corev1.PodSpec) iter.Seq[*corev1.Container] {
	return func(yield func(*corev1.Container) bool) {
		for i := range spec.InitContainers {
			if !yield(&spec.InitContainers[i]) {
				return
			}
		}
		for i := range spec.Containers {
			if !yield(&spec.Containers[i]) {
				return
			}
		}
	}
}

func denied(rule Rule, at *field.Path, msg string) Result {
	return Result{Denials: []Violation{{Rule: rule, Field: at, Message: msg}}}
}

func warned(rule Rule, at *field.Path, msg string) Result {
	return Result{Warnings: []Violation{{Rule: rule, Field: at, Message: msg}}}
}
