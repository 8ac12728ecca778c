package chart

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// certs/cert-manager.yaml is the chart's cert-manager chain for a release named
// statekeeper in namespace statekeeper, written out for installs without Helm.
// This test keeps the two from drifting apart: same objects, same specs
// (labels aside: Helm adds its own).
func TestCertManagerManifestsMatchTheChart(t *testing.T) {
	rendered, err := runHelm(t, "template", "statekeeper", chartDir, "--namespace", "statekeeper",
		"--show-only", "templates/certificates.yaml")
	require.NoError(t, err)
	plain, err := os.ReadFile("../../certs/cert-manager.yaml")
	require.NoError(t, err)

	// Helm orders objects by kind; the plain file in issuing order.
	assert.ElementsMatch(t, withoutLabels(t, rendered), withoutLabels(t, string(plain)))
}

func withoutLabels(t *testing.T, manifest string) []map[string]any {
	t.Helper()
	var objects []map[string]any
	for _, obj := range splitDocuments(t, manifest) {
		var m map[string]any
		require.NoError(t, yaml.Unmarshal(obj.raw, &m))
		if meta, ok := m["metadata"].(map[string]any); ok {
			delete(meta, "labels")
		}
		objects = append(objects, m)
	}
	return objects
}

// assertCertManagerAccepts holds a rendered Certificate to the limits of
// cert-manager's own admission webhook (internal/apis/certmanager/validation
// in its module, which the local e2e cannot run): a commonName of at most 64
// characters, and at least one name to issue for.
func assertCertManagerAccepts(t *testing.T, obj object) {
	t.Helper()
	var cert struct {
		Spec struct {
			CommonName  string   `json:"commonName"`
			DNSNames    []string `json:"dnsNames"`
			IPAddresses []string `json:"ipAddresses"`
		} `json:"spec"`
	}
	require.NoError(t, yaml.Unmarshal(obj.raw, &cert))
	spec := cert.Spec
	assert.LessOrEqual(t, len(spec.CommonName), 64,
		"Certificate %q: cert-manager refuses commonName %q (%d characters, at most 64)", obj.name, spec.CommonName, len(spec.CommonName))
	assert.True(t, spec.CommonName != "" || len(spec.DNSNames) > 0 || len(spec.IPAddresses) > 0,
		"Certificate %q names nothing to issue for", obj.name)
}
