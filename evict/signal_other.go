//go:build !linux

package evict

import (
	"errors"
	"os"
	"syscall"

	"github.com/portkit/portkit/sockets"
)

// sendSignal is unreachable where sockets cannot be listed, which is everywhere
// but Linux for now; it says so rather than signalling blind.
func sendSignal(tb *sockets.Table, p sockets.Process, _ []uint64, sig syscall.Signal) error {
	if _, err := tb.Process(p.PID); err != nil {
		return err
	}
	proc, err := os.FindProcess(p.PID)
	if err != nil {
		return err
	}
	err = proc.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return errGone
	}
	return err
}
