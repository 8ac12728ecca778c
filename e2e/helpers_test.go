//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/test/workloads"
)

const (
	// testNamespaceLabel marks the suite's namespaces.
	testNamespaceLabel = "e2e.statekeeper.io/test"
	// waitTimeout bounds every wait for the cluster's controllers (the
	// StatefulSet and garbage collectors, the scheduler, KWOK, statekeeper's
	// reconciler); pollInterval is how often a wait looks.
	waitTimeout  = 2 * time.Minute
	pollInterval = 250 * time.Millisecond
)

// --- kubectl -----------------------------------------------------------------

// kubectlResult is one kubectl invocation as its user sees it.
type kubectlResult struct {
	args   []string
	stdout string
	stderr string
	err    error
}

func (r kubectlResult) String() string {
	status := "ok"
	if r.err != nil {
		status = r.err.Error()
	}
	return fmt.Sprintf("kubectl %s: %s\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), status, r.stdout, r.stderr)
}

// runKubectl runs the kubectl binary against the suite's cluster, with
// stdin as its standard input when not empty.
func runKubectl(ctx context.Context, stdin string, args ...string) kubectlResult {
	args = append([]string{"--kubeconfig", suite.settings.kubeconfig}, args...)
	cmd := exec.CommandContext(ctx, suite.settings.kubectl, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return kubectlResult{args: args[2:], stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// admission is what kubectl told its user about statekeeper's decision: the
// rule IDs of the denial and of each warning, in the order printed.
type admission struct {
	Denied []policy.Rule
	Warned []policy.Rule
}

// allowed is the admission of a call statekeeper let through silently.
var allowed = admission{}

func denied(rules ...policy.Rule) admission { return admission{Denied: rules} }

func warned(rules ...policy.Rule) admission { return admission{Warned: rules} }

// ruleIDs are the rule IDs statekeeper appends to its messages in brackets.
var ruleIDs = []policy.Rule{
	policy.RuleSingleInstance, policy.RuleKindMismatch, policy.RuleKindSwitch, policy.RuleTypeChange,
	policy.RuleQuorum, policy.RuleHeadlessConflict, policy.RuleSharedClaim, policy.RuleInvalidAnnotation,
	policy.RuleStorageResize, policy.RuleDeletionProtection, policy.RuleRecreateStrategy, policy.RuleInvalidMode,
	policy.RuleUnknownKey, policy.RuleEphemeralData,
}

var bracketed = regexp.MustCompile(`\[([a-z]+(?:-[a-z]+)*)\]`)

// rulesIn returns the rule IDs a message names.
func rulesIn(text string) []policy.Rule {
	var rules []policy.Rule
	for _, m := range bracketed.FindAllStringSubmatch(text, -1) {
		if r := policy.Rule(m[1]); slices.Contains(ruleIDs, r) {
			rules = append(rules, r)
		}
	}
	return rules
}

// admission reads the decision from kubectl's stderr: "Warning: " lines are
// the webhook's warnings, the other lines the error of a refused call.
func (r kubectlResult) admission() admission {
	var a admission
	for line := range strings.Lines(r.stderr) {
		if text, ok := strings.CutPrefix(line, "Warning: "); ok {
			a.Warned = append(a.Warned, rulesIn(text)...)
		} else {
			a.Denied = append(a.Denied, rulesIn(line)...)
		}
	}
	return a
}

// expect checks that the call failed exactly when want has a denial, and
// that kubectl printed exactly want's rule IDs.
func (r kubectlResult) expect(t *testing.T, want admission) {
	t.Helper()
	if len(want.Denied) > 0 {
		require.Error(t, r.err, "want the call denied: %s", r)
	} else {
		require.NoError(t, r.err, "want the call admitted: %s", r)
	}
	require.Equal(t, want, r.admission(), "rule IDs kubectl printed: %s", r)
}

// denialText is kubectl's stderr when statekeeper denies a call: kubectl
// prints the one Forbidden cause (on field) of the Invalid status that
// internal/webhook answers, under the kind and name that status names.
func denialText(kind, name, field, message string) string {
	return fmt.Sprintf("The %s %q is invalid: %s: Forbidden: %s\n", kind, name, field, message)
}

// policyDenialText is kubectl's stderr when the chart's admission policy
// denies a call in an enforce namespace (the API server runs it before any
// validating webhook): the webhook's message under the API server's words
// for a policy's denial, naming the resource, the policy and its binding.
func policyDenialText(resource, name, message string) string {
	return fmt.Sprintf("The %s %q is invalid: : ValidatingAdmissionPolicy '%s' with binding '%s-enforce' denied request: %s\n",
		resource, name, releaseName, releaseName, message)
}

// --- namespaces ----------------------------------------------------------------

// namespace is one test's namespace; every kubectl call and lookup of the
// test goes through it.
type namespace struct {
	t    *testing.T
	name string
}

// newNamespace creates a fresh namespace labelled with the statekeeper mode
// unless mode is empty (the release's default mode applies then), and
// deletes it when the test ends.
func newNamespace(t *testing.T, mode policy.Mode) *namespace {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: testNamespacePrefix,
		Labels:       map[string]string{testNamespaceLabel: "true"},
	}}
	if mode != "" {
		ns.Labels[policy.LabelMode] = string(mode)
	}
	require.NoError(t, suite.client.Create(t.Context(), ns))
	t.Cleanup(func() {
		// Not waited for: the namespace controller removes the rest.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := suite.client.Delete(ctx, ns); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting namespace %s: %v", ns.Name, err)
		}
	})
	return &namespace{t: t, name: ns.Name}
}

// in is the namespace as seen from subtest t, so that its failures stop t.
func (n *namespace) in(t *testing.T) *namespace {
	return &namespace{t: t, name: n.name}
}

// kubectl runs kubectl in the namespace, with objects (if any) as a
// manifest on its standard input.
func (n *namespace) kubectl(objects []client.Object, args ...string) kubectlResult {
	n.t.Helper()
	stdin := ""
	if len(objects) > 0 {
		stdin = manifest(n.t, objects...)
	}
	return runKubectl(n.t.Context(), stdin, append(args, "--namespace", n.name)...)
}

// create is `kubectl create -f -` of objects.
func (n *namespace) create(objects ...client.Object) kubectlResult {
	n.t.Helper()
	return n.kubectl(objects, "create", "-f", "-")
}

// apply is `kubectl apply -f -` (client-side) of objects.
func (n *namespace) apply(objects ...client.Object) kubectlResult {
	n.t.Helper()
	return n.kubectl(objects, "apply", "-f", "-")
}

// mustCreate creates objects and fails the test unless statekeeper admitted
// them silently.
func (n *namespace) mustCreate(objects ...client.Object) {
	n.t.Helper()
	n.create(objects...).expect(n.t, allowed)
}

// eventuallyAdmission repeats a server-side dry run of creating objects
// (safe: statekeeper's webhooks have no side effects) until kubectl reports
// want, and returns that result. statekeeper decides from its informer
// caches, which see an object the test just wrote a moment later.
func (n *namespace) eventuallyAdmission(want admission, objects ...client.Object) kubectlResult {
	n.t.Helper()
	return n.eventuallyDecision(want, objects, "create", "--dry-run=server", "-f", "-")
}

// eventuallyDecision repeats a kubectl call until kubectl reports want.
func (n *namespace) eventuallyDecision(want admission, objects []client.Object, args ...string) kubectlResult {
	n.t.Helper()
	return n.eventuallyKubectl(fmt.Sprintf("admission %+v", want), objects, args, func(res kubectlResult) bool {
		return (res.err != nil) == (len(want.Denied) > 0) && slices.Equal(res.admission().Denied, want.Denied) &&
			slices.Equal(res.admission().Warned, want.Warned)
	})
}

// eventuallyKubectl repeats a kubectl call until done accepts its result,
// and returns that result.
func (n *namespace) eventuallyKubectl(what string, objects []client.Object, args []string, done func(kubectlResult) bool) kubectlResult {
	n.t.Helper()
	var last kubectlResult
	n.eventually(what, func(context.Context) (bool, string, error) {
		last = n.kubectl(objects, args...)
		return done(last), last.String(), nil
	})
	return last
}

// get reads the stored object named name into obj.
func (n *namespace) get(name string, obj client.Object) {
	n.t.Helper()
	require.NoError(n.t, suite.client.Get(n.t.Context(), client.ObjectKey{Namespace: n.name, Name: name}, obj))
}

// eventually polls condition until it holds, failing the test with what
// and condition's last explanation after waitTimeout.
func (n *namespace) eventually(what string, condition func(ctx context.Context) (done bool, why string, err error)) {
	n.t.Helper()
	eventually(n.t, what, condition)
}

func eventually(t *testing.T, what string, condition func(ctx context.Context) (done bool, why string, err error)) {
	t.Helper()
	var why string
	err := wait.PollUntilContextTimeout(t.Context(), pollInterval, waitTimeout, true, func(ctx context.Context) (bool, error) {
		done, reason, err := condition(ctx)
		why = reason
		return done, err
	})
	require.NoError(t, err, "waiting for %s: %s", what, why)
}

// pollFor waits outside a test (setup, teardown) for condition.
func pollFor(ctx context.Context, what string, timeout time.Duration, condition wait.ConditionWithContextFunc) error {
	if err := wait.PollUntilContextTimeout(ctx, pollInterval, timeout, true, condition); err != nil {
		return fmt.Errorf("waiting for %s: %w", what, err)
	}
	return nil
}

// manifest renders objects as the JSON list kubectl reads from stdin, with
// apiVersion and kind filled in.
func manifest(t *testing.T, objects ...client.Object) string {
	t.Helper()
	items := make([]client.Object, len(objects))
	for i, obj := range objects {
		gvk, err := suite.client.GroupVersionKindFor(obj)
		require.NoError(t, err)
		obj = obj.DeepCopyObject().(client.Object)
		obj.GetObjectKind().SetGroupVersionKind(gvk)
		items[i] = obj
	}
	list := map[string]any{"apiVersion": "v1", "kind": "List", "items": items}
	out, err := json.Marshal(list)
	require.NoError(t, err)
	return string(out)
}

// --- objects -------------------------------------------------------------------

// unboundClaims makes the claims statekeeper injects into sts never bound
// (neverBound), for tests that need claims but not running pods.
func unboundClaims(sts *appsv1.StatefulSet) *appsv1.StatefulSet {
	if sts.Annotations == nil {
		sts.Annotations = map[string]string{}
	}
	sts.Annotations[policy.AnnotationStorageClass] = neverBound
	return sts
}

// withoutMounts drops the containers' volume mounts: without statekeeper
// injecting a claim template for it, a mount of no volume is invalid.
func withoutMounts(sts *appsv1.StatefulSet) *appsv1.StatefulSet {
	for i := range sts.Spec.Template.Spec.Containers {
		sts.Spec.Template.Spec.Containers[i].VolumeMounts = nil
	}
	return sts
}

// neverBound is a storage class no cluster has: the rules only read a
// claim's access modes, and a claim of this class never takes one of the
// local cluster's few pre-made volumes.
const neverBound = "e2e-never-bound"

// claim is a ReadWriteOnce claim of 1Gi that is never bound (neverBound).
func claim(name string) *corev1.PersistentVolumeClaim {
	c := workloads.Claim(name, corev1.ReadWriteOnce)
	c.Spec.StorageClassName = ptr.To(neverBound)
	return c
}

func objectMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name}
}
