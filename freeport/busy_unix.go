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
