//go:build e2e && !linux

package e2e

import "os/exec"

// endWithSuite does nothing where the kernel cannot tie a child's life to
// its parent's; a server orphaned by a killed test binary must be stopped
// by hand there.
func endWithSuite(*exec.Cmd) {}
