// Package report_test runs the PolicyReport writer (audit.ReportWriter)
// against a real API server (envtest) that serves the chart's PolicyReport
// CRD, so that the schema accepts what statekeeper writes and the writes are
// only those needed. It has an API server of its own, not test/integration's:
// there a whole statekeeper runs its background audit, which rewrites
// statekeeper's reports in every namespace, so the exact writes counted here
// could not be told from its own.
package report_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/statekeeper/statekeeper/internal/audit"
	"github.com/statekeeper/statekeeper/internal/policy"
)

var k8s client.Client

func TestMain(m *testing.M) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "test/report needs KUBEBUILDER_ASSETS (kube-apiserver, etcd); run it with `make test`")
		os.Exit(1)
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{"../../charts/statekeeper/files"},
		ErrorIfCRDPathMissing: true,
	}
	env.ControlPlane.GetAPIServer().Configure().Append("feature-gates", "WatchList=false")
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting envtest: %v\n", err)
		os.Exit(1)
	}
	k8s, err = client.New(cfg, client.Options{Scheme: clientgoscheme.Scheme})
	code := 1
	if err == nil {
		code = m.Run()
	} else {
		fmt.Fprintf(os.Stderr, "building the client: %v\n", err)
	}
	if err := env.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
	}
	os.Exit(code)
}

func namespace(t *testing.T) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "report-"}}
	require.NoError(t, k8s.Create(t.Context(), ns))
	return ns.Name
}

func deployment(ns, name string) audit.Object {
	return audit.Object{APIVersion: "apps/v1", Kind: "Deployment", Namespace: ns, Name: name, UID: types.UID("uid-" + name)}
}

func broken(o audit.Object, replicas int) audit.Finding {
	return audit.Finding{Object: o, Rule: policy.RuleSingleInstance, Result: audit.Fail, Field: "spec.replicas",
		Message: fmt.Sprintf("deployment %q is stateless-single: replicas must be 0 or 1, got %d", o.Name, replicas)}
}

// sync builds the namespace's reports from a and writes them as the audit does.
func sync(t *testing.T, w audit.ReportWriter, a audit.NamespaceAudit, now time.Time, maxResults int) ([]audit.PolicyReport, audit.ReportWrites) {
	t.Helper()
	stored, err := w.Stored(t.Context(), a.Namespace)
	require.NoError(t, err)
	writes, err := w.Sync(t.Context(), stored, audit.Reports(a, audit.FirstFoundIn(stored), now, maxResults))
	require.NoError(t, err)
	after, err := w.Stored(t.Context(), a.Namespace)
	require.NoError(t, err)
	return after, writes
}

func TestWriterWritesOnlyChanges(t *testing.T) {
	w := audit.ReportWriter{Client: k8s}
	ns := namespace(t)
	web, api, db := deployment(ns, "web"), deployment(ns, "api"), deployment(ns, "db")
	t0 := time.Unix(1_700_000_000, 0)
	a := audit.NamespaceAudit{Namespace: ns, Audited: []audit.Object{api, db, web}, Findings: []audit.Finding{broken(web, 3)}}

	reports, writes := sync(t, w, a, t0, 0)
	assert.Equal(t, audit.ReportWrites{Created: 1}, writes)
	require.Len(t, reports, 1)
	r := reports[0]
	assert.Equal(t, "statekeeper", r.Name)
	assert.Equal(t, map[string]string{"app.kubernetes.io/managed-by": "statekeeper"}, r.Labels)
	assert.Equal(t, audit.ReportSummary{Pass: 2, Fail: 1}, r.Summary)
	assert.Equal(t, []audit.ReportResult{{
		Source: "statekeeper", Policy: "statekeeper", Rule: "single-instance", Severity: "high",
		Timestamp: metav1.Timestamp{Seconds: t0.Unix()}, Result: "fail", Scored: true,
		Resources:  []corev1.ObjectReference{{APIVersion: "apps/v1", Kind: "Deployment", Namespace: ns, Name: "web", UID: "uid-web"}},
		Message:    `deployment "web" is stateless-single: replicas must be 0 or 1, got 3`,
		Properties: map[string]string{"field": "spec.replicas"},
	}}, r.Results)

	// The same findings later: nothing is written, the timestamp stays.
	_, writes = sync(t, w, a, t0.Add(time.Hour), 0)
	assert.Equal(t, audit.ReportWrites{}, writes)

	// A second finding: one update; the first keeps its timestamp.
	a.Findings = []audit.Finding{broken(db, 2), broken(web, 3)}
	reports, writes = sync(t, w, a, t0.Add(2*time.Hour), 0)
	assert.Equal(t, audit.ReportWrites{Updated: 1}, writes)
	require.Len(t, reports[0].Results, 2)
	stamps := map[string]int64{}
	for _, res := range reports[0].Results {
		stamps[res.Resources[0].Name] = res.Timestamp.Seconds
	}
	assert.Equal(t, map[string]int64{"web": t0.Unix(), "db": t0.Add(2 * time.Hour).Unix()}, stamps)
	assert.Equal(t, audit.ReportSummary{Pass: 1, Fail: 2}, reports[0].Summary)

	// Fixed and deleted: the results go, and with nothing audited, the report.
	a = audit.NamespaceAudit{Namespace: ns, Audited: []audit.Object{db}}
	reports, writes = sync(t, w, a, t0.Add(3*time.Hour), 0)
	assert.Equal(t, audit.ReportWrites{Updated: 1}, writes)
	assert.Empty(t, reports[0].Results)
	assert.Equal(t, audit.ReportSummary{Pass: 1}, reports[0].Summary)
	reports, writes = sync(t, w, audit.NamespaceAudit{Namespace: ns}, t0.Add(4*time.Hour), 0)
	assert.Equal(t, audit.ReportWrites{Deleted: 1}, writes)
	assert.Empty(t, reports)
}

