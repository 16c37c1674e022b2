//go:build !linux

package main

import (
	"errors"
	"fmt"
	"runtime"
)

// The flood needs Linux (raw IPv4 sockets in a network namespace).
type rawSender struct{}

func newRawSender() (*rawSender, error) {
	return nil, fmt.Errorf("the flood: %w on %s", errors.ErrUnsupported, runtime.GOOS)
}

func (*rawSender) send([]byte, [4]byte) error { return errors.ErrUnsupported }
func (*rawSender) close() error               { return nil }
