package review

import (
	"context"
	"errors"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/statekeeper/statekeeper/internal/config"
	"github.com/statekeeper/statekeeper/internal/lookup"
	"github.com/statekeeper/statekeeper/internal/policy"
)

// ErrInvalidRequest marks a request the engine cannot read: an unknown
// resource, a body that is not the expected object. The webhook answers it
// with 400; any other error is a failure to read the cluster state.
var ErrInvalidRequest = errors.New("invalid admission request")

// Settings are the server-wide knobs of the engine (flags of `serve` and `check`).
type Settings struct {
	// Defaults size and class the claim templates statekeeper injects.
	Defaults policy.Defaults
	// DefaultMode applies to namespaces without the statekeeper.io/mode label.
	DefaultMode policy.Mode
	// ExcludedNamespaces are never reviewed (the system namespaces and
	// statekeeper's own), even when the webhook configuration sends them.
	ExcludedNamespaces []string
	// ClusterDomain builds pod FQDNs (pod identity stamping).
	ClusterDomain string
	// ClaimTemplatesMutable: the API server lets claim templates change
	// (KEP-4650), so a resized template is left as written instead of
	// recorded (--claim-template-resize, detected at start by the server).
	ClaimTemplatesMutable bool
}

// SettingsFrom are the settings a configuration asks for; the server,
// `check` and `audit` all build their engine from it, so they decide alike.
func SettingsFrom(c config.Config) Settings {
	return Settings{
		Defaults:           c.Defaults(),
		DefaultMode:        c.DefaultMode,
		ExcludedNamespaces: c.Excluded(),
		ClusterDomain:      c.ClusterDomain,
		// auto is resolved by the server, which asks the API server
		// (ServesMutableClaimTemplates); offline it records.
		ClaimTemplatesMutable: c.ClaimTemplateResize == config.ClaimTemplateResizeNative,
	}
}

// Engine decides admission requests. It is safe for concurrent use.
type Engine struct {
	lookup   lookup.Lookup
	settings Settings
	excluded map[string]bool
}

// New returns an engine reading the cluster through l. An empty DefaultMode
// means enforce.
func New(l lookup.Lookup, s Settings) *Engine {
	if s.DefaultMode == "" {
		s.DefaultMode = policy.ModeEnforce
	}
	excluded := make(map[string]bool, len(s.ExcludedNamespaces))
	for _, ns := range s.ExcludedNamespaces {
		excluded[ns] = true
	}
	return &Engine{lookup: l, settings: s, excluded: excluded}
}

func (r Resource) String() string {
	s := schema.GroupResource{Group: r.Group, Resource: r.Resource}.String()
	if r.SubResource != "" {
		s += "/" + r.SubResource
	}
	return s
}

// Mutate returns the JSON patch statekeeper applies to a workload CREATE or
// UPDATE (docs/spec.md §2, the /mutate webhook).
func (e *Engine) Mutate(ctx context.Context, req Request) (Decision, error) {
	return e.step(ctx, StepMutate, req)
}

// Validate judges a workload CREATE or UPDATE, a /scale update or an HPA
// (docs/spec.md §4, the /validate webhook).
func (e *Engine) Validate(ctx context.Context, req Request) (Decision, error) {
	return e.step(ctx, StepValidate, req)
}

// SizeClaim gives a claim the StatefulSet controller creates the size
// recorded for its template (the /mutate-claims webhook); see sizeClaim.
func (e *Engine) SizeClaim(ctx context.Context, req Request) (Decision, error) {
	return e.step(ctx, StepClaim, req)
}

// StampPod stamps the stable identity of docs/spec.md §5 on a pod CREATE (the
// /mutate-pods webhook); see stampPod.
func (e *Engine) StampPod(ctx context.Context, req Request) (Decision, error) {
	return e.step(ctx, StepStamp, req)
}

func (e *Engine) step(ctx context.Context, step Step, req Request) (Decision, error) {
	judge, err := e.judgeOf(step, req.Resource)
	if err != nil {
		return Decision{Name: req.Name}, err
	}
	return judge(ctx, req)
}

// workloadStep is the mutating or validating half of a workload review, run
// once the request is known to be managed and in a reviewed namespace. It
// reports whether d.Result is a verdict on the object, to which the namespace
// mode applies: validation always gives one, a mutation only when it refuses
// to mutate.
type workloadStep func(ctx context.Context, facts *workloadFacts, d *Decision) (verdict bool, err error)

