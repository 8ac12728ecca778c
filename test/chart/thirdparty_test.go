package chart

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/statekeeper/statekeeper/internal/check"
	"github.com/statekeeper/statekeeper/internal/cli"
	"github.com/statekeeper/statekeeper/internal/policy"
)

// The charts people already run, reproduced as small charts of our own under
// test/charts (issue 17): each opted in the ways such charts allow, through
// `statekeeper check`, and the post-renderer of examples/post-renderer.

const (
	testChartsDir  = "../../test/charts"
	optInValuesDir = "../../test/charts/values"
	postRendererV4 = "../../examples/post-renderer/statekeeper-label"
)

// testChart is one release of a test chart with one file of opt-in values.
type testChart struct {
	chart, release, values string
}

func (c testChart) templateArgs(extra ...string) []string {
	args := []string{"template", c.release, filepath.Join(testChartsDir, c.chart)}
	if c.values != "" {
		args = append(args, "--values", filepath.Join(optInValuesDir, c.values))
	}
	return append(args, extra...)
}

// decision is one line `statekeeper check` prints, reduced to what it
// decided: the verdict, the object and the rule (empty for "allowed"). The
// messages are the rules' own (compared whole in internal/policy's tests);
// here the question is which rule speaks about which object of a chart.
type decision struct {
	Verdict, Object string
	Rule            policy.Rule
}

var (
	checkLine   = regexp.MustCompile(`^(allowed|denied|warning|audit) ([A-Za-z]+/[^/ :]+/[^/ :]+)(?:: (.*))?$`)
	trailerRule = regexp.MustCompile(`\[([a-z]+(?:-[a-z]+)*)\]$`)
)

// decisionsOf parses check's output, sorted so that the rules' order within
// one object does not matter; a line of another shape fails the test.
func decisionsOf(t *testing.T, out string) []decision {
	t.Helper()
	var ds []decision
	for line := range strings.Lines(out) {
		line = strings.TrimSuffix(line, "\n")
		m := checkLine.FindStringSubmatch(line)
		require.NotNil(t, m, "not a line of statekeeper check: %q", line)
		d := decision{Verdict: m[1], Object: m[2]}
		if r := trailerRule.FindStringSubmatch(m[3]); r != nil && m[1] != "allowed" {
			d.Rule = policy.Rule(r[1])
		}
		ds = append(ds, d)
	}
	slices.SortFunc(ds, func(a, b decision) int {
		return strings.Compare(a.Object+a.Verdict+string(a.Rule), b.Object+b.Verdict+string(b.Rule))
	})
	return ds
}

