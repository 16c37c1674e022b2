//go:build unix

package cli

import (
	"context"
	"errors"
	"os"
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

// TestStopSignal: a server whose context ended names the signal its own
// channel gets a moment later, and none when none comes.
func TestStopSignal(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	go func() {
		time.Sleep(10 * time.Millisecond)
		sigs <- os.Interrupt
	}()
	if got := stopSignal(sigs); got != os.Interrupt {
		t.Errorf("stopSignal = %v, want interrupt", got)
	}
	if got := stopSignal(sigs); got != nil {
		t.Errorf("stopSignal with no signal = %v, want nil", got)
	}
	if got := stopAttrs(nil, "k", 1); len(got) != 2 {
		t.Errorf("stopAttrs(nil) = %v", got)
	}
	if got := stopAttrs(syscall.SIGTERM); len(got) != 2 || got[1] != "terminated" {
		t.Errorf("stopAttrs(SIGTERM) = %v", got)
	}
}
