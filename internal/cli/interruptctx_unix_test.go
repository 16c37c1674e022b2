//go:build unix

package cli

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"
)

// TestInterruptContextLazy: no signal handling is set up until something
// waits on the context; once it is, SIGTERM cancels it and every context
// derived from it; released before anyone waited, it is over.
func TestInterruptContextLazy(t *testing.T) {
	ctx, stop := InterruptContext(context.Background())
	defer stop()
	ic := ctx.(*interruptCtx)
	if err := ctx.Err(); err != nil {
		t.Fatalf("Err before any wait: %v", err)
	}
	_ = ctx.Value("key")
	if w, _ := ic.watched(); w != nil {
		t.Fatal("signal handling set up by Err or Value, before anything waited")
	}

	child, cancel := context.WithCancel(ctx) // waits on ctx: sets it up
	defer cancel()
	if w, _ := ic.watched(); w == nil {
		t.Fatal("deriving a context did not set the signal handling up")
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-child.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("SIGTERM did not cancel the derived context")
	}
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Errorf("Err after SIGTERM: %v", ctx.Err())
	}

	early, stopEarly := InterruptContext(context.Background())
	stopEarly()
	if !errors.Is(early.Err(), context.Canceled) {
		t.Errorf("Err after stop: %v, want context.Canceled", early.Err())
	}
	select {
	case <-early.Done():
	default:
		t.Error("Done after stop is not closed")
	}
}
