package podproc

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEndWithParentAsksTheKernel(t *testing.T) {
	c := child(t, "echo")
	c.EndWithParent = syscall.SIGTERM
	p, err := Start(c)
	require.NoError(t, err)
	<-p.Done()
	assert.Equal(t, &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}, p.cmd.SysProcAttr)
}
