package cli

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// InterruptContext returns a context cancelled when the process gets
// SIGINT or SIGTERM, and the function that releases it.
//
// The signal handling is set up when something first waits on the context
// (its Done, or a context derived from it), not before. Setting it up
// starts a goroutine that keeps an OS thread blocked for signals, and the
// runtime then starts more: three threads, a third of a short command's
// start-up on a machine where page faults and thread starts are dear
// (issue 11), for commands such as lookup that never wait on anything.
// Until then SIGINT and SIGTERM end the process as they end any other
// (the shell sees 130 or 143); nothing has been started that an interrupt
// would have to clean up, since every command that dials, waits, writes a
// resume file or serves waits on its context first.
func InterruptContext(parent context.Context) (context.Context, func()) {
	c := &interruptCtx{parent: parent}
	return c, c.stop
}

type interruptCtx struct {
	parent context.Context
	once   sync.Once
	mu     sync.Mutex
	ctx    context.Context // nil until the first Done
	cancel context.CancelFunc
	done   bool // stop was called
}

// watch sets the signal handling up, once.
func (c *interruptCtx) watch() context.Context {
	c.once.Do(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.done {
			// Released before anyone waited: a context that is already
			// over, as stop leaves NotifyContext's.
			ctx, cancel := context.WithCancel(c.parent)
			cancel()
			c.ctx = ctx
			return
		}
		c.ctx, c.cancel = signal.NotifyContext(c.parent, os.Interrupt, syscall.SIGTERM)
	})
	return c.ctx
}

func (c *interruptCtx) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	if c.cancel != nil {
		c.cancel()
	}
}

func (c *interruptCtx) Done() <-chan struct{} { return c.watch().Done() }

// Err is nil until something has waited: before that, an interrupt would
// have ended the process, so none has come.
func (c *interruptCtx) Err() error {
	ctx, done := c.watched()
	switch {
	case ctx != nil:
		return ctx.Err()
	case done:
		return context.Canceled
	}
	return c.parent.Err()
}

// Value answers from the watching context once there is one, so that a
// context derived from this one is cancelled with it directly, without a
// goroutine of its own.
func (c *interruptCtx) Value(key any) any {
	if ctx, _ := c.watched(); ctx != nil {
		return ctx.Value(key)
	}
	return c.parent.Value(key)
}

func (c *interruptCtx) Deadline() (time.Time, bool) { return c.parent.Deadline() }

func (c *interruptCtx) watched() (context.Context, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ctx, c.done
}

// stopSignal is the signal that ended a server's context, read from the
// server's own channel (which hears SIGINT and SIGTERM too), or nil when
// none comes: the context can end a moment before the channel gets the
// signal that ended it, and a server names the signal it stops for.
func stopSignal(sigs <-chan os.Signal) os.Signal {
	select {
	case s := <-sigs:
		return s
	case <-time.After(200 * time.Millisecond):
		return nil
	}
}

// stopAttrs are a "stopping" log line's attributes: the signal, where one
// came, then attrs.
func stopAttrs(sig os.Signal, attrs ...any) []any {
	if sig == nil {
		return attrs
	}
	return append([]any{"signal", sig.String()}, attrs...)
}
