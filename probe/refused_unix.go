//go:build !windows

package probe

import (
	"errors"
	"syscall"
)

// refused reports whether a connect was refused: a RST, in answer to the SYN
// or, when the listener closed with the connection in its queue, just after.
func refused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}
