package scan

import (
	"syscall"

	"golang.org/x/sys/windows"
)

var (
	errReset      = []syscall.Errno{windows.WSAECONNRESET}
	errRefused    = []syscall.Errno{windows.WSAECONNREFUSED}
	errUnreach    = []syscall.Errno{windows.WSAEHOSTUNREACH, windows.WSAENETUNREACH}
	errProhibited = []syscall.Errno{windows.WSAEACCES}
)
