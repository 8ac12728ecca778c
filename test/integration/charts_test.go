package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// The test charts of test/charts (issue 17), installed object by object as
// Helm installs a release, against the chart's webhooks.

const (
	testChartsDir  = "../charts"
	optInValuesDir = "../charts/values"
)

// renderChart is `helm template` of a test chart with a file of opt-in
// values, decoded. helm template prints a release in Helm's install order
// (Services, Deployments, HPAs, StatefulSets), the order Helm creates it in.
func renderChart(t *testing.T, chart, release, values string) []client.Object {
	t.Helper()
	args := []string{"template", release, filepath.Join(testChartsDir, chart)}
	if values != "" {
		args = append(args, "--values", filepath.Join(optInValuesDir, values))
	}
	objects, err := helmTemplate(os.Getenv("HELM"), args...)
	require.NoError(t, err)
	out := make([]client.Object, len(objects))
	for i, obj := range objects {
		out[i] = obj.(client.Object)
	}
	return out
}

var bracketedRule = regexp.MustCompile(`\[([a-z]+(?:-[a-z]+)*)\]$`)

// rulesOf are the rule IDs that end each message.
func rulesOf(messages []string) []policy.Rule {
	var rules []policy.Rule
	for _, m := range messages {
		if r := bracketedRule.FindStringSubmatch(m); r != nil {
			rules = append(rules, policy.Rule(r[1]))
		}
	}
	slices.Sort(rules)
	return rules
}

// causesOf are the messages of a denial's causes.
// chartWideKindMismatch is the kind-mismatch denial of a Deployment that a
// chart's common labels made stateful-single, with its way out.
func chartWideKindMismatch(deployment string) string {
	return fmt.Sprintf(`deployment %q is labelled stateful-single, which runs as a StatefulSet: use stateless-single or stateless-multi, or create a statefulset; `+
		`if a chart's common labels put it there, label only the chart's StatefulSet (a Helm post-renderer, see the README's 'Opting in charts you do not write') `+
		`or remove the label from this deployment and its pod template [kind-mismatch]`, deployment)
}

func causesOf(t *testing.T, err error) []string {
	t.Helper()
	var apiErr apierrors.APIStatus
	require.ErrorAs(t, err, &apiErr)
	var messages []string
	if details := apiErr.Status().Details; details != nil {
		for _, c := range details.Causes {
			messages = append(messages, c.Message)
		}
	}
	return messages
}

// chartObject is what the API server answered for one object of a release:
// the rules of its denial or of its warnings, sorted.
type chartObject struct {
	Ref    string
	Denied []policy.Rule
	Warned []policy.Rule
}

// install creates a release's objects in order, as `helm install` does, and
// returns what was answered for each. Decisions that read statekeeper's
// caches (headless-conflict reads the Service Helm created a moment
// before) are settled with dry runs first: an object expected to be denied
// is created once its dry run is denied, any other once its dry run shows
// the expected warnings.
func (tn *tenant) install(objects []client.Object, want []chartObject) []chartObject {
	tn.t.Helper()
	expected := map[string]chartObject{}
	for _, w := range want {
		expected[w.Ref] = w
	}
	var got []chartObject
	for _, obj := range objects {
		ref := fmt.Sprintf("%s/%s", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName())
		op := func(dryRun bool) error { return tn.create(obj.DeepCopyObject().(client.Object), dryRun) }
		w := expected[ref]
		answer := chartObject{Ref: ref}
		if len(w.Denied) > 0 {
			causes := causesOf(tn.t, tn.denied(op))
			answer.Denied = rulesOf(causes)
			if slices.Equal(answer.Denied, []policy.Rule{policy.RuleKindMismatch}) {
				// The way out for chart-wide labels: the README's post-renderer.
				assert.Equal(tn.t, []string{"Forbidden: " + chartWideKindMismatch(obj.GetName())}, causes)
			}
		} else {
			tn.settle(func(bool) error {
				tn.warnings.take()
				if err := op(true); err != nil {
					return err
				}
				if rules := rulesOf(tn.warnings.take()); !slices.Equal(rules, w.Warned) {
					return fmt.Errorf("warned %v, want %v", rules, w.Warned)
				}
				return nil
			}, func(err error) bool { return err == nil })
			tn.warnings.take()
			require.NoError(tn.t, op(false), "creating %s", ref)
			answer.Warned = rulesOf(tn.warnings.take())
		}
		got = append(got, answer)
	}
	// Helm keeps the order of objects of one kind from templates it reads
	// in no set order; the answers are compared by object.
	slices.SortFunc(got, func(a, b chartObject) int { return strings.Compare(a.Ref, b.Ref) })
	return got
}

