package integration

import "syscall"

// procAttr makes a started process receive SIGKILL when the test binary
// dies (a -timeout panic, say), so no database or server outlives it.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
