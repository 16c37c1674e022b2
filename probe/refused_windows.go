package probe

import (
	"errors"

	"golang.org/x/sys/windows"
)

// refused matches Winsock's code: syscall.ECONNREFUSED on Windows is an
// invented value that no socket call returns.
func refused(err error) bool { return errors.Is(err, windows.WSAECONNREFUSED) }
