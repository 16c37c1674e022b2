//go:build !linux

package firewall

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"time"

	"github.com/portkit/portkit/registry"
)

// unsupportedError: portkit's firewall is nftables, which only Linux has.
type unsupportedError struct{}

func (unsupportedError) Error() string        { return "not supported on " + runtime.GOOS }
func (unsupportedError) Is(target error) bool { return target == errors.ErrUnsupported }

func (t Table) unsupported(op string) error {
	return &Error{Op: op, Table: t.String(), Err: unsupportedError{}}
}

// Open is not supported here: it needs Linux's nftables.
func (t Table) Open(ctx context.Context, src netip.Addr, port uint16, proto registry.Proto, d time.Duration) error {
	return t.unsupported("open")
}

// Close is not supported here: it needs Linux's nftables.
func (t Table) Close(ctx context.Context, src netip.Addr, port uint16, proto registry.Proto) error {
	return t.unsupported("close")
}

// Protect is not supported here: it needs Linux's nftables.
func (t Table) Protect(ctx context.Context, port uint16, proto registry.Proto) error {
	return t.unsupported("protect")
}

// Unprotect is not supported here: it needs Linux's nftables.
func (t Table) Unprotect(ctx context.Context, port uint16, proto registry.Proto) error {
	return t.unsupported("unprotect")
}

// Block is not supported here: it needs Linux's nftables.
func (t Table) Block(ctx context.Context, src netip.Addr, d time.Duration) error {
	return t.unsupported("block")
}

// Unblock is not supported here: it needs Linux's nftables.
func (t Table) Unblock(ctx context.Context, src netip.Addr) error { return t.unsupported("unblock") }

// List is not supported here: it needs Linux's nftables.
func (t Table) List(ctx context.Context) (State, error) { return State{}, t.unsupported("list") }

// Flush is not supported here: it needs Linux's nftables.
func (t Table) Flush(ctx context.Context) (bool, error) { return false, t.unsupported("flush") }

// Status is not supported here: it needs Linux's nftables.
func (t Table) Status(ctx context.Context) (Report, error) { return Report{}, t.unsupported("status") }

// Check is not supported here: it needs Linux's nftables.
func (t Table) Check(ctx context.Context) error { return t.unsupported("check") }
