package podproc

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestArgsReplacesTheGivenFlags(t *testing.T) {
	args := []string{"serve", "--cert-dir=/tmp/k8s-webhook-server/serving-certs", "--leader-elect=true", "--webhook-port=9443", "-v=2"}
	got := Args(args, map[string]string{"webhook-port": "19443", "cert-dir": "/local/certs", "kubeconfig": "/local/kubeconfig"})
	assert.Equal(t, []string{"serve", "--leader-elect=true", "-v=2",
		"--cert-dir=/local/certs", "--kubeconfig=/local/kubeconfig", "--webhook-port=19443"}, got)
}