// workloadFacts is a decoded workload request.
type workloadFacts struct {
	op     policy.Operation
	object policy.Workload
	// written are the object's keys where its manifest writes them.
	written policy.WrittenKeys
	// old is the stored object on UPDATE; its PodsExist is looked up only
	// when the deploy type changes, the one rule that reads it.
	old *policy.Observed
}

// workload runs the shared part of a workload review around step.
func (e *Engine) workload(ctx context.Context, req Request, kind policy.Kind, step workloadStep) (Decision, error) {
	d := Decision{Name: req.Name}
	op, err := workloadOperation(req.Operation)
	if err != nil {
		return d, err
	}
	if e.excluded[req.Namespace] {
		d.Skipped = true
		return d, nil
	}
	facts := &workloadFacts{op: op}
	if facts.object, facts.written, err = decodeWorkload(kind, req.DecodedObject, req.Object); err != nil {
		return d, err
	}
	fillIdentity(&facts.object, req)
	d.Name = facts.object.Name
	if op == policy.OpUpdate {
		old, _, err := decodeWorkload(kind, req.DecodedOldObject, req.OldObject)
		if err != nil {
			return d, fmt.Errorf("old object: %w", err)
		}
		fillIdentity(&old, req)
		facts.old = &policy.Observed{Workload: old}
	}
	// An unlabelled workload is not managed, except that removing the label
	// from a managed one is a type change the rules must see.
	if !facts.object.Managed() && (facts.old == nil || !facts.old.Managed()) {
		d.Skipped = true
		return d, nil
	}
	warnings, err := e.resolveMode(ctx, &d, req.Namespace)
	if err != nil || d.Skipped {
		return d, err
	}
	verdict, err := step(ctx, facts, &d)
	if err != nil {
		return d, err
	}
	if !d.Mode.Acts() {
		d.Patch = nil // audit mode changes nothing
	}
	if !verdict {
		return d, nil
	}
	e.applyMode(&d, warnings)
	return d, nil
}

// UnlabelledCreate judges the CREATE of an unlabelled workload by the
// kind-switch rule (the /validate-unlabelled webhook): docs/spec.md §1's unlabelled
// workloads are not managed, but creating one must not strand the data of
// the other kind's managed workload of its component; and its keys under
// statekeeper.io/ that statekeeper does not read are warned of (unknown-key:
// a misspelt deploy-type is why it is unmanaged). Anything else on this step
// is skipped: managed workloads are judged by the workload
// webhooks, and an UPDATE cannot switch kinds.
func (e *Engine) UnlabelledCreate(ctx context.Context, req Request) (Decision, error) {
	return e.step(ctx, StepUnlabelled, req)
}

func (e *Engine) unlabelled(ctx context.Context, req Request, kind policy.Kind) (Decision, error) {
	d := Decision{Name: req.Name, Skipped: true}
	if req.Operation != policy.OpCreate || e.excluded[req.Namespace] {
		return d, nil
	}
	w, written, err := decodeWorkload(kind, req.DecodedObject, req.Object)
	if err != nil {
		return d, err
	}
	fillIdentity(&w, req)
	d.Name = w.Name
	if w.Managed() {
		return d, nil
	}
	// The namespace's own warnings are left to managed workloads' reviews.
	if _, err := e.resolveMode(ctx, &d, req.Namespace); err != nil || d.Skipped {
		return d, err
	}
	counterparts, err := e.lookup.Component(ctx, kind.Other(), w.Namespace, w.Component())
	if err != nil {
		return d, fmt.Errorf("looking up %s workloads of component %q: %w", kind.Other().Lower(), w.Component(), err)
	}
	d.Result = policy.ValidateUnlabelledCreate(policy.WorkloadRequest{Operation: policy.OpCreate, Object: w, Written: written, Counterparts: counterparts})
	// Nothing to say is nothing done: the workload is not statekeeper's.
	d.Skipped = len(d.Result.Denials)+len(d.Result.Warnings) == 0
	e.applyMode(&d, nil)
	return d, nil
}

