//go:build !linux

package guard

import (
	"context"
	"errors"
	"runtime"
)

// unsupported is the error of live capture off Linux.
type unsupported struct{}

func (unsupported) Error() string { return "live capture is not supported on " + runtime.GOOS }
func (unsupported) Unwrap() error { return errors.ErrUnsupported }

// Open fails off Linux: live capture needs AF_PACKET. Replay works.
func (g *Guard) Open(ifaces []int, includeLo bool) (*Sensor, error) { return nil, unsupported{} }

// Sensor is a live capture feeding a Guard (Linux only).
type Sensor struct{}

// Run fails off Linux.
func (s *Sensor) Run(ctx context.Context) error { return unsupported{} }

// SetInterfaces does nothing off Linux.
func (s *Sensor) SetInterfaces(ifaces []int, includeLo bool) {}

// Close does nothing off Linux.
func (s *Sensor) Close() error { return nil }
