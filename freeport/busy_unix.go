//go:build !windows

package freeport

import (
	"errors"
	"syscall"
)

// busy reports whether a bind failed because the port is not ours to take:
// in use, or privileged.
func busy(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EACCES)
}

// strictBind is a ListenConfig.Control that turns off the SO_REUSEADDR Go
// sets on TCP listeners before binding: with it, a port that still has
// connections in TIME_WAIT binds, and would be called free though a
// program that does not set the option (most outside Go) cannot bind it.
func strictBind() func(network, address string, c syscall.RawConn) error { return noReuseAddr }

func noReuseAddr(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 0)
	})
	if err != nil {
		return err
	}
	return serr
}
