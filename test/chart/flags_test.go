package chart

import (
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/statekeeper/statekeeper/internal/config"
)

// The Deployment's arguments must be flags `statekeeper serve` accepts and
// validates, for every value set: a renamed flag or a value the binary refuses
// would otherwise surface only as a crash-looping pod.
func TestDeploymentArgsAreServeFlags(t *testing.T) {
	for _, tc := range valueCases {
		t.Run(tc.name, func(t *testing.T) {
			got := parseServeArgs(t, renderOnly(t, "templates/deployment.yaml", tc.values...))
			require.NoError(t, got.Validate())
		})
	}
}

// The defaults reach the binary as docs/spec.md §7 and the chart's values.yaml say.
func TestDefaultDeploymentConfig(t *testing.T) {
	got := parseServeArgs(t, renderOnly(t, "templates/deployment.yaml"))

	want := config.Default()
	want.CertDir = "/tmp/k8s-webhook-server/serving-certs"
	want.LeaderElect = true
	want.Namespace = releaseNS
	want.ExcludedNamespaces = []string{"kube-system", "kube-public", "kube-node-lease", releaseNS}
	want.ShutdownDrain = 5 * time.Second
	assert.Equal(t, want, got)
}

// A pod must outlive its drain and the requests in flight after it: the
// kubelet kills it at terminationGracePeriodSeconds.
func TestGracePeriodCoversDrainAndRequestsInFlight(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   int64
	}{
		{nil, 5 + 5 + 10},
		{[]string{"--set", "shutdownDrainSeconds=0", "--set", "webhook.timeoutSeconds=30"}, 0 + 30 + 10},
		{[]string{"--set", "shutdownDrainSeconds=15", "--set", "webhook.timeoutSeconds=2"}, 15 + 2 + 10},
		// The unlabelled entry's requests are in flight too.
		{[]string{"--set", "webhook.timeoutSeconds=3", "--set", "webhook.unlabelledTimeoutSeconds=8"}, 5 + 8 + 10},
	} {
		manifest := renderOnly(t, "templates/deployment.yaml", tc.values...)
		deployment := decodeOne[appsv1.Deployment](t, manifest, "Deployment")
		assert.Equal(t, &tc.want, deployment.Spec.Template.Spec.TerminationGracePeriodSeconds, "%v", tc.values)
		cfg := parseServeArgs(t, manifest)
		assert.Less(t, cfg.ShutdownDrain, time.Duration(tc.want)*time.Second, "%v", tc.values)
	}
}

// parseServeArgs parses the rendered container's arguments after "serve" the
// way the binary does, with the container's environment (POD_NAMESPACE as
// the Downward API fills it in the release namespace).
func parseServeArgs(t *testing.T, manifest string) config.Config {
	t.Helper()
	deployment := decodeOne[appsv1.Deployment](t, manifest, "Deployment")
	require.Len(t, deployment.Spec.Template.Spec.Containers, 1)
	container := deployment.Spec.Template.Spec.Containers[0]
	require.NotEmpty(t, container.Args)
	require.Equal(t, "serve", container.Args[0])

	env := map[string]string{}
	for _, e := range container.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			env[e.Name] = releaseNS
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		}
	}

	cfg := config.Default()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	cfg.BindFlags(fs)
	require.NoError(t, fs.Parse(container.Args[1:]))
	assert.Empty(t, fs.Args(), "arguments the binary would not read")
	require.NoError(t, config.ApplyEnv(fs, func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}))
	return cfg
}
