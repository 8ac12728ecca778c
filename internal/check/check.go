// Package check evaluates manifests offline, as `statekeeper check` does:
// every object is reviewed as a CREATE by the same review.Engine as the
// server, against a cluster made of the objects installed before it.
//
// It reads every object kubectl reads (input.go): YAML streams, JSON streams
// (objects one after the other, with or without whitespace between them),
// and lists, flattened as kubectl flattens any object with items; from files,
// directories (.json, .yaml and .yml files, subdirectories with -R) and
// stdin. An object that cannot be read is named by its source, line and
// number; the others are judged all the same.
//
// Objects are judged in the order Helm installs a release (order.go), not in
// the order of the input: by kind in Helm's install order, stably within a
// kind, kinds Helm does not know after the others by name, and objects that
// name a controller (a StatefulSet's pods) last. That is what the cluster
// sees when Helm installs a chart, so a `helm template` stream and the same
// objects in a `helm template --output-dir` tree, in any file order, get the
// same decisions. (`kubectl apply -f DIR` goes in file order; a user who
// names files in install order meets the same decisions.)
//
// Deployments and StatefulSets are mutated and validated, HPAs validated, and
// pods stamped with their identity (docs/spec.md §5) when their controller reference
// (controller: true; the uid may be left out) names a stateful-* StatefulSet
// installed before them. Each reviewed object prints one line per denial or
// warning, or one line saying that it is allowed:
//
//	denied <Kind>/<namespace>/<name>: <message> [<rule>]
//	warning <Kind>/<namespace>/<name>: <message> [<rule>]
//	allowed <Kind>/<namespace>/<name>
//	allowed <Kind>/<namespace>/<name>: mutated (<n> changes)
//	allowed Pod/<namespace>/<name>: stamped <fqdn>
//
// Every object goes through review.Engine.Admit, the admission sequence the
// API server runs with statekeeper's webhooks, so check and the server say
// the same: a denial names every rule the object breaks. Objects statekeeper
// does not review print nothing: other kinds, unlabelled workloads (unless
// the kind-switch rule speaks for a managed workload of the other kind),
// pods of other owners or of a StatefulSet the input does not hold before
// them.
//
// An HPA is judged by its target. Helm installs HPAs after Deployments but
// before StatefulSets: the API server admits an HPA whose target does not
// exist yet with a warning, and denies the target when it comes if the HPA
// would scale a single-instance workload. When the input holds the target
// further on, check leaves that warning out and reports the pair once, on
// the target; an HPA whose target the input does not hold is warned of.
//
// In a namespace of mode audit (its Namespace in the input labelled
// statekeeper.io/mode: audit, or --default-mode audit) admission denies and
// changes nothing; check prints instead what the background audit records
// (review.Engine.Audit, as internal/audit) about each Deployment,
// StatefulSet and HPA once the whole input is installed, one line per
// finding, or "allowed" when there is none:
//
//	audit fail <Kind>/<namespace>/<name>: <message> [<rule>]
//	audit warn <Kind>/<namespace>/<name>: <message> [<rule>]
//
// Audit findings never change the exit status: the audit records, it does
// not refuse.
//
// With -o yaml the admitted objects are printed as statekeeper would have
// them stored, in install order; denied objects are not (the API server
// would not store them) and each is named on stderr:
//
//	omitted <Kind>/<namespace>/<name>: denied, so the API server would not store it
//
// Each admitted stateful-* StatefulSet of a namespace statekeeper acts in
// (enforce, warn) comes with the headless Service the reconciler creates for
// it (docs/spec.md §3), unless the input holds a Service of that name, and each
// stateful-multi one with the PodDisruptionBudget the reconciler creates,
// unless the input holds a budget that covers its pods or holds its name.
// That Service carries no owner reference when the StatefulSet has no uid (a
// manifest rather than a stored object): the reference needs the uid, and
// the reconciler adds it once both exist.
package check

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/statekeeper/statekeeper/internal/lookup"
	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/internal/review"
)

