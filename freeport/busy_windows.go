package freeport

import (
	"errors"
	"syscall"

	"golang.org/x/sys/windows"
)

// busy reports whether a bind failed because the port is not ours to take:
// in use, or (WSAEACCES) inside a range Windows has excluded, as Hyper-V and
// WSL reserve whole blocks of ports.
func busy(err error) bool {
	return errors.Is(err, windows.WSAEADDRINUSE) || errors.Is(err, windows.WSAEACCES)
}

// strictBind is nil: Go sets no SO_REUSEADDR on Windows (where it would let
// two listeners share a port), so a bind there is as strict as any.
func strictBind() func(network, address string, c syscall.RawConn) error { return nil }
