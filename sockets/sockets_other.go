//go:build !linux

package sockets

import (
	"context"
	"errors"
	"runtime"
)

func newLister(*Table) lister { return unsupported{} }

type unsupported struct{}

func (unsupported) list(context.Context, []request, Query) ([]Entry, error) {
	return nil, unsupported{}
}

func (unsupported) Error() string { return "listing sockets is not supported on " + runtime.GOOS }
func (unsupported) Unwrap() error { return errors.ErrUnsupported }

// Process returns an error wrapping errors.ErrUnsupported.
func (t *Table) Process(pid int) (Process, error) { return Process{}, unsupported{} }

// Holds returns an error wrapping errors.ErrUnsupported.
func (t *Table) Holds(pid int, inodes []uint64) (bool, error) { return false, unsupported{} }
