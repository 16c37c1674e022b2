package probe

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// DefaultInterval is the pause between attempts of a Wait whose options name
// none.
const DefaultInterval = 250 * time.Millisecond

// defaultConcurrency bounds the attempts a Wait runs at once when its options
// name no bound. Each attempt may hold up to maxDials sockets.
const defaultConcurrency = 16

// WaitOptions tune a Wait.
type WaitOptions struct {
	// Check tunes each attempt. Its Timeout bounds one attempt; zero means
	// DefaultTimeout: long enough for the kernel's retransmission of a lost
	// SYN (after 1 s) and for a health endpoint that takes a second.
	Check CheckOptions
	// Interval is the pause after an attempt that failed; zero means
	// DefaultInterval.
	Interval time.Duration
	// Timeout bounds the whole wait, on top of ctx's deadline; zero means
	// ctx alone.
	Timeout time.Duration
	// Closed waits for every target to stop answering instead: refused,
	// unresolvable or silent. A target that still connects (even to answer
	// HTTP with a wrong status) is not done.
	Closed bool
	// Concurrency bounds the attempts in flight across targets; zero means
	// 16.
	Concurrency int
}

// WaitError is a wait that ended before every target was done.
type WaitError struct {
	// NotReady holds the last result of each target not done, in the order
	// the targets were given.
	NotReady []Result
	Closed   bool  // the wait was for targets to close
	Err      error // why it ended: ctx's error, context.DeadlineExceeded on timeout
}

func (e *WaitError) Error() string {
	var b strings.Builder
	what := "ready"
	if e.Closed {
		what = "closed"
	}
	fmt.Fprintf(&b, "wait: %d target(s) not %s (%v)", len(e.NotReady), what, e.Err)
	for i, r := range e.NotReady {
		sep := "; "
		if i == 0 {
			sep = ": "
		}
		b.WriteString(sep + r.String())
	}
	return b.String()
}

func (e *WaitError) Unwrap() error { return e.Err }

// Wait waits with the zero Prober.
func Wait(ctx context.Context, targets []Target, opts WaitOptions) ([]Result, error) {
	return new(Prober).Wait(ctx, targets, opts)
}

// Wait checks every target, all in parallel, again and again until each one
// is open (or, with opts.Closed, not answering); host names are resolved
// afresh on every attempt, as a starting service's DNS record may appear
// late. It returns the last result of each target, in order. If ctx ends or
// opts.Timeout passes first, the error is a *WaitError naming the targets not
// done and why; errors.Is(err, context.DeadlineExceeded) tells a timeout.
func (p *Prober) Wait(ctx context.Context, targets []Target, opts WaitOptions) ([]Result, error) {
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	interval := opts.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	check := opts.Check
	if check.Timeout <= 0 {
		check.Timeout = DefaultTimeout
	}
	slots := opts.Concurrency
	if slots <= 0 {
		slots = defaultConcurrency
	}
	sem := make(chan struct{}, slots)

	results := make([]Result, len(targets))
	done := make([]bool, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			results[i], done[i] = p.waitOne(ctx, t, check, interval, opts.Closed, sem)
		})
	}
	wg.Wait()

	var notReady []Result
	for i, r := range results {
		if !done[i] {
			notReady = append(notReady, r)
		}
	}
	if notReady != nil {
		err := ctx.Err()
		if err == nil { // cannot happen: a target is given up only when ctx ends
			err = context.Canceled
		}
		return results, &WaitError{NotReady: notReady, Closed: opts.Closed, Err: err}
	}
	return results, nil
}

// ended tells whether ctx has ended, or its deadline has passed: a dial
// bounded by the deadline fails with "i/o timeout" a moment before the
// context's own timer marks it done.
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// waitOne checks t until it is done or ctx ends, and returns the result that
// best says where it stands.
func (p *Prober) waitOne(ctx context.Context, t Target, opts CheckOptions, interval time.Duration, closed bool, sem chan struct{}) (Result, bool) {
	last := Result{Target: t, Status: Error, Err: errors.New("not checked before the wait ended")}
	tried := false
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return last, false
		case <-timer.C:
		}
		select {
		case <-ctx.Done():
			return last, false
		case sem <- struct{}{}:
		}
		r := p.Check(ctx, t, opts)
		<-sem
		cut := ended(ctx)
		if r.Status == Open && !closed || closed && !r.Connected && !cut {
			// (A connect that failed because the wait ended says nothing
			// about the target being closed.)
			return r, true
		}
		// An attempt cut short by the end of the wait says only that the
		// wait ended; the one before it says why the target was not ready.
		if !cut || !tried {
			last, tried = r, true
		}
		timer.Reset(interval)
	}
}
