//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/statekeeper/statekeeper/internal/policy"
)

// TestResizeThroughHelmUpgrade: a database chart's `helm upgrade --set
// persistence.size=...` with a larger size grows the claims (docs/spec.md
// §10), through the real StatefulSet controller and volume binder. The
// chart's claim template keeps its stored size; the claims' requests are
// raised (KWOK runs no CSI resizer, so their capacity stays, as in
// TestDayTwo); a new replica's claim is made at the new size; the same
// upgrade again writes nothing; a smaller size is refused (before the scale,
// whose field manager would then own spec.replicas against Helm's apply).
func TestResizeThroughHelmUpgrade(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "")
	const sts, claim0, claim1 = "db-single-db", "data-db-single-db-0", "data-db-single-db-1"
	// Opted in as stateful-multi through the pod labels, so that it can
	// scale to a second replica.
	optIn := []string{"--set", `primary.podLabels.statekeeper\.io/deploy-type=stateful-multi`}
	require.NoError(t, ns.installChart("single-db", "db", "", optIn...))
	ns.eventuallyReadyPod(sts+"-0", "")
	ns.eventuallyBoundClaim(claim0)
	var installed appsv1.StatefulSet
	ns.get(sts, &installed)

	upgrade := ns.helmUpgrade("single-db", "db", append(optIn, "--set", "persistence.size=2Gi")...)
	require.NoError(t, upgrade.err, upgrade.output)
	// Helm logs the API server's warnings quoted.
	assert.Contains(t, upgrade.output, strconv.Quote(`Warning: statefulset "db-single-db": claim template "data" keeps 1Gi, because the API server does not let claim templates change; `+
		`its claims grow to 2Gi instead (recorded in statekeeper.io/claim-sizes): the existing ones now, new ones when they are created [storage-resize]`))
	var upgraded appsv1.StatefulSet
	ns.get(sts, &upgraded)
	assert.Equal(t, installed.Spec.VolumeClaimTemplates, upgraded.Spec.VolumeClaimTemplates, "the template stays")
	assert.Equal(t, "data=2Gi", upgraded.Annotations[policy.AnnotationClaimSizes])
	ns.eventuallyClaimRequest(claim0, "2Gi")
	ns.eventuallyEvent(sts, "ClaimResizeRequested", `"`+claim0+`" now requests 2Gi (was 1Gi)`)

	t.Run("the same upgrade again writes nothing", func(t *testing.T) {
		ns := ns.in(t)
		again := ns.helmUpgrade("single-db", "db", append(optIn, "--set", "persistence.size=2Gi")...)
		require.NoError(t, again.err, again.output)
		assert.NotContains(t, again.output, "[storage-resize]")
		var after appsv1.StatefulSet
		ns.get(sts, &after)
		assert.Equal(t, upgraded.ResourceVersion, after.ResourceVersion)
	})

	t.Run("a smaller size is refused", func(t *testing.T) {
		ns := ns.in(t)
		shrink := ns.helmUpgrade("single-db", "db", append(optIn, "--set", "persistence.size=1536Mi")...)
		require.Error(t, shrink.err)
		assert.Contains(t, shrink.output, `statefulset "db-single-db": claim template "data" cannot shrink from 2Gi to 1536Mi, because volume claims only grow: `+
			`keep 2Gi or more, or back the data up and recreate the statefulset and its claims to use smaller volumes [storage-resize]`)
	})

	t.Run("a new replica's claim is made at the new size", func(t *testing.T) {
		ns := ns.in(t)
		ns.kubectl(nil, "scale", "statefulset", sts, "--replicas=2").expect(t, allowed)
		ns.eventuallyBoundClaim(claim1)
		var made corev1.PersistentVolumeClaim
		ns.get(claim1, &made)
		assert.Equal(t, resource.MustParse("2Gi"), made.Spec.Resources.Requests[corev1.ResourceStorage])
		// Made so, not raised afterwards: only its creator ever wrote its spec.
		var writers []string
		for _, f := range made.ManagedFields {
			if f.FieldsV1 != nil && bytes.Contains(f.FieldsV1.Raw, []byte(`"f:spec"`)) {
				writers = append(writers, f.Manager)
			}
		}
		assert.Equal(t, []string{"kube-controller-manager"}, writers)
	})

}

// helmResult is what one helm command printed.
type helmResult struct {
	output string
	err    error
}

// helmUpgrade runs `helm upgrade` of a test chart's release in the namespace
// with more helm flags (the values are given anew each time, as a GitOps
// tool renders them).
func (n *namespace) helmUpgrade(chart, release string, flags ...string) helmResult {
	n.t.Helper()
	args := []string{"upgrade", release, filepath.Join(testChartsDir, chart), "--namespace", n.name, "--kubeconfig", suite.settings.kubeconfig}
	cmd := exec.CommandContext(n.t.Context(), suite.settings.helm, append(args, flags...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("helm %s: %w", strings.Join(append(args, flags...), " "), err)
	}
	return helmResult{output: out.String(), err: err}
}
