//go:build !linux && !windows

package scan

import "syscall"

var (
	errReset      = []syscall.Errno{syscall.ECONNRESET}
	errRefused    = []syscall.Errno{syscall.ECONNREFUSED}
	errUnreach    = []syscall.Errno{syscall.EHOSTUNREACH, syscall.ENETUNREACH}
	errProhibited = []syscall.Errno{syscall.EACCES, syscall.EPERM}
)
