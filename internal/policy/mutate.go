package policy

import (
	"encoding/json"
	"reflect"

	"gomodules.xyz/jsonpatch/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Workload mutations (docs/spec.md §2) are small mutators run in a fixed order; each
// appends JSON patch operations against the raw request object to one shared
// builder, and the list is returned at the end. The order, which is also the
// order of the operations in the patch:
//
// StatefulSet, CREATE, stateful-*:
//  1. defaultServiceName   spec.serviceName = <name>-headless when empty
//  2. injectClaimTemplates a claim template for every unresolved volume mount
//  3. labelPodTemplate     the pod template gets the deploy-type label
//
// StatefulSet, UPDATE (carry over what the stored object has and the incoming
// one lacks; never introduce anything, so existing pods never roll):
//  1. keepServiceName
//  2. keepClaimTemplates
//  3. keepPodTemplateLabel
//  4. keepTemplateSizes    the stored storage requests of claim templates
//     resized in the manifest, the larger sizes recorded (claimsizes.go)
//
// Deployment, CREATE or UPDATE:
//  1. recreateForSingleNodeClaims  spec.strategy = Recreate for stateless-single
//     with a ReadWriteOnce claim mounted, unless the manifest sets a strategy
//
// Every mutator is idempotent: on its own output it adds nothing.

// Defaults are the settings of injected claim templates when the workload's
// annotations name none (the --default-storage-size and
// --default-storage-class flags). An empty StorageClass leaves the class to
// the cluster's default.
type Defaults struct {
	StorageSize  resource.Quantity
	StorageClass string
}

// mutation is the state one mutation pass shares between its mutators.
type mutation struct {
	req        WorkloadRequest
	deployType DeployType
	defaults   Defaults
	patch      patchBuilder
}

type mutator func(*mutation)

var (
	statefulSetCreateMutators = []mutator{defaultServiceName, injectClaimTemplates, labelPodTemplate}
	statefulSetUpdateMutators = []mutator{keepServiceName, keepClaimTemplates, keepPodTemplateLabel, keepTemplateSizes}
	deploymentMutators        = []mutator{recreateForSingleNodeClaims}
)

// Mutable reports whether a workload can be mutated as its deploy type: it is
// unmanaged (nothing to do), or its type runs as its kind and its annotations
// can be used. Validation denies the others, and the review engine answers
// the mutating webhook with that verdict.
func Mutable(w Workload) bool {
	if !w.Managed() {
		return true
	}
	t, _, err := w.DeployType()
	return err == nil && t.Kind() == w.Kind && checkAnnotations(w).Allowed()
}

// MutateWorkload returns the JSON patch that docs/spec.md §2 applies to a workload
// CREATE or UPDATE. Workloads that are unmanaged or not Mutable get none.
func MutateWorkload(req WorkloadRequest, d Defaults) []jsonpatch.Operation {
	w := req.Object
	if !w.Managed() || !Mutable(w) {
		return nil
	}
	t, _, _ := w.DeployType()

	var mutators []mutator
	switch {
	case w.Kind == KindStatefulSet && req.Operation == OpCreate:
		mutators = statefulSetCreateMutators
	case w.Kind == KindStatefulSet && req.Operation == OpUpdate:
		mutators = statefulSetUpdateMutators
	case w.Kind == KindDeployment && (req.Operation == OpCreate || req.Operation == OpUpdate):
		mutators = deploymentMutators
	}
	m := &mutation{req: req, deployType: t, defaults: d}
	for _, mutate := range mutators {
		mutate(m)
	}
	return m.patch.ops
}

// defaultServiceName names the headless Service the reconciler creates.
func defaultServiceName(m *mutation) {
	w := m.req.Object
	if w.ServiceName != "" {
		return
	}
	m.patch.set(HeadlessServiceName(w.Name), specStep(w), step("serviceName", false))
}

// injectClaimTemplates gives every volume mount that names neither a pod
// volume nor a claim template its own per-instance claim.
func injectClaimTemplates(m *mutation) {
	w := m.req.Object
	names := w.UnresolvedMounts()
	if len(names) == 0 {
		return
	}
	size, class := m.storage()
	templates := make([]any, len(names))
	for i, name := range names {
		templates[i] = newClaimTemplate(name, size, class)
	}
	appendItems(&m.patch, templates, specStep(w), step("volumeClaimTemplates", len(w.ClaimTemplates) > 0))
}

// labelPodTemplate marks the pods with their deploy type, which lets the pod
// webhook select them without looking up their owner.
func labelPodTemplate(m *mutation) {
	if _, ok := templateLabels(m.req.Object)[LabelDeployType]; ok {
		return
	}
	m.setTemplateLabel(LabelDeployType, string(m.deployType))
}

func keepServiceName(m *mutation) {
	w, old := m.req.Object, m.req.Old
	if old == nil || w.ServiceName != "" || old.ServiceName == "" {
		return
	}
	m.patch.set(old.ServiceName, specStep(w), step("serviceName", false))
}

// keepClaimTemplates copies the stored template of every unresolved mount
// verbatim: volumeClaimTemplates is immutable, so anything else would fail.
func keepClaimTemplates(m *mutation) {
	w, old := m.req.Object, m.req.Old
	if old == nil {
		return
	}
	var templates []any
	for _, name := range w.UnresolvedMounts() {
		for _, t := range old.ClaimTemplates {
			if t.Name == name {
				templates = append(templates, t)
				break
			}
		}
	}
	appendItems(&m.patch, templates, specStep(w), step("volumeClaimTemplates", len(w.ClaimTemplates) > 0))
}

func keepPodTemplateLabel(m *mutation) {
	if m.req.Old == nil {
		return
	}
	if _, ok := templateLabels(m.req.Object)[LabelDeployType]; ok {
		return
	}
	value, ok := templateLabels(m.req.Old.Workload)[LabelDeployType]
	if !ok {
		return
	}
	m.setTemplateLabel(LabelDeployType, value)
}

// recreateForSingleNodeClaims switches a single-instance Deployment that
// mounts a single-node claim to Recreate: a rolling update would start the new
// pod while the old one holds the volume, and wait forever for the attachment.
// A claim that was not found counts as ReadWriteOnce, the common default;
// Recreate is safe for one instance either way.
func recreateForSingleNodeClaims(m *mutation) {
	w := m.req.Object
	if m.deployType != StatelessSingle || !mountsSingleNodeClaim(w, m.req.Claims) {
		return
	}
	if w.Strategy.Type == appsv1.RecreateDeploymentStrategyType && w.Strategy.RollingUpdate == nil {
		return
	}
	// A RollingUpdate the manifest spells out is left as written (overriding
	// it would show as a diff forever in GitOps tools, which re-apply it);
	// validation warns about it (recreate-strategy).
	if w.Strategy.Type != appsv1.RecreateDeploymentStrategyType && strategyWrittenByUser(w) {
		return
	}
	// The whole strategy is replaced: the API rejects rollingUpdate with Recreate.
	recreate := appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	m.patch.set(recreate, specStep(w), step("strategy", !isZero(w.Strategy)))
}

// strategyWrittenByUser reports whether the Deployment's manifest sets
// spec.strategy. The API server defaults an omitted strategy to RollingUpdate
// with maxSurge and maxUnavailable 25% before admission, so the object alone
// cannot tell; what the client sent can: server-side apply records the
// fields a manifest sets in an Apply entry of managedFields (Flux, Argo CD
// with ServerSideApply, Helm 4), and client-side `kubectl apply` (Argo CD's
// default) keeps the manifest in the last-applied-configuration annotation.
// Other parameters than the defaults were written by someone in any case.
func strategyWrittenByUser(w Workload) bool {
	if !isDefaultRollingUpdate(w.Strategy) {
		return true
	}
	for _, entry := range w.ManagedFields {
		if entry.Operation == metav1.ManagedFieldsOperationApply && entry.FieldsV1 != nil &&
			(ownsField(entry.FieldsV1.Raw, "f:spec", "f:strategy", "f:type") ||
				ownsField(entry.FieldsV1.Raw, "f:spec", "f:strategy", "f:rollingUpdate")) {
			return true
		}
	}
	if last := w.Annotations[lastAppliedConfiguration]; last != "" {
		var applied struct {
			Spec struct {
				Strategy map[string]json.RawMessage `json:"strategy"`
			} `json:"spec"`
		}
		// An empty strategy ("strategy: {}") sets nothing.
		if json.Unmarshal([]byte(last), &applied) == nil && len(applied.Spec.Strategy) > 0 {
			return true
		}
	}
	return false
}

// lastAppliedConfiguration is where client-side `kubectl apply` keeps the manifest.
const lastAppliedConfiguration = "kubectl.kubernetes.io/last-applied-configuration"

// isDefaultRollingUpdate reports whether s is what the API server makes of
// an omitted strategy.
func isDefaultRollingUpdate(s appsv1.DeploymentStrategy) bool {
	defaultPercent := intstr.FromString("25%")
	return (s.Type == "" || s.Type == appsv1.RollingUpdateDeploymentStrategyType) &&
		(s.RollingUpdate == nil ||
			((s.RollingUpdate.MaxSurge == nil || *s.RollingUpdate.MaxSurge == defaultPercent) &&
				(s.RollingUpdate.MaxUnavailable == nil || *s.RollingUpdate.MaxUnavailable == defaultPercent)))
}

// surgesNone reports whether a rolling update stops the old pod before it
// starts the new one (maxSurge 0), which a single-node claim needs.
func surgesNone(s appsv1.DeploymentStrategy) bool {
	return s.RollingUpdate != nil && s.RollingUpdate.MaxSurge != nil &&
		(*s.RollingUpdate.MaxSurge == intstr.FromInt32(0) || *s.RollingUpdate.MaxSurge == intstr.FromString("0%"))
}

// ownsField reports whether a managedFields FieldsV1 set holds the path.
func ownsField(raw []byte, path ...string) bool {
	for _, key := range path {
		var fields map[string]json.RawMessage
		if json.Unmarshal(raw, &fields) != nil {
			return false
		}
		next, ok := fields[key]
		if !ok {
			return false
		}
		raw = next
	}
	return true
}

func mountsSingleNodeClaim(w Workload, claims map[string]*corev1.PersistentVolumeClaim) bool {
	for v := range w.Storage().Mounted() {
		claim, found := claims[v.Claim]
		if !found || claim == nil {
			return true
		}
		if _, single := singleNodeAccessMode(claim); single {
			return true
		}
	}
	return false
}

// storage is the size and class of injected claims. Annotations were
// validated before any mutator ran; an annotated empty class means the
// cluster's default class.
func (m *mutation) storage() (resource.Quantity, string) {
	annotations := m.req.Object.Annotations
	size := m.defaults.StorageSize
	if v, ok := annotations[AnnotationStorageSize]; ok {
		if q, err := parseStorageSize(v); err == nil {
			size = q
		}
	}
	class := m.defaults.StorageClass
	if v, ok := annotations[AnnotationStorageClass]; ok {
		class = v
	}
	return size, class
}

func newClaimTemplate(name string, size resource.Quantity, class string) injectedClaim {
	t := injectedClaim{Metadata: claimMetadata{Name: name, Annotations: injectedMarker{Injected: "true"}}}
	t.Spec.AccessModes[0] = corev1.ReadWriteOnce
	t.Spec.Resources.Requests.Storage = size
	if class != "" {
		t.Spec.StorageClassName = &class
	}
	return t
}

// injectedClaim is a volume claim template as statekeeper injects it: only
// the fields it sets, named and ordered as a PersistentVolumeClaim writes
// them (TestClaimTemplateIsAClaim). Every StatefulSet CREATE without claims
// encodes one on the admission path, and the typed claim (ObjectMeta, the
// whole spec, its maps) cost more to build and encode than the rest of the
// mutation; it would also write an empty "status: {}" that nobody asked for
// and every `check -o yaml` would show.
type injectedClaim struct {
	Metadata claimMetadata `json:"metadata"`
	Spec     struct {
		AccessModes [1]corev1.PersistentVolumeAccessMode `json:"accessModes"`
		Resources   struct {
			Requests struct {
				Storage resource.Quantity `json:"storage"`
			} `json:"requests"`
		} `json:"resources"`
		StorageClassName *string `json:"storageClassName,omitempty"`
	} `json:"spec"`
}

type claimMetadata struct {
	Name        string         `json:"name"`
	Annotations injectedMarker `json:"annotations"`
}

// injectedMarker is the annotation AnnotationInjected (a tag cannot name
// the constant; the test holds them equal).
type injectedMarker struct {
	Injected string `json:"statekeeper.io/injected"`
}

// setTemplateLabel adds one label to the pod template, creating the template,
// its metadata or its labels when the raw object may lack them.
func (m *mutation) setTemplateLabel(key, value string) {
	w := m.req.Object
	var tpl corev1.PodTemplateSpec
	if w.Template != nil {
		tpl = *w.Template
	}
	m.patch.set(value,
		specStep(w),
		step("template", !isZero(tpl)),
		step("metadata", !isZero(tpl.ObjectMeta)),
		step("labels", len(tpl.Labels) > 0),
		step(key, false),
	)
}

func templateLabels(w Workload) map[string]string {
	if w.Template == nil {
		return nil
	}
	return w.Template.Labels
}

// specStep is the workload's spec. Its presence is inferred from the fields
// the Workload view carries: a spec without selector and template is
// rejected by the API server anyway, so adding it whole loses nothing that
// could have been admitted.
func specStep(w Workload) pathStep {
	present := w.Selector != nil || w.Replicas != nil || w.ServiceName != "" ||
		len(w.ClaimTemplates) > 0 || !isZero(w.Strategy) ||
		(w.Template != nil && !isZero(*w.Template))
	return step("spec", present)
}

func isZero[T any](v T) bool { return reflect.ValueOf(&v).Elem().IsZero() }