// Exit codes of Run.
const (
	ExitAllowed = 0 // every object is allowed (warnings included)
	ExitDenied  = 1 // at least one object is denied
	ExitInvalid = 2 // the input cannot be read
)

// Output formats.
const (
	// OutputLines prints one line per decision (the default).
	OutputLines = ""
	// OutputYAML prints the mutated objects; decisions go to stderr.
	OutputYAML = "yaml"
)

// Options say what to check and how.
type Options struct {
	// Paths are files, directories of .json/.yaml/.yml files, or Stdin.
	Paths []string
	// Recursive reads the subdirectories of directories too.
	Recursive bool
	// Output is OutputLines or OutputYAML.
	Output string
	// Namespace is given to objects that name none.
	Namespace string
	// Settings are the engine's, from the same flags as `serve`.
	Settings review.Settings
}

// Run checks the input and writes the result; it returns the exit code.
func Run(ctx context.Context, opts Options, stdin io.Reader, stdout, stderr io.Writer) int {
	code := ExitAllowed
	docs, err := readDocuments(opts.Paths, opts.Recursive, stdin)
	if err != nil {
		writeErrors(stderr, err)
		code = ExitInvalid
	}
	sortForInstall(docs)
	state := lookup.NewMemory()
	c := checker{engine: review.New(state, opts.Settings), state: state, namespace: opts.Namespace}
	c.inputServices = c.servicesOf(docs)
	c.inputWorkloads = c.workloadsOf(docs)
	c.inputBudgets = c.budgetsOf(docs)

	outcomes := make([]outcome, len(docs))
	for i, doc := range docs {
		if outcomes[i], err = c.check(ctx, i, doc); err != nil {
			writeErrors(stderr, &inputError{at: doc.at, err: err})
			code = ExitInvalid
		}
	}
	// The audit judges what is stored once the whole input is installed.
	for i := range outcomes {
		if err := c.audit(ctx, &outcomes[i]); err != nil {
			writeErrors(stderr, &inputError{at: docs[i].at, err: err})
			code = ExitInvalid
		}
	}

	decisions, yamlOut := stdout, io.Discard
	if opts.Output == OutputYAML {
		decisions, yamlOut = stderr, stdout
	}
	var stored []document
	var omitted []string
	for _, out := range outcomes {
		if code == ExitAllowed && out.denied() {
			code = ExitDenied
		}
		for _, line := range out.lines() {
			fmt.Fprintln(decisions, line)
		}
		if out.failed {
			continue
		}
		if out.denied() {
			omitted = append(omitted, fmt.Sprintf("omitted %s: denied, so the API server would not store it", out.ref))
			continue
		}
		for _, js := range [][]byte{out.object, out.service, out.budget} {
			if js != nil {
				stored = append(stored, document{json: js, meta: metaOf(js), gvk: kindOf(js)})
			}
		}
	}
	if err := writeYAML(yamlOut, stored); err != nil { // cannot happen for JSON check produced; reported, not hidden
		writeErrors(stderr, err)
		code = ExitInvalid
	}
	if opts.Output == OutputYAML {
		for _, line := range omitted {
			fmt.Fprintln(stderr, line)
		}
	}
	return code
}

// writeYAML prints the objects as a YAML stream, in install order: the
// reconciler's Services and budgets among the input's, so that checking the
// output again reads the same objects in the same order.
func writeYAML(w io.Writer, objects []document) error {
	sortForInstall(objects)
	for i, obj := range objects {
		y, err := yaml.JSONToYAML(obj.json)
		if err != nil {
			return err
		}
		if i > 0 {
			fmt.Fprintln(w, "---")
		}
		_, _ = w.Write(y)
	}
	return nil
}

// metaOf and kindOf read what sortForInstall needs of an object check wrote.
func metaOf(js []byte) objectMeta {
	var h header
	_ = json.Unmarshal(js, &h)
	return h.Metadata
}

func kindOf(js []byte) schema.GroupVersionKind {
	var h header
	_ = json.Unmarshal(js, &h)
	return schema.FromAPIVersionAndKind(h.APIVersion, h.Kind)
}

