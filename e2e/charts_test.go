//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// The charts people already run (issue 17), as the small charts of
// test/charts reproduce them: `helm install` of each, opted in as its values
// allow, in an enforce namespace of the cluster statekeeper runs in.

const (
	// testChartsDir and optInValuesDir are relative to this package.
	testChartsDir  = "../test/charts"
	optInValuesDir = "../test/charts/values"
	// postRendererPlugins is the directory holding the example post-renderer
	// plugin, as Helm 4 finds plugins in $HELM_PLUGINS.
	postRendererPlugins = "../examples/post-renderer"
)

// installChart runs `helm install` of a test chart into the namespace with
// the opt-in values file (when not empty) and more helm flags; it returns
// what helm printed on failure as the error. Helm runs the example
// post-renderer plugin with the suite's kubectl.
func (n *namespace) installChart(chart, release, values string, flags ...string) error {
	n.t.Helper()
	plugins, err := filepath.Abs(postRendererPlugins)
	require.NoError(n.t, err)
	args := []string{"install", release, filepath.Join(testChartsDir, chart), "--namespace", n.name, "--kubeconfig", suite.settings.kubeconfig}
	if values != "" {
		args = append(args, "--values", filepath.Join(optInValuesDir, values))
	}
	cmd := exec.CommandContext(n.t.Context(), suite.settings.helm, append(args, flags...)...)
	cmd.Env = append(cmd.Environ(), "HELM_PLUGINS="+plugins, "KUBECTL="+suite.settings.kubectl)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return nil
}

// helmRefusal is the error helm ended with ("Error: ..." to the end of
// its output), without the warnings it logged before for objects it did
// create.
func helmRefusal(err error) string {
	out := err.Error()
	if i := strings.LastIndex(out, "Error: "); i >= 0 {
		return out[i:]
	}
	return out
}

// identityWithoutPeerCount is the pod's statekeeper annotations
// (identityOf) without the replica count the peers reflect, which says
// nothing when no peers are stamped.
func identityWithoutPeerCount(pod *corev1.Pod) map[string]string {
	id := identityOf(pod)
	delete(id, policy.AnnotationPeersReplicas)
	return id
}

// eventuallyScheduledPods waits until the pods matching selector are all
// bound to a node, count of them: their requests (ephemeral-storage among
// them) fit the node.
func (n *namespace) eventuallyScheduledPods(selector map[string]string, count int) {
	n.t.Helper()
	n.eventually(fmt.Sprintf("%d pods %v to be scheduled", count, selector), func(ctx context.Context) (bool, string, error) {
		var pods corev1.PodList
		if err := suite.client.List(ctx, &pods, client.InNamespace(n.name), client.MatchingLabels(selector)); err != nil {
			return false, "", err
		}
		scheduled := 0
		for _, p := range pods.Items {
			if p.Spec.NodeName != "" {
				scheduled++
			}
		}
		return scheduled == count, fmt.Sprintf("%d of %d scheduled", scheduled, len(pods.Items)), nil
	})
}

// TestChartOnClusterIPServiceName installs single-db opted in through its
// pods' labels and annotations, with serviceName its ClusterIP Service: the
// release installs, the extra mount gets its claim at the annotated size,
// the pods (which request ephemeral-storage) run, and their identity names
// no DNS name that would not resolve. The exporter stays unmanaged.
func TestChartOnClusterIPServiceName(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, policy.ModeEnforce)
	require.NoError(t, ns.installChart("single-db", "db", "single-db-pod-labels.yaml"))

	var sts appsv1.StatefulSet
	ns.get("db-single-db", &sts)
	assert.Equal(t, "db-single-db", sts.Spec.ServiceName)
	claims := map[string]resource.Quantity{}
	for _, c := range sts.Spec.VolumeClaimTemplates {
		claims[c.Name] = c.Spec.Resources.Requests[corev1.ResourceStorage]
	}
	assert.Equal(t, map[string]resource.Quantity{"data": resource.MustParse("1Gi"), "backup": resource.MustParse("2Gi")}, claims)

	pod := ns.eventuallyReadyPod("db-single-db-0", "")
	assert.Equal(t, map[string]string{
		policy.AnnotationOrdinal:  "0",
		policy.AnnotationHostname: "db-single-db-0",
		policy.AnnotationService:  "db-single-db",
		// The chart's podAnnotations, which the pods carry as every pod
		// carries its template's.
		policy.AnnotationStorageSize: "2Gi",
	}, identityWithoutPeerCount(pod))

	var svc corev1.Service
	ns.get("db-single-db", &svc)
	assert.NotEqual(t, corev1.ClusterIPNone, svc.Spec.ClusterIP, "the chart's Service stays a ClusterIP Service")
	assert.Equal(t, "Helm", svc.Labels[policy.LabelManagedBy])

	var exporter appsv1.Deployment
	ns.get("db-single-db-metrics", &exporter)
	assert.NotContains(t, exporter.Labels, policy.LabelDeployType)
	ns.eventuallyScheduledPods(exporter.Spec.Selector.MatchLabels, 1)
}