// mutateWorkload patches a workload. A workload that cannot be mutated as
// its type (a type of the other kind or none, an unusable annotation) is
// answered with the whole validation verdict instead: the API server's own
// validation, which runs between the mutating and the validating webhooks,
// would otherwise refuse it for a consequence (a volume mount statekeeper did
// not declare) and never show the reasons, and a denial names every rule the
// object breaks at once (docs/architecture.md).
func (e *Engine) mutateWorkload(ctx context.Context, facts *workloadFacts, d *Decision) (bool, error) {
	if !policy.Mutable(facts.object) {
		return e.validateWorkload(ctx, facts, d)
	}
	pr := policy.WorkloadRequest{
		Operation: facts.op, Object: facts.object, Written: facts.written, Old: facts.old,
		ClaimTemplatesMutable: e.settings.ClaimTemplatesMutable,
	}
	var err error
	if pr.Claims, err = e.claims(ctx, facts.object); err != nil {
		return false, err
	}
	// A claim template resized in the manifest is judged here, not by the
	// validating webhook: the API server's immutability check runs between
	// the two and would refuse it first, for a reason the user cannot act on.
	verdict := false
	if facts.op == policy.OpUpdate && policy.ResizesClaimTemplates(facts.object, facts.old) {
		if pr.StorageClasses, err = e.lookup.StorageClasses(ctx); err != nil {
			return false, fmt.Errorf("looking up the storage classes: %w", err)
		}
		if pr.TemplateClaims, err = e.templateClaims(ctx, facts.old.Workload); err != nil {
			return false, err
		}
		d.Result = policy.CheckClaimTemplateResize(pr)
		verdict = len(d.Result.Denials)+len(d.Result.Warnings) > 0
	}
	d.Patch = policy.MutateWorkload(pr, e.settings.Defaults)
	return verdict, nil
}

// templateClaims returns the existing claims of a stored StatefulSet's
// claim templates (policy.TemplateClaimNames), ordered by name.
func (e *Engine) templateClaims(ctx context.Context, sts policy.Workload) ([]corev1.PersistentVolumeClaim, error) {
	names := policy.TemplateClaimNames(sts)
	if len(names) == 0 {
		return nil, nil
	}
	found, err := e.lookup.Claims(ctx, sts.Namespace, names)
	if err != nil {
		return nil, fmt.Errorf("looking up the claims of %s: %w", sts.Ref(), err)
	}
	slices.Sort(names)
	var claims []corev1.PersistentVolumeClaim
	for _, name := range names {
		if claim := found[name]; claim != nil {
			claims = append(claims, *claim)
		}
	}
	return claims, nil
}

func (e *Engine) validateWorkload(ctx context.Context, facts *workloadFacts, d *Decision) (bool, error) {
	w := facts.object
	pr := policy.WorkloadRequest{Operation: facts.op, Object: w, Written: facts.written, Old: facts.old}
	var err error
	if pr.Claims, err = e.claims(ctx, w); err != nil {
		return false, err
	}
	switch facts.op {
	case policy.OpCreate:
		if pr.Counterparts, err = e.lookup.Component(ctx, w.Kind.Other(), w.Namespace, w.Component()); err != nil {
			return false, fmt.Errorf("looking up %s workloads of component %q: %w", w.Kind.Other().Lower(), w.Component(), err)
		}
		if pr.Service, err = e.headlessService(ctx, w); err != nil {
			return false, err
		}
		if pr.Autoscalers, err = e.autoscalers(ctx, w); err != nil {
			return false, err
		}
	case policy.OpUpdate:
		// An UPDATE is judged by its Service only when it turns inject-env on.
		if policy.TurnsInjectEnvOn(w, facts.old) {
			if pr.Service, err = e.headlessService(ctx, w); err != nil {
				return false, err
			}
		}
		// The classes decide whether claims can grow: read only when the size changes.
		if w.Kind == policy.KindStatefulSet && facts.old.Annotations[policy.AnnotationStorageSize] != w.Annotations[policy.AnnotationStorageSize] {
			if pr.StorageClasses, err = e.lookup.StorageClasses(ctx); err != nil {
				return false, fmt.Errorf("looking up the storage classes: %w", err)
			}
		}
		// Whether the old workload still has pods matters only to a type
		// change, and costs a pod listing: ask only then. The old object is
		// the stored one, so its selector is the one to match.
		if facts.old.Labels[policy.LabelDeployType] != w.Labels[policy.LabelDeployType] ||
			facts.old.Managed() != w.Managed() {
			if facts.old.PodsExist, err = e.lookup.PodsExist(ctx, facts.old.Namespace, facts.old.Selector); err != nil {
				return false, fmt.Errorf("looking up the pods of %s: %w", w.Ref(), err)
			}
		}
	}
	d.Result = policy.ValidateWorkload(pr)
	return true, nil
}

// headlessService returns the existing Service a stateful StatefulSet lives
// under, for the headless-conflict rule. Validation runs after mutation, so
// serviceName is normally set; the default name covers a request that
// skipped the mutating webhook.
func (e *Engine) headlessService(ctx context.Context, w policy.Workload) (*corev1.Service, error) {
	t, _, err := w.DeployType()
	if w.Kind != policy.KindStatefulSet || err != nil || !t.Stateful() {
		return nil, nil
	}
	name := w.ServiceNameOrDefault()
	svc, err := e.lookup.Service(ctx, w.Namespace, name)
	if err != nil {
		return nil, fmt.Errorf("looking up service %q: %w", name, err)
	}
	return svc, nil
}