// writeErrors prints one "error: ..." line per joined error.
func writeErrors(w io.Writer, err error) {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			writeErrors(w, e)
		}
		return
	}
	fmt.Fprintf(w, "error: %v\n", err)
}

// checker is the state carried from one object to the next.
type checker struct {
	engine    *review.Engine
	state     *lookup.Memory
	namespace string
	// inputServices are the Services anywhere in the input: -o yaml does not
	// add the reconciler's Service where the input has one of that name, so
	// that checking check's own output gives the same objects, each once.
	inputServices map[client.ObjectKey]bool
	// inputBudgets are the PodDisruptionBudgets anywhere in the input, for
	// the same reason: a budget of the user's, or the one check printed,
	// means no budget of the reconciler's is added.
	inputBudgets []policyv1.PodDisruptionBudget
	// inputWorkloads are the Deployments and StatefulSets of the input, for
	// the HPAs that precede their targets.
	inputWorkloads map[workloadKey]inputWorkload
}

// workloadKey names a Deployment or StatefulSet.
type workloadKey struct {
	kind            policy.Kind
	namespace, name string
}

// inputWorkload is where a workload is in the input, and whether
// statekeeper manages it.
type inputWorkload struct {
	index   int // the last, when the input holds it more than once
	managed bool
}

// workloadsOf finds the Deployments and StatefulSets of docs.
func (c *checker) workloadsOf(docs []document) map[workloadKey]inputWorkload {
	workloads := map[workloadKey]inputWorkload{}
	for i, doc := range docs {
		var w policy.Workload
		switch doc.gvk.GroupKind() {
		case deploymentKind:
			var d appsv1.Deployment
			if json.Unmarshal(doc.json, &d) != nil {
				continue // check says why
			}
			w = policy.FromDeployment(&d)
		case statefulSetKind:
			var s appsv1.StatefulSet
			if json.Unmarshal(doc.json, &s) != nil {
				continue
			}
			w = policy.FromStatefulSet(&s)
		default:
			continue
		}
		key := workloadKey{kind: policy.Kind(doc.gvk.Kind), namespace: c.namespaceOf(doc), name: doc.meta.Name}
		workloads[key] = inputWorkload{index: i, managed: w.Managed()}
	}
	return workloads
}

// budgetsOf decodes the PodDisruptionBudgets of docs, with their namespaces
// defaulted as check defaults them. One that does not decode is left out:
// checking it reports why.
func (c *checker) budgetsOf(docs []document) []policyv1.PodDisruptionBudget {
	var budgets []policyv1.PodDisruptionBudget
	for _, doc := range docs {
		if doc.gvk != budgetGVK {
			continue
		}
		var pdb policyv1.PodDisruptionBudget
		if json.Unmarshal(doc.json, &pdb) != nil {
			continue
		}
		pdb.Namespace = c.namespaceOf(doc)
		budgets = append(budgets, pdb)
	}
	return budgets
}

// servicesOf names the Services of docs, with their namespaces defaulted
// as check defaults them.
func (c *checker) servicesOf(docs []document) map[client.ObjectKey]bool {
	services := map[client.ObjectKey]bool{}
	for _, doc := range docs {
		if doc.gvk == serviceGVK {
			services[client.ObjectKey{Namespace: c.namespaceOf(doc), Name: doc.meta.Name}] = true
		}
	}
	return services
}

// namespaceOf is the document's namespace, or check's default for a
// namespaced object that names none.
func (c *checker) namespaceOf(doc document) string {
	if doc.meta.Namespace == "" && doc.gvk != namespaceGVK {
		return c.namespace
	}
	return doc.meta.Namespace
}

