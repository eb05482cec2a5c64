package main

import (
	"os/exec"
	"runtime"
	"syscall"
)

// startChild starts cmd so that it gets SIGTERM when the load tool dies,
// even by SIGKILL or SIGPIPE (`guard-load ... | head`): an orphaned guard
// would hold its CPU and disk through the next measurement. The kernel
// sends it when the thread that started the child exits, so that thread
// is kept for the start (Go does not end its threads otherwise).
func startChild(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return cmd.Start()
}
