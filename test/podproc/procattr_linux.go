package podproc

import (
	"os/exec"
	"syscall"
)

func endWithParent(cmd *exec.Cmd, sig syscall.Signal) {
	if sig != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: sig}
	}
}