// outcome is what check decided about one object.
type outcome struct {
	// ref is "<Kind>/<namespace>/<name>"; reported is false for objects
	// statekeeper did not review (no line is printed for them).
	ref      string
	reported bool
	// failed is true when the object could not be judged (an error says why).
	failed  bool
	mode    policy.Mode
	changes int
	result  policy.Result
	// object is the mutated object as written, without the defaulted
	// namespace; stored is the object as the API server would store it.
	object, stored []byte
	kind           schema.GroupKind
	// stamped is the FQDN a stamped pod was given.
	stamped string
	// service is the headless Service the reconciler creates for an admitted
	// stateful StatefulSet, as JSON; nil for anything else.
	service []byte
	// budget is the PodDisruptionBudget the reconciler creates for an
	// admitted stateful-multi StatefulSet, as JSON; nil for anything else.
	budget []byte
	// audited is what the background audit records about the object, in a
	// namespace of mode audit (review.Decision.Verdict); nil elsewhere.
	audited *policy.Result
}

func (o outcome) denied() bool { return o.reported && !o.result.Allowed() }

// lines are the decision lines: one per denial, warning and audit
// finding, or one "allowed".
func (o outcome) lines() []string {
	if !o.reported {
		return nil
	}
	var lines []string
	for _, v := range o.result.Denials {
		lines = append(lines, fmt.Sprintf("denied %s: %s", o.ref, v))
	}
	for _, v := range o.result.Warnings {
		lines = append(lines, fmt.Sprintf("warning %s: %s", o.ref, v))
	}
	if o.audited != nil {
		for _, v := range o.audited.Denials {
			lines = append(lines, fmt.Sprintf("audit fail %s: %s", o.ref, v))
		}
		for _, v := range o.audited.Warnings {
			lines = append(lines, fmt.Sprintf("audit warn %s: %s", o.ref, v))
		}
	}
	if len(lines) > 0 {
		return lines
	}
	switch {
	case o.stamped != "":
		return []string{fmt.Sprintf("allowed %s: stamped %s", o.ref, o.stamped)}
	case o.changes == 0:
		return []string{"allowed " + o.ref}
	case o.changes == 1:
		return []string{fmt.Sprintf("allowed %s: mutated (1 change)", o.ref)}
	default:
		return []string{fmt.Sprintf("allowed %s: mutated (%d changes)", o.ref, o.changes)}
	}
}

var (
	namespaceGVK    = schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}
	serviceGVK      = schema.GroupVersionKind{Version: "v1", Kind: "Service"}
	budgetGVK       = policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget")
	deploymentKind  = schema.GroupKind{Group: "apps", Kind: "Deployment"}
	statefulSetKind = schema.GroupKind{Group: "apps", Kind: "StatefulSet"}
	autoscalerKind  = schema.GroupKind{Group: "autoscaling", Kind: "HorizontalPodAutoscaler"}
	podKind         = schema.GroupKind{Kind: "Pod"}
)

// check reviews the object at index in the input and, unless it is denied,
// adds it to the state. An error means the object cannot be judged.
func (c *checker) check(ctx context.Context, index int, doc document) (outcome, error) {
	out := outcome{object: doc.json, kind: doc.gvk.GroupKind(), failed: true}
	namespace := c.namespaceOf(doc)
	name := doc.meta.Name
	if name == "" {
		name = doc.meta.GenerateName
	}
	out.ref = fmt.Sprintf("%s/%s/%s", doc.gvk.Kind, namespace, name)

	// The object as the API server would store it: with its namespace.
	stored := doc.json
	var err error
	if namespace != doc.meta.Namespace {
		if stored, err = withNamespace(doc.json, namespace); err != nil {
			return out, err
		}
	}
	if r, ok := review.ResourceOfKind(out.kind); ok {
		req := review.Request{
			Operation: policy.OpCreate,
			Resource:  review.Resource{Group: r.Group, Version: doc.gvk.Version, Resource: r.Resource},
			Namespace: namespace, Name: doc.meta.Name, Object: stored,
		}
		if stored, err = c.admit(ctx, req, doc, &out); err != nil {
			return out, err
		}
	}
	if out.kind == autoscalerKind && out.reported {
		if err := c.judgeWithLaterTarget(ctx, index, doc, namespace, &out); err != nil {
			return out, err
		}
	}

	if !out.denied() {
		if err := c.remember(stored); err != nil {
			return out, err
		}
	}
	out.stored, out.failed = stored, false
	return out, nil
}

