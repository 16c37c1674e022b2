//go:build !linux

package rawnet

import (
	"errors"
	"net/netip"
	"runtime"
)

// unsupported is the error of raw socket operations off Linux.
type unsupported struct{}

func (unsupported) Error() string { return "raw sockets are not supported on " + runtime.GOOS }
func (unsupported) Unwrap() error { return errors.ErrUnsupported }

type senderSys struct{}

func (*senderSys) open() error                              { return unsupported{} }
func (*senderSys) send([][]byte, []netip.Addr) (int, error) { return 0, unsupported{} }
func (*senderSys) close() error                             { return nil }

type reservationSys struct{}

func (*reservationSys) reserve(uint16) (uint16, error) { return 0, unsupported{} }
func (*reservationSys) close() error                   { return nil }
