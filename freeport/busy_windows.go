package freeport

import (
	"errors"

	"golang.org/x/sys/windows"
)

// busy reports whether a bind failed because the port is not ours to take:
// in use, or (WSAEACCES) inside a range Windows has excluded, as Hyper-V and
// WSL reserve whole blocks of ports.
func busy(err error) bool {
	return errors.Is(err, windows.WSAEADDRINUSE) || errors.Is(err, windows.WSAEACCES)
}
