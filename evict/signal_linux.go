package evict

import (
	"errors"
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/portkit/portkit/sockets"
)

// sendSignal sends sig to p if p is still the process it was. A pidfd is opened
// first and the start time checked after: if it matches, the pidfd names p
// for certain, and a signal through it cannot reach a process that took p's
// PID later. Kernels before 5.3 have no pidfd; there the check and kill(2)
// leave a window of microseconds.
//
// The start time read with the listing may already be a newer process's,
// should the holder have exited and its PID been reused while the listing
// went on; so the process the pidfd names must also hold one of inodes, the
// port's sockets, now.
func sendSignal(tb *sockets.Table, p sockets.Process, inodes []uint64, sig syscall.Signal) error {
	fd, err := unix.PidfdOpen(p.PID, 0)
	havePidfd := err == nil
	switch {
	case havePidfd:
		defer unix.Close(fd)
	case errors.Is(err, syscall.ESRCH):
		return errGone
	case errors.Is(err, syscall.ENOSYS), errors.Is(err, syscall.EPERM):
		// No pidfd in this kernel, or a seccomp filter refusing it
		// (pidfd_open itself checks no permission): kill(2) below.
	default:
		return err
	}
	if err := same(tb, p); err != nil {
		return err
	}
	switch held, err := tb.Holds(p.PID, inodes); {
	case errors.Is(err, fs.ErrNotExist):
		return errGone
	case err != nil:
		return err
	case !held:
		return ErrNotHolder
	}
	if havePidfd {
		err = unix.PidfdSendSignal(fd, sig, nil, 0)
	} else {
		err = syscall.Kill(p.PID, sig)
	}
	if errors.Is(err, syscall.ESRCH) {
		return errGone
	}
	return err
}

// same checks that p's PID still names p.
func same(tb *sockets.Table, p sockets.Process) error {
	now, err := tb.Process(p.PID)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errGone
	case err != nil:
		return err
	case now.StartTicks != p.StartTicks:
		return ErrPIDReused
	}
	return nil
}