// judgeWithLaterTarget judges an HPA whose target comes later in the input,
// as a StatefulSet does in Helm's order. The API server admits the HPA with a
// warning that its target does not exist yet, and judges the pair when the
// target is created (denying a single-instance target that the HPA would
// scale up). The input says what the target will be, so the warning has
// nothing to add: the pair is reported once, on the target, as the cluster
// refuses it; an HPA of an unmanaged target prints nothing, as when the
// target precedes it.
func (c *checker) judgeWithLaterTarget(ctx context.Context, index int, doc document, namespace string, out *outcome) error {
	var hpa autoscalingv2.HorizontalPodAutoscaler
	if err := json.Unmarshal(doc.json, &hpa); err != nil {
		return err
	}
	target := hpa.Spec.ScaleTargetRef
	gv, err := schema.ParseGroupVersion(target.APIVersion)
	if err != nil || gv.Group != appsv1.GroupName {
		return nil
	}
	later, ok := c.inputWorkloads[workloadKey{kind: policy.Kind(target.Kind), namespace: namespace, name: target.Name}]
	if !ok || later.index < index {
		return nil
	}
	if existing, err := c.state.Workload(ctx, policy.Kind(target.Kind), namespace, target.Name); err != nil || existing != nil {
		return err // an earlier one of that name is what the HPA was judged against
	}
	if !later.managed {
		out.reported = false
		return nil
	}
	moot := policy.ValidateHPAWithoutTarget(hpa.Name, policy.Kind(target.Kind), target.Name, hpa.Spec.MaxReplicas)
	out.result.Warnings = slices.DeleteFunc(out.result.Warnings, func(v policy.Violation) bool {
		return slices.ContainsFunc(moot.Warnings, func(m policy.Violation) bool { return m.String() == v.String() })
	})
	return nil
}

// audit records what the background audit finds about an object of an
// audit namespace, judged by review.Engine.Audit as it is stored once the
// whole input is installed: the audit runs after the install, not between
// its objects.
func (c *checker) audit(ctx context.Context, out *outcome) error {
	if !out.reported || out.failed || out.mode != policy.ModeAudit {
		return nil
	}
	var obj client.Object
	switch out.kind {
	case deploymentKind:
		obj = &appsv1.Deployment{}
	case statefulSetKind:
		obj = &appsv1.StatefulSet{}
	case autoscalerKind: // either version: both name their target and bound it the same way
		obj = &autoscalingv2.HorizontalPodAutoscaler{}
	default:
		return nil // not audited (pods)
	}
	if err := json.Unmarshal(out.stored, obj); err != nil {
		return err
	}
	d, err := c.engine.Audit(ctx, obj)
	if err != nil {
		return err
	}
	if d.Skipped {
		out.reported = false
		return nil
	}
	out.audited = &d.Verdict
	return nil
}

// admit runs the object through the engine's admission sequence, as the
// API server runs it through statekeeper's webhooks, and returns it as stored.
func (c *checker) admit(ctx context.Context, req review.Request, doc document, out *outcome) ([]byte, error) {
	a, err := c.engine.Admit(ctx, req)
	if err != nil {
		return req.Object, err
	}
	out.reported, out.result, out.mode = !a.Skipped, a.Result, a.Mode
	if len(a.Patch) > 0 {
		if out.object, err = review.ApplyPatch(doc.json, a.Patch); err != nil {
			return req.Object, err
		}
		out.changes = len(a.Patch)
	}
	// Nothing more is created for a denied object, nor in an audit
	// namespace, where the reconcilers do not act.
	if !out.reported || out.denied() || !a.Mode.Acts() {
		return a.Object, nil
	}
	switch doc.gvk.GroupKind() {
	case podKind:
		if out.changes > 0 {
			var pod corev1.Pod
			if err := json.Unmarshal(a.Object, &pod); err != nil {
				return a.Object, err
			}
			out.stamped = pod.Annotations[policy.AnnotationFQDN]
		}
	case statefulSetKind:
		if out.service, err = c.headlessService(ctx, a.Object, doc.meta.Namespace == ""); err != nil {
			return a.Object, err
		}
		if out.budget, err = c.disruptionBudget(a.Object, doc.meta.Namespace == ""); err != nil {
			return a.Object, err
		}
	}
	return a.Object, nil
}

