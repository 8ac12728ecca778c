package chart

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const devCAScript = "../../certs/dev-ca.sh"

func readCertificate(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	block, _ := pem.Decode(data)
	require.NotNil(t, block, "%s holds no PEM block", path)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return cert
}

func runDevCA(t *testing.T, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	out, err := exec.Command(devCAScript, args...).CombinedOutput()
	return string(out), err
}

// The script's output is what `statekeeper serve --cert-dir` and a webhook
// caBundle need: a serving certificate for exactly the given hosts that
// verifies against ca.crt, and a key nobody else can read.
func TestDevCA(t *testing.T) {
	dir := t.TempDir()
	out, err := runDevCA(t, dir, "127.0.0.1", "localhost", "::1", "sk-statekeeper-webhook.statekeeper.svc")
	require.NoError(t, err, out)

	ca := readCertificate(t, filepath.Join(dir, "ca.crt"))
	serving := readCertificate(t, filepath.Join(dir, "tls.crt"))
	assert.True(t, ca.IsCA)
	assert.False(t, serving.IsCA)
	assert.Equal(t, []string{"localhost", "sk-statekeeper-webhook.statekeeper.svc"}, serving.DNSNames)
	assert.Equal(t, []string{"127.0.0.1", "::1"}, ipStrings(serving.IPAddresses))
	assert.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, serving.ExtKeyUsage)

	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, host := range []string{"127.0.0.1", "localhost", "::1"} {
		_, err := serving.Verify(x509.VerifyOptions{Roots: roots, DNSName: host})
		assert.NoError(t, err, host)
	}
	_, err = serving.Verify(x509.VerifyOptions{Roots: roots, DNSName: "example.com"})
	assert.Error(t, err, "a host not asked for must not verify")

	key, err := os.Stat(filepath.Join(dir, "tls.key"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), key.Mode().Perm())

	// A second run re-issues the serving certificate under the same CA, so a
	// caBundle already registered in a cluster stays valid.
	out, err = runDevCA(t, dir, "127.0.0.2")
	require.NoError(t, err, out)
	assert.Equal(t, ca.Raw, readCertificate(t, filepath.Join(dir, "ca.crt")).Raw)
	reissued := readCertificate(t, filepath.Join(dir, "tls.crt"))
	assert.Equal(t, []string{"127.0.0.2"}, ipStrings(reissued.IPAddresses))
	_, err = reissued.Verify(x509.VerifyOptions{Roots: roots, DNSName: "127.0.0.2"})
	assert.NoError(t, err)
}

func TestDevCAUsage(t *testing.T) {
	out, err := runDevCA(t, t.TempDir())
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr)
	assert.Equal(t, 2, exitErr.ExitCode())
	assert.Contains(t, out, "usage: ")
}

func ipStrings(ips []net.IP) []string {
	s := make([]string, 0, len(ips))
	for _, ip := range ips {
		s = append(s, ip.String())
	}
	return s
}
