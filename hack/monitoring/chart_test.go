package monitoring

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite testdata/metrics.txt from the chart's alerts and dashboard")

const (
	chartDir = "../../charts/statekeeper"
	docsFile = "../../docs/monitoring.md"
	// metricsFile lists the metrics the alerts and the dashboard read; the
	// e2e suite checks them against a live statekeeper's /metrics.
	metricsFile = "testdata/metrics.txt"

	release   = "sk"
	namespace = "statekeeper"
	// job is what prometheus-operator names the ServiceMonitor's targets:
	// the metrics Service.
	job = "sk-statekeeper-metrics"
	// timeoutSeconds is the webhook timeout the chart is rendered with:
	// the alert test's slow requests take a little less than it.
	timeoutSeconds = 1
)

// promqlParser is Prometheus's PromQL parser with its default options, what a
// Prometheus server loads rules with.
var promqlParser = parser.NewParser(parser.Options{})

// rendered is the chart's monitoring objects as Helm renders them.
type rendered struct {
	// rules is the PrometheusRule's spec, a Prometheus rule file.
	rules []byte
	// dashboard is the ConfigMap's dashboard JSON.
	dashboard []byte
}

func renderChart(t *testing.T) rendered {
	t.Helper()
	helm := os.Getenv("HELM")
	if helm == "" {
		home, err := os.UserHomeDir()
		require.NoError(t, err)
		helm = filepath.Join(home, ".cache", "statekeeper", "tools", "helm")
		if _, err := os.Stat(helm); err != nil {
			t.Skipf("helm not found: HELM is unset and %s is missing (make test builds it)", helm)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, helm, "template", release, chartDir, "--namespace", namespace,
		"--set", "metrics.serviceMonitor.enabled=true",
		"--set", "monitoring.prometheusRule.enabled=true",
		"--set", "monitoring.dashboard.enabled=true",
		"--set", "webhook.timeoutSeconds=1",
		"--show-only", "templates/prometheusrule.yaml",
		"--show-only", "templates/dashboard-configmap.yaml")
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+dir, "HELM_CACHE_HOME="+dir, "HELM_DATA_HOME="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, stderr.String())

	var r rendered
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		var obj struct {
			Kind string `json:"kind"`
			Spec struct {
				Groups json.RawMessage `json:"groups"`
			} `json:"spec"`
			Data map[string]string `json:"data"`
		}
		require.NoError(t, yaml.Unmarshal(doc, &obj))
		switch obj.Kind {
		case "PrometheusRule":
			r.rules, err = yaml.JSONToYAML([]byte(`{"groups":` + string(obj.Spec.Groups) + `}`))
			require.NoError(t, err)
		case "ConfigMap":
			r.dashboard = []byte(obj.Data["statekeeper.json"])
		}
	}
	require.NotEmpty(t, r.rules, "no PrometheusRule rendered")
	require.NotEmpty(t, r.dashboard, "no dashboard ConfigMap rendered")
	return r
}

// parseRules parses the rule file as Prometheus loads one: unknown fields,
// bad expressions, durations and annotation templates are errors.
func parseRules(t *testing.T, content []byte) *rulefmt.RuleGroups {
	t.Helper()
	groups, errs := rulefmt.Parse(content, false, model.UTF8Validation, promqlParser, slog.New(slog.DiscardHandler))
	require.Empty(t, errs, "the PrometheusRule's groups:\n%s", content)
	return groups
}

// dashboardQueries are the PromQL expressions of the dashboard's panels,
// by panel title, with Grafana's variables replaced as Grafana replaces
// them before it queries.
func dashboardQueries(t *testing.T, dashboard []byte) map[string][]string {
	t.Helper()
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(dashboard, &d))
	out := map[string][]string{}
	for _, p := range d.Panels {
		for _, target := range p.Targets {
			out[p.Title] = append(out[p.Title], strings.ReplaceAll(target.Expr, "$__rate_interval", "5m"))
		}
	}
	return out
}

// selectors are the series an expression reads.
func selectors(expr parser.Expr) []*parser.VectorSelector {
	var out []*parser.VectorSelector
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			out = append(out, vs)
		}
		return nil
	})
	return out
}

