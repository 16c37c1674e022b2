//go:build unix

package cli

import (
	"os/exec"
	"syscall"
)

// signalNumber is the signal that ended a child, for the shell's 128+N.
func signalNumber(ee *exec.ExitError) int {
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return int(ws.Signal())
	}
	return 0
}