// autoscalers returns the HPAs that target a *-single workload being
// created: Helm installs HPAs before workloads, so the pair is judged here.
func (e *Engine) autoscalers(ctx context.Context, w policy.Workload) ([]policy.Autoscaler, error) {
	if t, _, err := w.DeployType(); err != nil || !t.Single() {
		return nil, nil
	}
	autoscalers, err := e.lookup.Autoscalers(ctx, w.Namespace, w.Kind, w.Name)
	if err != nil {
		return nil, fmt.Errorf("looking up the horizontalpodautoscalers of %s: %w", w.Ref(), err)
	}
	return autoscalers, nil
}

// claims returns the existing claims the pod template mounts.
func (e *Engine) claims(ctx context.Context, w policy.Workload) (map[string]*corev1.PersistentVolumeClaim, error) {
	names := w.Storage().ClaimNames()
	if len(names) == 0 {
		return nil, nil
	}
	claims, err := e.lookup.Claims(ctx, w.Namespace, names)
	if err != nil {
		return nil, fmt.Errorf("looking up the claims of %s: %w", w.Ref(), err)
	}
	return claims, nil
}

// deletion judges deleting a workload (deletion protection): the object
// being deleted is the request's old object.
func (e *Engine) deletion(ctx context.Context, req Request, kind policy.Kind) (Decision, error) {
	d := Decision{Name: req.Name}
	if e.excluded[req.Namespace] {
		d.Skipped = true
		return d, nil
	}
	w, _, err := decodeWorkload(kind, req.DecodedOldObject, req.OldObject)
	if err != nil {
		return d, fmt.Errorf("old object: %w", err)
	}
	fillIdentity(&w, req)
	d.Name = w.Name
	if !w.Managed() {
		d.Skipped = true
		return d, nil
	}
	warnings, err := e.resolveMode(ctx, &d, w.Namespace)
	if err != nil || d.Skipped {
		return d, err
	}
	namespaceProtected, err := e.lookup.NamespaceProtected(ctx, w.Namespace)
	if err != nil {
		return d, fmt.Errorf("looking up namespace %q: %w", w.Namespace, err)
	}
	observed := policy.Observed{Workload: w}
	// Only a protected workload with volumes needs to know whether pods remain.
	if policy.Protected(w, namespaceProtected) && w.HasPersistentVolumes() && !observed.Running() {
		if observed.PodsExist, err = e.lookup.PodsExist(ctx, w.Namespace, w.Selector); err != nil {
			return d, fmt.Errorf("looking up the pods of %s: %w", w.Ref(), err)
		}
	}
	d.Result = policy.ValidateDelete(observed, namespaceProtected)
	e.applyMode(&d, warnings)
	return d, nil
}

// scale judges a /scale update by the parent workload's labels.
func (e *Engine) scale(ctx context.Context, req Request, kind policy.Kind) (Decision, error) {
	d := Decision{Name: req.Name}
	if e.excluded[req.Namespace] {
		d.Skipped = true
		return d, nil
	}
	s, err := objectOf[autoscalingv1.Scale](req.DecodedObject, req.Object, "Scale")
	if err != nil {
		return d, err
	}
	name := nonEmpty(req.Name, s.Name)
	d.Name = name
	return e.judgeParent(ctx, &d, req.Namespace, kind, name, func(parent *policy.Workload) policy.Result {
		if parent == nil {
			return policy.Result{} // the API server answers 404 itself
		}
		// An omitted spec.replicas is 0 (the field has omitempty).
		return policy.ValidateScale(*parent, s.Spec.Replicas)
	})
}

