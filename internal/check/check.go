// Package check evaluates manifests offline, as `statekeeper check` does:
// every object is reviewed as a CREATE by the same review.Engine as the
// server, against a cluster made of the objects that precede it in the input.
//
// Deployments and StatefulSets are mutated and validated, HPAs validated, and
// pods stamped with their identity (SPEC §5) when their controller reference
// (controller: true; the uid may be left out) names a stateful-* StatefulSet
// that precedes them in the input. Each reviewed object prints one line per
// denial or warning, or one line saying that it is allowed:
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
// them. An HPA is judged by its target when that precedes it, and warned of
// otherwise; the target is then judged against the HPA.
//
// With -o yaml the objects are printed as statekeeper would have them stored,
// and each admitted stateful-* StatefulSet is followed by the headless
// Service the reconciler creates for it (SPEC §3), unless a Service of that
// name precedes it, and each stateful-multi one by the PodDisruptionBudget
// the reconciler creates, unless the input holds a budget that covers its
// pods or holds its name. That Service carries no owner reference when the
// StatefulSet has no uid (a manifest rather than a stored object): the
// reference needs the uid, and the reconciler adds it once both exist.
package check

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	appsv1 "k8s.io/api/apps/v1"
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
	// Paths are files, directories of .yaml/.yml files, or Stdin, read in order.
	Paths []string
	// Output is OutputLines or OutputYAML.
	Output string
	// Namespace is given to objects that name none.
	Namespace string
	// Settings are the engine's, from the same flags as `serve`.
	Settings review.Settings
}

// Run checks the input and writes the result; it returns the exit code.
func Run(ctx context.Context, opts Options, stdin io.Reader, stdout, stderr io.Writer) int {
	docs, err := readDocuments(opts.Paths, stdin)
	if err != nil {
		writeErrors(stderr, err)
		return ExitInvalid
	}
	state := lookup.NewMemory()
	c := checker{engine: review.New(state, opts.Settings), state: state, namespace: opts.Namespace}
	c.inputServices = c.servicesOf(docs)
	if c.inputBudgets, err = c.budgetsOf(docs); err != nil {
		writeErrors(stderr, err)
		return ExitInvalid
	}

	decisions, yamlOut := stdout, io.Discard
	if opts.Output == OutputYAML {
		decisions, yamlOut = stderr, stdout
	}
	code, printed := ExitAllowed, 0
	for _, doc := range docs {
		out, err := c.check(ctx, doc)
		if err != nil {
			writeErrors(stderr, &inputError{source: doc.source, index: doc.index, err: err})
			code = ExitInvalid
			continue
		}
		if code == ExitAllowed && out.denied() {
			code = ExitDenied
		}
		for _, line := range out.lines() {
			fmt.Fprintln(decisions, line)
		}
		objects, err := out.yaml()
		if err != nil { // cannot happen for JSON the patch produced; reported, not hidden
			writeErrors(stderr, &inputError{source: doc.source, index: doc.index, err: err})
			code = ExitInvalid
			continue
		}
		for _, obj := range objects {
			if printed > 0 {
				fmt.Fprintln(yamlOut, "---")
			}
			_, _ = yamlOut.Write(obj)
			printed++
		}
	}
	return code
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
}

// budgetsOf decodes the PodDisruptionBudgets of docs, with their namespaces
// defaulted as check defaults them.
func (c *checker) budgetsOf(docs []document) ([]policyv1.PodDisruptionBudget, error) {
	var budgets []policyv1.PodDisruptionBudget
	for _, doc := range docs {
		if doc.gvk != budgetGVK {
			continue
		}
		var pdb policyv1.PodDisruptionBudget
		if err := json.Unmarshal(doc.json, &pdb); err != nil {
			return nil, &inputError{source: doc.source, index: doc.index, err: err}
		}
		pdb.Namespace = c.namespaceOf(doc)
		budgets = append(budgets, pdb)
	}
	return budgets, nil
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
	changes  int
	result   policy.Result
	// object is the mutated object as written, without the defaulted namespace.
	object []byte
	// stamped is the FQDN a stamped pod was given.
	stamped string
	// service is the headless Service the reconciler creates for an admitted
	// stateful StatefulSet, as JSON; nil for anything else.
	service []byte
	// budget is the PodDisruptionBudget the reconciler creates for an
	// admitted stateful-multi StatefulSet, as JSON; nil for anything else.
	budget []byte
}

func (o outcome) denied() bool { return o.reported && !o.result.Allowed() }

// lines are the decision lines: one per denial and warning, or one "allowed".
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

// yaml is what -o yaml prints for the object: the object, then the
// headless Service when there is one.
func (o outcome) yaml() ([][]byte, error) {
	var docs [][]byte
	for _, js := range [][]byte{o.object, o.service, o.budget} {
		if js == nil {
			continue
		}
		y, err := yaml.JSONToYAML(js)
		if err != nil {
			return nil, err
		}
		docs = append(docs, y)
	}
	return docs, nil
}

var (
	namespaceGVK    = schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}
	serviceGVK      = schema.GroupVersionKind{Version: "v1", Kind: "Service"}
	budgetGVK       = policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget")
	statefulSetKind = schema.GroupKind{Group: "apps", Kind: "StatefulSet"}
	podKind         = schema.GroupKind{Kind: "Pod"}
)

// check reviews one object and, unless it is denied, adds it to the state.
// An error means the object cannot be read.
func (c *checker) check(ctx context.Context, doc document) (outcome, error) {
	out := outcome{object: doc.json}
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
	if r, ok := review.ResourceOfKind(doc.gvk.GroupKind()); ok {
		req := review.Request{
			Operation: policy.OpCreate,
			Resource:  review.Resource{Group: r.Group, Version: doc.gvk.Version, Resource: r.Resource},
			Namespace: namespace, Name: doc.meta.Name, Object: stored,
		}
		if stored, err = c.admit(ctx, req, doc, &out); err != nil {
			return out, err
		}
	}

	if !out.denied() {
		if err := c.remember(stored); err != nil {
			return out, err
		}
	}
	return out, nil
}

// admit runs the object through the engine's admission sequence, as the
// API server runs it through statekeeper's webhooks, and returns it as stored.
func (c *checker) admit(ctx context.Context, req review.Request, doc document, out *outcome) ([]byte, error) {
	a, err := c.engine.Admit(ctx, req)
	if err != nil {
		return req.Object, err
	}
	out.reported, out.result = !a.Skipped, a.Result
	if len(a.Patch) > 0 {
		if out.object, err = review.ApplyPatch(doc.json, a.Patch); err != nil {
			return req.Object, err
		}
		out.changes = len(a.Patch)
	}
	if !out.reported || out.denied() {
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
