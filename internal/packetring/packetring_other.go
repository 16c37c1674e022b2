//go:build !linux

package packetring

import (
	"context"
	"errors"
	"runtime"
)

// unsupported is the error of packet sockets off Linux.
type unsupported struct{}

func (unsupported) Error() string { return "packet sockets are not supported on " + runtime.GOOS }
func (unsupported) Unwrap() error { return errors.ErrUnsupported }

type ringSys struct{}

func (*ringSys) open(Config) error                  { return unsupported{} }
func (*ringSys) run(context.Context, Handler) error { return unsupported{} }
func (*ringSys) dropped() (uint64, error)           { return 0, unsupported{} }
func (*ringSys) close() error                       { return nil }
