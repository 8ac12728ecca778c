//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
	"github.com/statekeeper/statekeeper/test/workloads"
)

// alertMetricsFile lists the metrics the chart's alerts and dashboard read;
// hack/monitoring keeps it equal to what they read.
const alertMetricsFile = "../hack/monitoring/testdata/metrics.txt"

// chartMetricsPort is the chart's default metrics.port, which the suite installs with.
const chartMetricsPort = "8080"

// TestMetricsTheAlertsRead: every metric the chart's alerts and dashboard
// read is on the /metrics of the statekeeper the chart installed, once it
// has denied a request, warned about one and its audit has found the
// warned workload stored.
func TestMetricsTheAlertsRead(t *testing.T) {
	t.Parallel()
	want := alertMetrics(t)

	newNamespace(t, policy.ModeEnforce).create(workloads.Deployment("web", policy.StatelessSingle, 3)).
		expect(t, denied(policy.RuleSingleInstance))
	newNamespace(t, policy.ModeWarn).create(workloads.Deployment("web", policy.StatelessSingle, 3)).
		expect(t, warned(policy.RuleSingleInstance))

	eventually(t, "every metric the alerts and the dashboard read on statekeeper's /metrics", func(ctx context.Context) (bool, string, error) {
		exposed, err := exposedMetrics(ctx)
		if err != nil {
			return false, err.Error(), nil
		}
		var missing []string
		for _, name := range want {
			if !exposed[name] {
				missing = append(missing, name)
			}
		}
		return len(missing) == 0, fmt.Sprintf("missing %v", missing), nil
	})
}

// alertMetrics reads the list of metrics the alerts and the dashboard read.
func alertMetrics(t *testing.T) []string {
	t.Helper()
	content, err := os.ReadFile(alertMetricsFile)
	require.NoError(t, err)
	var names []string
	for line := range strings.Lines(string(content)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			names = append(names, line)
		}
	}
	require.NotEmpty(t, names, alertMetricsFile)
	return names
}

// exposedMetrics are the names of the samples statekeeper exposes: the
// local process's /metrics, or on a cluster that runs the chart's pods,
// each pod's through the API server's proxy (the audit's metrics are on
// the leader only).
func exposedMetrics(ctx context.Context) (map[string]bool, error) {
	if local := suite.release.local; local != nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, local.metricsURL(), http.NoBody)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		return sampleNames(string(body)), nil
	}
	clientset, err := kubernetes.NewForConfig(suite.config)
	if err != nil {
		return nil, err
	}
	var pods corev1.PodList
	if err := suite.client.List(ctx, &pods, client.InNamespace(releaseNamespace), instanceSelector); err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, pod := range pods.Items {
		body, err := clientset.CoreV1().Pods(releaseNamespace).ProxyGet("http", pod.Name, chartMetricsPort, "/metrics", nil).DoRaw(ctx)
		if err != nil {
			return nil, fmt.Errorf("pod %s: %w", pod.Name, err)
		}
		for name := range sampleNames(string(body)) {
			names[name] = true
		}
	}
	return names, nil
}

// sampleNames are the sample names of a Prometheus text exposition: a
// histogram's are its _bucket, _sum and _count.
func sampleNames(exposition string) map[string]bool {
	names := map[string]bool{}
	for line := range strings.Lines(exposition) {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		end := strings.IndexAny(line, "{ ")
		if end < 0 {
			continue
		}
		names[line[:end]] = true
	}
	return names
}
