//go:build e2e && linux

package e2e

import (
	"os/exec"
	"syscall"
)

// endWithSuite has the kernel stop the local server when the test binary
// dies without its teardown (go test's timeout, a kill): an orphaned server
// would keep the leader-election Lease and starve the next run's reconciler.
func endWithSuite(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