// usedMetrics parses every alert and dashboard query and returns the
// metric names they read; each selector must select this release's series.
func usedMetrics(t *testing.T, r rendered) []string {
	t.Helper()
	var exprs []string
	for _, g := range parseRules(t, r.rules).Groups {
		for _, rule := range g.Rules {
			exprs = append(exprs, rule.Expr)
		}
	}
	for _, queries := range dashboardQueries(t, r.dashboard) {
		exprs = append(exprs, queries...)
	}
	var names []string
	for _, e := range exprs {
		expr, err := promqlParser.ParseExpr(e)
		require.NoError(t, err, e)
		for _, vs := range selectors(expr) {
			assert.Equal(t, []string{`job="` + job + `"`, `namespace="` + namespace + `"`}, releaseMatchers(vs),
				"%s in %q must select the release's series", vs.Name, e)
			names = append(names, vs.Name)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func releaseMatchers(vs *parser.VectorSelector) []string {
	var out []string
	for _, m := range vs.LabelMatchers {
		if m.Name == "job" || m.Name == "namespace" {
			out = append(out, m.String())
		}
	}
	slices.Sort(out)
	return out
}

func TestRulesParse(t *testing.T) {
	r := renderChart(t)
	groups := parseRules(t, r.rules)
	var alerts []string
	for _, g := range groups.Groups {
		for _, rule := range g.Rules {
			alerts = append(alerts, rule.Alert)
			assert.NotEmpty(t, rule.Labels["severity"], rule.Alert)
			for _, key := range []string{"summary", "description", "runbook_url"} {
				assert.NotEmpty(t, rule.Annotations[key], "%s has no %s", rule.Alert, key)
			}
		}
	}
	assert.Equal(t, []string{
		"StatekeeperNoReadyReplica", "StatekeeperAdmissionLatencyNearTimeout", "StatekeeperDenialsRising",
		"StatekeeperServingCertificateNotRenewed", "StatekeeperNoLeader", "StatekeeperAuditFindingsFail",
	}, alerts)
}

// TestRunbooksExist: every runbook_url names a section of docs/monitoring.md.
func TestRunbooksExist(t *testing.T) {
	docs, err := os.ReadFile(docsFile)
	require.NoError(t, err)
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#+ (.+)$`).FindAllStringSubmatch(string(docs), -1) {
		anchors[githubAnchor(m[1])] = true
	}
	for _, g := range parseRules(t, renderChart(t).rules).Groups {
		for _, rule := range g.Rules {
			url := rule.Annotations["runbook_url"]
			page, anchor, _ := strings.Cut(url, "#")
			assert.Equal(t, "https://github.com/statekeeper/statekeeper/blob/main/docs/monitoring.md", page, rule.Alert)
			assert.True(t, anchors[anchor], "%s: no section #%s in %s", rule.Alert, anchor, docsFile)
		}
	}
}

// githubAnchor is the anchor GitHub gives a heading.
func githubAnchor(heading string) string {
	heading = strings.ToLower(strings.TrimSpace(heading))
	heading = regexp.MustCompile(`[^a-z0-9 _-]`).ReplaceAllString(heading, "")
	return strings.ReplaceAll(heading, " ", "-")
}

func TestDashboardQueriesParse(t *testing.T) {
	queries := dashboardQueries(t, renderChart(t).dashboard)
	var titles []string
	for title, exprs := range queries {
		titles = append(titles, title)
		for _, e := range exprs {
			_, err := promqlParser.ParseExpr(e)
			assert.NoError(t, err, "%s: %s", title, e)
		}
	}
	slices.Sort(titles)
	assert.Equal(t, []string{
		"Admission latency against the timeout", "Admissions by outcome", "Audit findings by namespace and rule",
		"Denials and warnings by rule", "Leader", "Reconcile errors by controller", "Replicas ready and the leader",
		"Serving certificate time left", "Webhook answers by HTTP code",
	}, titles)
}

// TestMetricsList keeps testdata/metrics.txt, the metrics the alerts and
// the dashboard read (up is Prometheus's own), equal to the chart's
// (-update rewrites it).
func TestMetricsList(t *testing.T) {
	var names []string
	for _, n := range usedMetrics(t, renderChart(t)) {
		if n != "up" {
			names = append(names, n)
		}
	}
	content := "# The metrics the chart's alerts and dashboard read (hack/monitoring: go test -update).\n" +
		strings.Join(names, "\n") + "\n"
	if *update {
		require.NoError(t, os.WriteFile(metricsFile, []byte(content), 0o644))
	}
	want, err := os.ReadFile(metricsFile)
	require.NoError(t, err, "run `go test . -update` in hack/monitoring")
	assert.Equal(t, string(want), content, "run `go test . -update` in hack/monitoring")
}

// TestMetricsDocumented: every metric statekeeper registers (a name
// "statekeeper_…" in its source) has its row in the metrics table of
// docs/monitoring.md, so that a new metric cannot ship undocumented.
func TestMetricsDocumented(t *testing.T) {
	docs, err := os.ReadFile(docsFile)
	require.NoError(t, err)
	name := regexp.MustCompile(`"(statekeeper_[a-z_]+)"`)
	registered := map[string]bool{}
	err = filepath.WalkDir("../../internal", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		for _, m := range name.FindAllSubmatch(src, -1) {
			registered[string(m[1])] = true
		}
		return err
	})
	require.NoError(t, err)
	require.NotEmpty(t, registered)
	for metric := range registered {
		assert.Contains(t, string(docs), "| `"+metric+"` |", "%s has no row in %s", metric, docsFile)
	}
}