// A namespace with more findings than one report may hold is split into
// shards of at most maxResults results; each object's results stay in one
// shard, and a change to one object rewrites only its shard.
func TestWriterSplitsLargeNamespaces(t *testing.T) {
	w := audit.ReportWriter{Client: k8s}
	ns := namespace(t)
	const objects, maxResults = 60, 20
	a := audit.NamespaceAudit{Namespace: ns}
	for i := range objects {
		o := deployment(ns, fmt.Sprintf("web-%02d", i))
		a.Audited = append(a.Audited, o)
		a.Findings = append(a.Findings, broken(o, 2))
	}
	reports, writes := sync(t, w, a, time.Unix(1_700_000_000, 0), maxResults)
	shards := len(reports)
	require.Greater(t, shards, 1)
	assert.Equal(t, len(reports), writes.Created)
	total := 0
	for _, r := range reports {
		assert.LessOrEqual(t, len(r.Results), maxResults, r.Name)
		assert.Equal(t, len(r.Results), r.Summary.Fail, r.Name)
		total += len(r.Results)
	}
	assert.Equal(t, objects, total)

	a.Findings[7] = broken(a.Audited[7], 5)
	_, writes = sync(t, w, a, time.Unix(1_700_000_100, 0), maxResults)
	assert.Equal(t, audit.ReportWrites{Updated: 1}, writes)

	// Back under the limit: one report again, the shards deleted.
	a.Audited, a.Findings = a.Audited[:5], a.Findings[:5]
	reports, writes = sync(t, w, a, time.Unix(1_700_000_200, 0), maxResults)
	require.Len(t, reports, 1)
	assert.Equal(t, "statekeeper", reports[0].Name)
	assert.Equal(t, audit.ReportWrites{Created: 1, Deleted: shards}, writes)
	assert.Len(t, reports[0].Results, 5)
}

// The writer replaces only its own reports: another tool's report in the
// same namespace is left alone.
func TestWriterLeavesOtherReports(t *testing.T) {
	w := audit.ReportWriter{Client: k8s}
	ns := namespace(t)
	other := &audit.PolicyReport{ObjectMeta: metav1.ObjectMeta{Name: "kyverno-xyz", Namespace: ns}}
	u, err := toUnstructured(other)
	require.NoError(t, err)
	require.NoError(t, k8s.Create(context.Background(), u))

	_, writes := sync(t, w, audit.NamespaceAudit{Namespace: ns}, time.Now(), 0)
	assert.Equal(t, audit.ReportWrites{}, writes)
	require.NoError(t, k8s.Get(t.Context(), client.ObjectKeyFromObject(u), u))
}

func toUnstructured(r *audit.PolicyReport) (*unstructured.Unstructured, error) {
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(r)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: obj}
	u.SetGroupVersionKind(audit.PolicyReportGroupVersion.WithKind(audit.PolicyReportKind))
	return u, nil
}