// headlessService is, as JSON, the Service the reconciler creates for the
// stored StatefulSet: nil unless it is stateful-* and no Service of that name
// precedes it or follows it in the input. The namespace is left out when the manifest named none, as
// it is from the StatefulSet printed before it.
func (c *checker) headlessService(ctx context.Context, stored []byte, defaultedNamespace bool) ([]byte, error) {
	var sts appsv1.StatefulSet
	if err := json.Unmarshal(stored, &sts); err != nil {
		return nil, err
	}
	if t, _, err := policy.FromStatefulSet(&sts).DeployType(); err != nil || !t.Stateful() {
		return nil, nil
	}
	svc := policy.HeadlessService(&sts)
	if c.inputServices[client.ObjectKeyFromObject(svc)] {
		return nil, nil
	}
	if existing, err := c.state.Service(ctx, svc.Namespace, svc.Name); err != nil || existing != nil {
		return nil, err
	}
	if sts.UID == "" {
		svc.OwnerReferences = nil
	}
	if defaultedNamespace {
		svc.Namespace = ""
	}
	return withoutStatus(svc)
}

// disruptionBudget is, as JSON, the PodDisruptionBudget the reconciler
// creates for the stored StatefulSet (policy.PlanDisruptionBudget against the
// input's budgets): nil unless it is stateful-multi, did not opt out, and no
// budget in the input covers its pods or holds its name.
func (c *checker) disruptionBudget(stored []byte, defaultedNamespace bool) ([]byte, error) {
	var sts appsv1.StatefulSet
	if err := json.Unmarshal(stored, &sts); err != nil {
		return nil, err
	}
	if sts.Namespace == "" {
		sts.Namespace = c.namespace
	}
	var budgets []policyv1.PodDisruptionBudget
	for _, b := range c.inputBudgets {
		if b.Namespace == sts.Namespace {
			budgets = append(budgets, b)
		}
	}
	plan := policy.PlanDisruptionBudget(&sts, budgets)
	if plan.Action != policy.BudgetCreate {
		return nil, nil
	}
	pdb := plan.Budget
	if sts.UID == "" {
		pdb.OwnerReferences = nil
	}
	if defaultedNamespace {
		pdb.Namespace = ""
	}
	return withoutStatus(pdb)
}

// withoutStatus is obj as JSON without its status, which the API server
// owns and an empty struct would only clutter.
func withoutStatus(obj any) ([]byte, error) {
	js, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(js, &fields); err != nil {
		return nil, err
	}
	delete(fields, "status")
	return json.Marshal(fields)
}

// remember adds the object to the state when it is of a kind the lookups read.
func (c *checker) remember(js []byte) error {
	obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(js, nil, nil)
	if err != nil {
		if runtime.IsNotRegisteredError(err) {
			return nil // a kind of no concern to the rules (a CRD, ...)
		}
		return err
	}
	if o, ok := obj.(client.Object); ok {
		c.state.Add(o)
	}
	return nil
}

// withNamespace sets metadata.namespace when namespace is not empty. Numbers
// are kept as written (json.Number), not rounded through float64.
func withNamespace(js []byte, namespace string) ([]byte, error) {
	if namespace == "" {
		return js, nil
	}
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return nil, err
	}
	meta, ok := obj["metadata"].(map[string]any)
	switch {
	case obj["metadata"] == nil:
		meta = map[string]any{}
		obj["metadata"] = meta
	case !ok:
		return nil, errors.New("metadata is not an object")
	}
	meta["namespace"] = namespace
	return json.Marshal(obj)
}