// runCheck runs `statekeeper check` in-process with args.
func runCheck(stdin string, args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	code = cli.Main(append([]string{"check"}, args...), strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

// TestThirdPartyChartsLint keeps the test charts valid charts.
func TestThirdPartyChartsLint(t *testing.T) {
	charts, err := os.ReadDir(testChartsDir)
	require.NoError(t, err)
	for _, c := range charts {
		if _, err := os.Stat(filepath.Join(testChartsDir, c.Name(), "Chart.yaml")); err != nil {
			continue
		}
		t.Run(c.Name(), func(t *testing.T) {
			_, err := runHelm(t, "lint", "--strict", filepath.Join(testChartsDir, c.Name()))
			require.NoError(t, err)
		})
	}
}

// TestThirdPartyChartsCheck renders each test chart with its opt-in values
// and checks the release twice, as a `helm template` stream on stdin and as
// a `helm template --output-dir` tree with -R: both give the same output,
// and statekeeper decides what each chart's users need (issue 17's patterns
// 2, 3, 4 and 6) in the default namespace, whose mode is enforce.
func TestThirdPartyChartsCheck(t *testing.T) {
	const (
		db   = "db-single-db"
		ring = "ring-gossip-ring"
		rs   = "rs-replicaset-arbiter"
	)
	obj := func(kind, name string) string { return kind + "/default/" + name }
	for _, tc := range []struct {
		name     string
		chart    testChart
		want     []decision
		wantCode int
	}{{
		// commonLabels label the exporter Deployment too: its denial says
		// the way out (a post-renderer); the StatefulSet installs.
		name:  "single-db: commonLabels",
		chart: testChart{"single-db", "db", "single-db-common-labels.yaml"},
		want: []decision{
			{"denied", obj("Deployment", db+"-metrics"), policy.RuleKindMismatch},
			{"warning", obj("StatefulSet", db), policy.RuleHeadlessConflict},
		},
		wantCode: check.ExitDenied,
	}, {
		// The pod template's label opts the StatefulSet in; the exporter,
		// unlabelled, is not reviewed. serviceName is the ClusterIP Service.
		name:  "single-db: primary.podLabels",
		chart: testChart{"single-db", "db", "single-db-pod-labels.yaml"},
		want:  []decision{{"warning", obj("StatefulSet", db), policy.RuleHeadlessConflict}},
	}, {
		// The chart's headless Service in serviceName, and an HPA that Helm
		// installs before its StatefulSet. Its maxReplicas of 1 cannot break
		// a rule, so the API server does not send it (the scaling webhook's
		// match condition) and check prints nothing for it.
		name:  "single-db: headless Service and HPA",
		chart: testChart{"single-db", "db", "single-db-headless.yaml"},
		want:  []decision{{"allowed", obj("StatefulSet", db), ""}},
	}, {
		name:  "single-db: persistence off",
		chart: testChart{"single-db", "db", "single-db-ephemeral.yaml"},
		want: []decision{
			{"warning", obj("StatefulSet", db), policy.RuleEphemeralData},
			{"warning", obj("StatefulSet", db), policy.RuleHeadlessConflict},
		},
	}, {
		// A misspelt key leaves the StatefulSet unmanaged, and says so.
		name:  "single-db: a misspelt key",
		chart: testChart{"single-db", "db", "single-db-typo.yaml"},
		want:  []decision{{"warning", obj("StatefulSet", db), policy.RuleUnknownKey}},
	}, {
		name:  "gossip-ring: podLabels, ClusterIP serviceName",
		chart: testChart{"gossip-ring", "ring", "gossip-ring.yaml"},
		want:  []decision{{"warning", obj("StatefulSet", ring), policy.RuleHeadlessConflict}},
	}, {
		// Two data members and the arbiter: three votes, declared.
		name:  "replicaset-arbiter: the arbiter's vote declared",
		chart: testChart{"replicaset-arbiter", "rs", "replicaset-arbiter.yaml"},
		// Helm installs one kind in the order of its template files
		// (arbiter.yaml before data.yaml).
		want: []decision{
			{"allowed", obj("StatefulSet", rs+"-arbiter"), ""},
			{"allowed", obj("StatefulSet", rs), ""},
		},
	}, {
		name:  "replicaset-arbiter: the arbiter's vote undeclared",
		chart: testChart{"replicaset-arbiter", "rs", "replicaset-arbiter-no-vote.yaml"},
		want: []decision{
			{"allowed", obj("StatefulSet", rs+"-arbiter"), ""},
			{"denied", obj("StatefulSet", rs), policy.RuleQuorum},
		},
		wantCode: check.ExitDenied,
	}, {
		// Not opted in: nothing is reviewed, nothing printed.
		name:  "single-db: defaults",
		chart: testChart{"single-db", "db", ""},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			stream, err := runHelm(t, tc.chart.templateArgs()...)
			require.NoError(t, err)
			streamOut, streamErr, streamCode := runCheck(stream, "-f", "-")
			assert.Equal(t, tc.want, decisionsOf(t, streamOut), "check -f - of:\n%s", stream)
			assert.Empty(t, streamErr)
			assert.Equal(t, tc.wantCode, streamCode)

			tree := t.TempDir()
			_, err = runHelm(t, tc.chart.templateArgs("--output-dir", tree)...)
			require.NoError(t, err)
			treeOut, treeErr, treeCode := runCheck("", "-R", "-f", tree)
			assert.Equal(t, streamOut, treeOut, "check -R of the --output-dir tree")
			assert.Empty(t, treeErr)
			assert.Equal(t, streamCode, treeCode)
		})
	}
}

// kubectlBinary finds the kubectl the post-renderer runs: $KUBECTL, the
// PATH's, or the one the Makefile builds into its tool cache.
func kubectlBinary(t *testing.T) string {
	return toolBinary(t, "KUBECTL", true, []string{"kube-v1.36.3", "kubectl"}, "build it with `make tools`")
}

// TestPostRenderer renders single-db with its exporter through
// examples/post-renderer/statekeeper-label as Helm 4 finds the plugin: only
// the StatefulSet is labelled, and check admits the release where
// commonLabels would have the exporter denied. A name the chart does not
// render fails the render instead of installing the chart unmanaged; Helm 4
// shows only that the plugin failed, the script itself says why.
func TestPostRenderer(t *testing.T) {
	t.Setenv("KUBECTL", kubectlBinary(t))
	// The directory `helm plugin install` links the plugin into.
	plugins, err := filepath.Abs(filepath.Dir(postRendererV4))
	require.NoError(t, err)
	t.Setenv("HELM_PLUGINS", plugins)

	chart := testChart{chart: "single-db", release: "db"}
	render := func(target string) (string, error) {
		return runHelm(t, chart.templateArgs("--set", "metrics.enabled=true",
			"--post-renderer", "statekeeper-label",
			"--post-renderer-args", target, "--post-renderer-args", string(policy.StatefulSingle))...)
	}

	out, err := render("StatefulSet/db-single-db")
	require.NoError(t, err)
	deployTypes := map[string]string{}
	for _, obj := range splitDocuments(t, out) {
		var meta metav1.PartialObjectMetadata
		require.NoError(t, yaml.Unmarshal(obj.raw, &meta))
		deployTypes[obj.kind+"/"+obj.name] = meta.Labels[policy.LabelDeployType]
	}
	assert.Equal(t, map[string]string{
		"Service/db-single-db":            "",
		"StatefulSet/db-single-db":        string(policy.StatefulSingle),
		"Deployment/db-single-db-metrics": "",
		"Service/db-single-db-metrics":    "",
	}, deployTypes)

	checked, checkErr, code := runCheck(out, "-f", "-")
	assert.Equal(t, []decision{{"warning", "StatefulSet/default/db-single-db", policy.RuleHeadlessConflict}}, decisionsOf(t, checked))
	assert.Empty(t, checkErr)
	assert.Equal(t, check.ExitAllowed, code)

	_, err = render("StatefulSet/db")
	require.Error(t, err, "a post-renderer target the chart does not render must fail the render")

	plain, err := runHelm(t, chart.templateArgs("--set", "metrics.enabled=true")...)
	require.NoError(t, err)
	script := exec.CommandContext(t.Context(), filepath.Join(postRendererV4, "label.sh"), "StatefulSet/db", string(policy.StatefulSingle))
	script.Stdin = strings.NewReader(plain)
	var stdout, stderr bytes.Buffer
	script.Stdout, script.Stderr = &stdout, &stderr
	err = script.Run()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 1, exit.ExitCode())
	assert.Empty(t, stdout.String())
	assert.Equal(t, "label.sh: the chart rendered no StatefulSet named db\n", stderr.String())
}