// hpa judges an HPA by its target's labels. With matchPolicy Equivalent an
// autoscaling/v1 HPA arrives converted to v2; both name their target and
// bound the same way, so either body decodes here.
func (e *Engine) hpa(ctx context.Context, req Request) (Decision, error) {
	d := Decision{Name: req.Name}
	if _, err := workloadOperation(req.Operation); err != nil {
		return d, err
	}
	if e.excluded[req.Namespace] {
		d.Skipped = true
		return d, nil
	}
	h, err := objectOf[autoscalingv2.HorizontalPodAutoscaler](req.DecodedObject, req.Object, "HorizontalPodAutoscaler")
	if err != nil {
		return d, err
	}
	name := nonEmpty(req.Name, h.Name)
	d.Name = name
	target := h.Spec.ScaleTargetRef
	gv, err := schema.ParseGroupVersion(target.APIVersion)
	if err != nil || gv.Group != appsv1.GroupName {
		d.Skipped = true
		return d, nil
	}
	var kind policy.Kind
	switch policy.Kind(target.Kind) {
	case policy.KindDeployment, policy.KindStatefulSet:
		kind = policy.Kind(target.Kind)
	default:
		d.Skipped = true
		return d, nil
	}
	return e.judgeParent(ctx, &d, req.Namespace, kind, target.Name, func(parent *policy.Workload) policy.Result {
		if parent == nil {
			return policy.ValidateHPAWithoutTarget(name, kind, target.Name, h.Spec.MaxReplicas)
		}
		return policy.ValidateHPA(name, *parent, h.Spec.MaxReplicas)
	})
}

// judgeParent applies the namespace mode and judge to the stored workload
// that a Scale or an HPA acts on, nil when it does not exist; an unmanaged
// parent, and an absent one judge has nothing to say about, are skipped.
func (e *Engine) judgeParent(ctx context.Context, d *Decision, namespace string, kind policy.Kind, name string, judge func(*policy.Workload) policy.Result) (Decision, error) {
	warnings, err := e.resolveMode(ctx, d, namespace)
	if err != nil || d.Skipped {
		return *d, err
	}
	parent, err := e.lookup.Workload(ctx, kind, namespace, name)
	if err != nil {
		return *d, fmt.Errorf("looking up %s %q: %w", kind.Lower(), name, err)
	}
	if parent != nil && !parent.Managed() {
		d.Skipped = true
		return *d, nil
	}
	d.Result = judge(parent)
	if parent == nil && len(d.Result.Warnings) == 0 {
		d.Skipped = true
		return *d, nil
	}
	e.applyMode(d, warnings)
	return *d, nil
}

// InScope reports whether statekeeper acts in the namespace: it is not
// excluded and its mode changes objects (enforce or warn, docs/spec.md §6). The
// reconcilers ask it, so that an off or audit namespace gets no Services,
// budgets, peers updates or grown claims either.
func (e *Engine) InScope(ctx context.Context, namespace string) (bool, error) {
	if e.excluded[namespace] {
		return false, nil
	}
	var d Decision
	_, err := e.resolveMode(ctx, &d, namespace)
	return !d.Skipped && d.Mode.Acts(), err
}

// resolveMode sets d.Mode to the namespace's mode (policy.NamespaceMode: its
// label, else the default) and d.Skipped when that is off, and returns the
// mode's own warnings.
func (e *Engine) resolveMode(ctx context.Context, d *Decision, namespace string) ([]policy.Violation, error) {
	value, ok, err := e.lookup.NamespaceMode(ctx, namespace)
	if err != nil {
		return nil, fmt.Errorf("looking up the mode of namespace %q: %w", namespace, err)
	}
	mode, warnings := policy.NamespaceMode(namespace, value, ok, e.settings.DefaultMode)
	d.Mode, d.Skipped = mode, mode == policy.ModeOff
	return warnings, nil
}

// applyMode keeps the rules' verdict, turns denials into warnings in warn
// mode, admits unchanged and silently in audit mode, and adds the mode's own
// warnings.
func (e *Engine) applyMode(d *Decision, modeWarnings []policy.Violation) {
	d.Verdict = policy.Result{Denials: slices.Clone(d.Result.Denials), Warnings: slices.Clone(d.Result.Warnings)}
	if d.Mode == policy.ModeAudit {
		d.Result, d.Patch = policy.Result{}, nil
		return
	}
	if d.Mode == policy.ModeWarn && len(d.Result.Denials) > 0 {
		d.Result.Warnings = append(d.Result.Denials, d.Result.Warnings...)
		d.Result.Denials = nil
	}
	d.Result.Warnings = append(d.Result.Warnings, modeWarnings...)
}

func workloadOperation(op policy.Operation) (policy.Operation, error) {
	switch op {
	case policy.OpCreate, policy.OpUpdate:
		return op, nil
	default:
		return "", fmt.Errorf("%w: operation %q is not reviewed", ErrInvalidRequest, op)
	}
}

// fillIdentity completes what the API server may leave out of the object
// itself (the namespace on CREATE) from the request.
func fillIdentity(w *policy.Workload, req Request) {
	w.Namespace = nonEmpty(w.Namespace, req.Namespace)
	w.Name = nonEmpty(w.Name, req.Name)
}

func nonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
