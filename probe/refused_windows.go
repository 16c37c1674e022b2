package probe

import (
	"errors"

	"golang.org/x/sys/windows"
)

// refused matches Winsock's code: syscall.ECONNREFUSED on Windows is an
// invented value that no socket call returns.
// A reset is a refusal too when it ends a connect (the listener closed with
// the connection in its queue).
func refused(err error) bool {
	return errors.Is(err, windows.WSAECONNREFUSED) || errors.Is(err, windows.WSAECONNRESET)
}