// TestChartOnHeadlessService installs single-db with its own headless
// Service in serviceName and an HPA (installed before the StatefulSet): the
// pod's identity is the headless Service's DNS name.
func TestChartOnHeadlessService(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, policy.ModeEnforce)
	require.NoError(t, ns.installChart("single-db", "db", "single-db-headless.yaml"))

	pod := ns.eventuallyReadyPod("db-single-db-0", "")
	fqdn := fmt.Sprintf("db-single-db-0.db-single-db-hl.%s.svc.%s", ns.name, clusterDomain)
	assert.Equal(t, map[string]string{
		policy.AnnotationOrdinal:       "0",
		policy.AnnotationHostname:      "db-single-db-0",
		policy.AnnotationService:       "db-single-db-hl",
		policy.AnnotationFQDN:          fqdn,
		policy.AnnotationPrimaryFQDN:   fqdn,
		policy.AnnotationPeers:         fqdn,
		policy.AnnotationPeersReplicas: "1",
	}, identityOf(pod))
}

// TestChartGossipRing installs a gossip ring whose serviceName is its
// memberlist ClusterIP Service, opted in through its pods' labels only: the
// three members run and none is told a DNS name of its own or of peers.
// Persistence is off so that the test takes none of the cluster's few
// volumes.
func TestChartGossipRing(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, policy.ModeEnforce)
	require.NoError(t, ns.installChart("gossip-ring", "ring", "gossip-ring.yaml", "--set", "persistence.enabled=false"))

	var sts appsv1.StatefulSet
	ns.get("ring-gossip-ring", &sts)
	assert.Equal(t, string(policy.StatefulMulti), sts.Spec.Template.Labels[policy.LabelDeployType])
	for i := range 3 {
		name := fmt.Sprintf("ring-gossip-ring-%d", i)
		pod := ns.eventuallyReadyPod(name, "")
		assert.Equal(t, map[string]string{
			policy.AnnotationOrdinal:  fmt.Sprint(i),
			policy.AnnotationHostname: name,
			policy.AnnotationService:  "ring-gossip-ring-memberlist",
		}, identityWithoutPeerCount(pod), "pod %s", name)
	}
}

// TestChartCommonLabelsRefused installs single-db opted in through its
// chart-wide labels: they put stateful-single on the exporter Deployment
// too, and the install is refused with the way out.
func TestChartCommonLabelsRefused(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, policy.ModeEnforce)
	err := ns.installChart("single-db", "db", "single-db-common-labels.yaml")
	require.Error(t, err)
	assert.Equal(t, []policy.Rule{policy.RuleKindMismatch}, slices.Compact(rulesIn(helmRefusal(err))), "%v", err)
	// Helm wraps the API server's answer; the denial inside it is whole.
	assert.Contains(t, helmRefusal(err), `deployment "db-single-db-metrics" is labelled stateful-single, which runs as a StatefulSet: `+
		`use stateless-single or stateless-multi, or create a statefulset; if a chart's common labels put it there, label only the chart's StatefulSet `+
		`(a Helm post-renderer, see the README's 'Opting in charts you do not write') or remove the label from this deployment and its pod template [kind-mismatch]`)
}

// TestChartPostRenderer installs single-db with its exporter through the
// example post-renderer, which labels the StatefulSet alone: the release
// installs, the StatefulSet is managed and the exporter is not.
func TestChartPostRenderer(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, policy.ModeEnforce)
	require.NoError(t, ns.installChart("single-db", "db", "",
		"--set", "metrics.enabled=true", "--set", "persistence.storageClass="+neverBound,
		"--post-renderer", "statekeeper-label",
		"--post-renderer-args", "StatefulSet/db-single-db", "--post-renderer-args", string(policy.StatefulSingle)))

	var sts appsv1.StatefulSet
	ns.get("db-single-db", &sts)
	assert.Equal(t, string(policy.StatefulSingle), sts.Labels[policy.LabelDeployType])
	assert.Equal(t, string(policy.StatefulSingle), sts.Spec.Template.Labels[policy.LabelDeployType], "statekeeper's mutation labels the pods")
	var exporter appsv1.Deployment
	ns.get("db-single-db-metrics", &exporter)
	assert.NotContains(t, exporter.Labels, policy.LabelDeployType)
	assert.NotContains(t, exporter.Spec.Template.Labels, policy.LabelDeployType)
}

// TestChartReplicaSetWithArbiter installs two data members and an arbiter:
// with the arbiter's vote declared on the data StatefulSet the release
// installs; without it the data StatefulSet is refused as an even quorum.
func TestChartReplicaSetWithArbiter(t *testing.T) {
	t.Parallel()
	neverBoundClaims := []string{"--set", "data.persistence.storageClass=" + neverBound}

	ns := newNamespace(t, policy.ModeEnforce)
	require.NoError(t, ns.installChart("replicaset-arbiter", "rs", "replicaset-arbiter.yaml", neverBoundClaims...))
	var data appsv1.StatefulSet
	ns.get("rs-replicaset-arbiter", &data)
	assert.Equal(t, string(policy.StatefulMulti), data.Spec.Template.Labels[policy.LabelDeployType])
	var arbiter appsv1.StatefulSet
	ns.get("rs-replicaset-arbiter-arbiter", &arbiter)
	assert.Equal(t, string(policy.StatefulSingle), arbiter.Spec.Template.Labels[policy.LabelDeployType])

	undeclared := newNamespace(t, policy.ModeEnforce)
	err := undeclared.installChart("replicaset-arbiter", "rs", "replicaset-arbiter-no-vote.yaml", neverBoundClaims...)
	require.Error(t, err)
	assert.Equal(t, []policy.Rule{policy.RuleQuorum}, slices.Compact(rulesIn(helmRefusal(err))), "%v", err)
}
