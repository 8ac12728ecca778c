// Package policy holds statekeeper's decisions as pure functions: typed objects
// in, JSON patch operations, denials and warnings out. It has no client, no
// context and no HTTP, so every rule can be tested as a table and reused
// unchanged by the webhook server and by the offline `statekeeper check`.
package policy

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Keys of statekeeper's user API (docs/spec.md §1).
const (
	LabelDeployType        = "statekeeper.io/deploy-type"
	LabelComponent         = "statekeeper.io/component"
	LabelMode              = "statekeeper.io/mode"
	AnnotationStorageSize  = "statekeeper.io/storage-size"
	AnnotationStorageClass = "statekeeper.io/storage-class"
	AnnotationQuorum       = "statekeeper.io/quorum"
	AnnotationInjectEnv    = "statekeeper.io/inject-env"
	// AnnotationQuorumExternalVotes counts the voters of a quorum workload's
	// quorum that live outside it (an arbiter in another StatefulSet): the
	// quorum rule then wants replicas + votes odd.
	AnnotationQuorumExternalVotes = "statekeeper.io/quorum-external-votes"
	// AnnotationClaimSizes is where statekeeper records the sizes a
	// StatefulSet's own claim templates asked for beyond the stored ones
	// ("data=20Gi,logs=5Gi"): the template stays, its claims grow
	// (docs/spec.md §10). statekeeper writes it; its sizes only grow.
	AnnotationClaimSizes = "statekeeper.io/claim-sizes"

	// LabelManagedBy marks the objects statekeeper owns (the headless Service).
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagerName    = "statekeeper"
)

// DeployType is one of the four component deployment types.
type DeployType string

const (
	StatefulSingle  DeployType = "stateful-single"
	StatefulMulti   DeployType = "stateful-multi"
	StatelessSingle DeployType = "stateless-single"
	StatelessMulti  DeployType = "stateless-multi"
)

// DeployTypes lists the valid deploy types in the order users read them.
var DeployTypes = []DeployType{StatefulSingle, StatefulMulti, StatelessSingle, StatelessMulti}

// ParseDeployType returns the deploy type named by s, or an error listing the valid ones.
func ParseDeployType(s string) (DeployType, error) {
	for _, t := range DeployTypes {
		if string(t) == s {
			return t, nil
		}
	}
	return "", fmt.Errorf("unknown deploy type %q: must be one of %s", s, joinQuoted(DeployTypes))
}

// Stateful reports whether the type runs as a StatefulSet.
func (t DeployType) Stateful() bool { return t == StatefulSingle || t == StatefulMulti }

// Single reports whether the type allows at most one replica.
func (t DeployType) Single() bool { return t == StatefulSingle || t == StatelessSingle }

// Kind is the workload kind the type must run as.
func (t DeployType) Kind() Kind {
	if t.Stateful() {
		return KindStatefulSet
	}
	return KindDeployment
}

// Kind is a workload kind statekeeper manages.
type Kind string

const (
	KindDeployment  Kind = "Deployment"
	KindStatefulSet Kind = "StatefulSet"
)

// Other returns the kind a component switches to or from.
func (k Kind) Other() Kind {
	if k == KindDeployment {
		return KindStatefulSet
	}
	return KindDeployment
}

// Lower is the kind as kubectl prints it in resource names ("statefulset").
func (k Kind) Lower() string { return strings.ToLower(string(k)) }

// Mode is a namespace's enforcement mode (docs/spec.md §6).
type Mode string

const (
	ModeEnforce Mode = "enforce"
	ModeWarn    Mode = "warn"
	// ModeAudit admits everything unchanged and records what the rules say
	// (the audit report, the API server's audit log), as Pod Security
	// Admission's audit mode does: a namespace can be judged before it is enforced.
	ModeAudit Mode = "audit"
	ModeOff   Mode = "off"
)

// Modes lists the valid modes.
var Modes = []Mode{ModeEnforce, ModeWarn, ModeAudit, ModeOff}

// Acts reports whether statekeeper changes anything in a namespace of this
// mode: mutations, pod identity and headless Services apply in enforce and
// warn only; audit only observes.
func (m Mode) Acts() bool { return m == ModeEnforce || m == ModeWarn }

