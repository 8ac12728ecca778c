//go:build !linux

package podproc

import (
	"os/exec"
	"syscall"
)

// endWithParent does nothing where the kernel cannot tie a child's life to
// its parent's; a process orphaned by a killed parent must be stopped by
// hand there.
func endWithParent(*exec.Cmd, syscall.Signal) {}