// TestThirdPartyChartsInstall installs each test chart, opted in as its
// values allow, in an enforce namespace: every release installs but the one
// whose chart-wide labels put a stateful type on its exporter, which is
// denied with the way out; the warnings name what the user does not get.
func TestThirdPartyChartsInstall(t *testing.T) {
	t.Parallel()
	const (
		db   = "db-single-db"
		ring = "ring-gossip-ring"
		rs   = "rs-replicaset-arbiter"
	)
	rules := func(r ...policy.Rule) []policy.Rule { slices.Sort(r); return r }
	for _, tc := range []struct {
		name                   string
		chart, release, values string
		want                   []chartObject
	}{{
		name: "single-db: commonLabels", chart: "single-db", release: "db", values: "single-db-common-labels.yaml",
		want: []chartObject{
			{Ref: "Service/" + db},
			{Ref: "Service/" + db + "-metrics"},
			{Ref: "Deployment/" + db + "-metrics", Denied: rules(policy.RuleKindMismatch)},
			{Ref: "StatefulSet/" + db, Warned: rules(policy.RuleHeadlessConflict)},
		},
	}, {
		name: "single-db: primary.podLabels", chart: "single-db", release: "db", values: "single-db-pod-labels.yaml",
		want: []chartObject{
			{Ref: "Service/" + db},
			{Ref: "Service/" + db + "-metrics"},
			{Ref: "Deployment/" + db + "-metrics"},
			{Ref: "StatefulSet/" + db, Warned: rules(policy.RuleHeadlessConflict)},
		},
	}, {
		name: "single-db: headless Service and HPA", chart: "single-db", release: "db", values: "single-db-headless.yaml",
		want: []chartObject{
			{Ref: "Service/" + db},
			{Ref: "Service/" + db + "-hl"},
			{Ref: "HorizontalPodAutoscaler/" + db},
			{Ref: "StatefulSet/" + db},
		},
	}, {
		name: "single-db: persistence off", chart: "single-db", release: "db", values: "single-db-ephemeral.yaml",
		want: []chartObject{
			{Ref: "Service/" + db},
			{Ref: "StatefulSet/" + db, Warned: rules(policy.RuleHeadlessConflict, policy.RuleEphemeralData)},
		},
	}, {
		name: "single-db: a misspelt key", chart: "single-db", release: "db", values: "single-db-typo.yaml",
		want: []chartObject{
			{Ref: "Service/" + db},
			{Ref: "StatefulSet/" + db, Warned: rules(policy.RuleUnknownKey)},
		},
	}, {
		name: "gossip-ring", chart: "gossip-ring", release: "ring", values: "gossip-ring.yaml",
		want: []chartObject{
			{Ref: "Service/" + ring + "-memberlist"},
			{Ref: "StatefulSet/" + ring, Warned: rules(policy.RuleHeadlessConflict)},
		},
	}, {
		name: "replicaset-arbiter", chart: "replicaset-arbiter", release: "rs", values: "replicaset-arbiter.yaml",
		want: []chartObject{
			{Ref: "Service/" + rs + "-arbiter-headless"},
			{Ref: "Service/" + rs + "-headless"},
			{Ref: "StatefulSet/" + rs + "-arbiter"},
			{Ref: "StatefulSet/" + rs},
		},
	}, {
		name: "replicaset-arbiter: the arbiter's vote undeclared", chart: "replicaset-arbiter", release: "rs", values: "replicaset-arbiter-no-vote.yaml",
		want: []chartObject{
			{Ref: "Service/" + rs + "-arbiter-headless"},
			{Ref: "Service/" + rs + "-headless"},
			{Ref: "StatefulSet/" + rs + "-arbiter"},
			{Ref: "StatefulSet/" + rs, Denied: rules(policy.RuleQuorum)},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tn := newTenant(t, "")
			got := tn.install(renderChart(t, tc.chart, tc.release, tc.values), tc.want)
			slices.SortFunc(tc.want, func(a, b chartObject) int { return strings.Compare(a.Ref, b.Ref) })
			assert.Equal(t, tc.want, got)
		})
	}
}