// ParseMode returns the mode named by s, or an error listing the valid ones.
func ParseMode(s string) (Mode, error) {
	for _, m := range Modes {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("unknown mode %q: must be one of %s", s, joinQuoted(Modes))
}

// NamespaceMode is the mode of a namespace whose statekeeper.io/mode label
// is label (labelled false: no label, and defaultMode applies). An invalid
// label enforces, failing safe, and says so in a warning.
func NamespaceMode(namespace, label string, labelled bool, defaultMode Mode) (Mode, []Violation) {
	if !labelled {
		return defaultMode, nil
	}
	mode, err := ParseMode(label)
	if err != nil {
		return ModeEnforce, []Violation{{Rule: RuleInvalidMode, Message: msgInvalidMode(namespace, err)}}
	}
	return mode, nil
}

// Rule is the stable ID of a rule or warning; it appears in every message, log
// line and metric label.
type Rule string

const (
	RuleSingleInstance   Rule = "single-instance"
	RuleKindMismatch     Rule = "kind-mismatch"
	RuleKindSwitch       Rule = "kind-switch"
	RuleTypeChange       Rule = "type-change"
	RuleQuorum           Rule = "quorum"
	RuleHeadlessConflict Rule = "headless-conflict"
	RuleSharedClaim      Rule = "shared-claim"
	// RuleInvalidAnnotation denies a statekeeper annotation whose value cannot be used.
	RuleInvalidAnnotation Rule = "invalid-annotation"
	// RuleInvalidMode warns that a namespace's statekeeper.io/mode label has a
	// value statekeeper does not know; the namespace is then enforced.
	RuleInvalidMode Rule = "invalid-mode"
	// RuleStorageResize denies a statekeeper.io/storage-size change that the
	// claims cannot follow: a shrink, or growth their class cannot expand.
	RuleStorageResize Rule = "storage-resize"
	// RuleRecreateStrategy warns that a single-instance Deployment with a
	// single-node claim keeps the RollingUpdate strategy its manifest sets.
	RuleRecreateStrategy Rule = "recreate-strategy"
	// RuleDeletionProtection denies deleting a protected workload that runs
	// with persistent volumes.
	RuleDeletionProtection Rule = "deletion-protection"
	// RuleHeadlessMissing is found by the background audit only: a stateful
	// StatefulSet whose headless Service does not exist (admission cannot see
	// a Service deleted later, nor a namespace where statekeeper only audits).
	RuleHeadlessMissing Rule = "headless-missing"
	// RuleUnknownKey warns of a key under statekeeper.io/ that statekeeper
	// does not know, or knows in another place (KnownKeys).
	RuleUnknownKey Rule = "unknown-key"
	// RuleEphemeralData warns that a stateful workload keeps its data in
	// emptyDir volumes only, which die with the pod.
	RuleEphemeralData Rule = "ephemeral-data"
)

// KeyPrefix is the prefix of every label and annotation key statekeeper reads or writes.
const KeyPrefix = "statekeeper.io/"

// KeyPlace is where statekeeper reads or writes a key of its own.
type KeyPlace string

const (
	// PlaceWorkloadLabel: a label of a Deployment or StatefulSet, or of its
	// pod template, which statekeeper reads where the workload lacks it.
	PlaceWorkloadLabel KeyPlace = "workload label"
	// PlaceWorkloadAnnotation: an annotation of a Deployment or StatefulSet,
	// or of its pod template.
	PlaceWorkloadAnnotation KeyPlace = "workload annotation"
	// PlaceNamespaceLabel: a label of a Namespace.
	PlaceNamespaceLabel KeyPlace = "namespace label"
	// PlacePodAnnotation: an annotation statekeeper stamps on pods itself.
	PlacePodAnnotation KeyPlace = "pod annotation"
	// PlaceClaimTemplateAnnotation: an annotation statekeeper puts on the
	// volume claim templates it injects.
	PlaceClaimTemplateAnnotation KeyPlace = "claim template annotation"
	// PlaceRecordedAnnotation: an annotation statekeeper writes on a
	// StatefulSet's own metadata (never read from its pod template).
	PlaceRecordedAnnotation KeyPlace = "recorded workload annotation"
)

// KnownKey is one key statekeeper reads or writes, and where.
type KnownKey struct {
	Key   string
	Place KeyPlace
}

// KnownKeys is every key under statekeeper.io/ and its places (a key with
// two places has two rows): the one list the unknown-key rule judges a
// workload's keys by (docs/spec.md §1 and §5).
var KnownKeys = []KnownKey{
	{LabelDeployType, PlaceWorkloadLabel},
	{LabelComponent, PlaceWorkloadLabel},
	{AnnotationStorageSize, PlaceWorkloadAnnotation},
	{AnnotationStorageClass, PlaceWorkloadAnnotation},
	{AnnotationQuorum, PlaceWorkloadAnnotation},
	{AnnotationQuorumExternalVotes, PlaceWorkloadAnnotation},
	{AnnotationInjectEnv, PlaceWorkloadAnnotation},
	{AnnotationProtect, PlaceWorkloadAnnotation},
	{AnnotationDisruptionBudget, PlaceWorkloadAnnotation},
	{LabelMode, PlaceNamespaceLabel},
	{LabelProtect, PlaceNamespaceLabel},
	{AnnotationOrdinal, PlacePodAnnotation},
	{AnnotationHostname, PlacePodAnnotation},
	{AnnotationService, PlacePodAnnotation},
	{AnnotationFQDN, PlacePodAnnotation},
	{AnnotationPrimaryFQDN, PlacePodAnnotation},
	{AnnotationPeers, PlacePodAnnotation},
	{AnnotationPeersReplicas, PlacePodAnnotation},
	{AnnotationInjected, PlaceClaimTemplateAnnotation},
	{AnnotationClaimSizes, PlaceRecordedAnnotation},
}

// Violation is one denial or warning: the rule, the field it is about and a
// message that says what was refused, why, and how to proceed.
type Violation struct {
	Rule    Rule
	Field   *field.Path
	Message string
}

// String is the message as users see it, ending with the rule ID.
func (v Violation) String() string { return fmt.Sprintf("%s [%s]", v.Message, v.Rule) }

// Result is the outcome of validating one request.
type Result struct {
	Denials  []Violation
	Warnings []Violation
}

// Allowed reports whether nothing was denied.
func (r Result) Allowed() bool { return len(r.Denials) == 0 }

// Add appends other's denials and warnings to r.
func (r *Result) Add(other Result) {
	r.Denials = append(r.Denials, other.Denials...)
	r.Warnings = append(r.Warnings, other.Warnings...)
}

// Workload is a kind-neutral view of a Deployment or a StatefulSet: the fields
// the rules read. It points into the original object and must not be mutated.
type Workload struct {
	Kind      Kind
	Namespace string
	Name      string
	// Labels and Annotations are the effective ones (EffectiveKeys): the
	// object's own, and statekeeper's keys that only its pod template
	// carries. Every reader of statekeeper's keys reads them here.
	Labels      map[string]string
	Annotations map[string]string
	// Replicas is spec.replicas; nil means the API server's default of 1.
	Replicas       *int32
	StatusReplicas int32
	Selector       *metav1.LabelSelector
	Template       *corev1.PodTemplateSpec
	// ClaimTemplates and ServiceName are empty for Deployments.
	ClaimTemplates []corev1.PersistentVolumeClaim
	ServiceName    string
	// Strategy is spec.strategy; zero for StatefulSets.
	Strategy appsv1.DeploymentStrategy
	// ManagedFields tell which fields a server-side apply set.
	ManagedFields []metav1.ManagedFieldsEntry
}

// FromDeployment views d as a Workload.
func FromDeployment(d *appsv1.Deployment) Workload {
	w := Workload{
		Kind: KindDeployment, Namespace: d.Namespace, Name: d.Name,
		Replicas: d.Spec.Replicas, StatusReplicas: d.Status.Replicas,
		Selector: d.Spec.Selector, Template: &d.Spec.Template,
		Strategy: d.Spec.Strategy, ManagedFields: d.ManagedFields,
	}
	w.Labels, w.Annotations = effectiveMetadata(&d.ObjectMeta, &d.Spec.Template.ObjectMeta)
	return w
}

// FromStatefulSet views s as a Workload.
func FromStatefulSet(s *appsv1.StatefulSet) Workload {
	w := Workload{
		Kind: KindStatefulSet, Namespace: s.Namespace, Name: s.Name,
		Replicas: s.Spec.Replicas, StatusReplicas: s.Status.Replicas,
		Selector: s.Spec.Selector, Template: &s.Spec.Template,
		ClaimTemplates: s.Spec.VolumeClaimTemplates, ServiceName: s.Spec.ServiceName,
	}
	w.Labels, w.Annotations = effectiveMetadata(&s.ObjectMeta, &s.Spec.Template.ObjectMeta)
	return w
}

// effectiveMetadata is a workload's effective labels and annotations
// (EffectiveKeys) from its own metadata and its pod template's.
func effectiveMetadata(own, template *metav1.ObjectMeta) (labels, annotations map[string]string) {
	return EffectiveKeys(own.Labels, template.Labels), EffectiveKeys(own.Annotations, template.Annotations)
}

// Ref is "kind/name" lower-cased as in kubectl's output ("statefulset \"db\"").
func (w Workload) Ref() string { return fmt.Sprintf("%s %q", w.Kind.Lower(), w.Name) }

// Component is the identity that survives a kind switch (ComponentOf).
func (w Workload) Component() string { return ComponentOf(w.Labels, w.Name) }

// ComponentOf is the component of a workload with these labels and name: its
// component label, or its name. The one definition; the cache's component
// index uses it too.
func ComponentOf(labels map[string]string, name string) string {
	if c := labels[LabelComponent]; c != "" {
		return c
	}
	return name
}

// ServiceNameOrDefault is the headless Service a StatefulSet's pods live
// under: spec.serviceName, or the name statekeeper gives one that names none.
func (w Workload) ServiceNameOrDefault() string {
	if w.ServiceName != "" {
		return w.ServiceName
	}
	return HeadlessServiceName(w.Name)
}

// Managed reports whether the workload carries the deploy-type label at all,
// on itself or on its pod template.
func (w Workload) Managed() bool {
	_, ok := w.Labels[LabelDeployType]
	return ok
}

// DeployType parses the deploy-type label; ok is false when the label is absent.
func (w Workload) DeployType() (t DeployType, ok bool, err error) {
	v, ok := w.Labels[LabelDeployType]
	if !ok {
		return "", false, nil
	}
	t, err = ParseDeployType(v)
	return t, true, err
}

// DesiredReplicas is spec.replicas with the API server's default applied.
func (w Workload) DesiredReplicas() int32 {
	if w.Replicas == nil {
		return 1
	}
	return *w.Replicas
}

// Quorum reports whether the workload asks for an odd replica count.
func (w Workload) Quorum() bool { return w.Annotations[AnnotationQuorum] == "true" }

// HasPersistentVolumes reports whether the workload keeps data in claims
// (Storage.Persistent).
func (w Workload) HasPersistentVolumes() bool { return w.Storage().Persistent() }

// Observed is an existing workload as the cluster sees it, with what the
// object alone does not tell.
type Observed struct {
	Workload
	// PodsExist is true while any pod selected by the workload still exists
	// (including terminating ones, which may still write to their volumes).
	// It costs a listing of the namespace's pods, so lookups fill it only
	// when the replicas alone do not say the workload runs (RunsByReplicas).
	PodsExist bool
}

// Running reports whether the workload has or wants pods.
func (o Observed) Running() bool { return o.RunsByReplicas() || o.PodsExist }

// RunsByReplicas reports whether the replicas alone, desired or in status,
// say the workload runs.
func (w Workload) RunsByReplicas() bool { return w.DesiredReplicas() > 0 || w.StatusReplicas > 0 }

func joinQuoted[T ~string](values []T) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(quoted, ", ")
}
