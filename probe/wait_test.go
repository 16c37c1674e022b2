package probe_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portkit/portkit/probe"
)

// after runs f after d in a goroutine the test waits for.
func after(t *testing.T, d time.Duration, f func()) {
	var wg sync.WaitGroup
	wg.Go(func() {
		time.Sleep(d)
		f()
	})
	t.Cleanup(wg.Wait)
}

func TestWaitAppears(t *testing.T) {
	addr := closedAddr(t)
	after(t, 300*time.Millisecond, func() {
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			t.Errorf("listen again on %s: %v", addr, err)
			return
		}
		t.Cleanup(func() { l.Close() })
	})
	start := time.Now()
	rs, err := probe.Wait(t.Context(), []probe.Target{target(t, addr)}, probe.WaitOptions{Interval: 50 * time.Millisecond, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Status != probe.Open {
		t.Errorf("results %v, want one open", rs)
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Errorf("ready after %v, before the listener appeared", el)
	}
}

func TestWaitTimeout(t *testing.T) {
	open := listen(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	targets := []probe.Target{
		target(t, closedAddr(t)),
		target(t, open.Addr().String()),
		target(t, "db.invalid:5432"),
		target(t, "127.0.0.1:9"),
		target(t, srv.URL+"/ready"),
	}
	p := probe.Prober{Resolver: stubResolver{}, Dial: silentDial("127.0.0.1:9")}
	start := time.Now()
	rs, err := p.Wait(t.Context(), targets, probe.WaitOptions{Interval: 50 * time.Millisecond, Timeout: 700 * time.Millisecond})
	if el := time.Since(start); el < 700*time.Millisecond || el > 3*time.Second {
		t.Errorf("Wait took %v, want about its 700ms timeout", el)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline", err)
	}
	var we *probe.WaitError
	if !errors.As(err, &we) {
		t.Fatalf("err = %#v, want a *WaitError", err)
	}
	if len(rs) != len(targets) || rs[1].Status != probe.Open {
		t.Errorf("results %v: want one per target, the listener open", rs)
	}
	want := []struct {
		target  probe.Target
		status  probe.Status
		because string
	}{
		{targets[0], probe.Closed, "refused"},
		{targets[2], probe.Unresolvable, "no such host"},
		{targets[3], probe.Filtered, "deadline"},
		{targets[4], probe.Error, "HTTP status 503"},
	}
	if len(we.NotReady) != len(want) {
		t.Fatalf("not ready: %v; want %d targets", we.NotReady, len(want))
	}
	for i, w := range want {
		r := we.NotReady[i]
		if r.Target != w.target || r.Status != w.status || r.Err == nil || !strings.Contains(r.Err.Error(), w.because) {
			t.Errorf("not ready[%d] = %v; want %v %v because %s", i, r, w.target, w.status, w.because)
		}
		if !strings.Contains(err.Error(), w.target.String()) {
			t.Errorf("message %q does not name %v", err, w.target)
		}
	}
}

func TestWaitClosed(t *testing.T) {
	l := listen(t)
	after(t, 300*time.Millisecond, func() { l.Close() })
	rs, err := probe.Wait(t.Context(), []probe.Target{target(t, l.Addr().String())}, probe.WaitOptions{Closed: true, Interval: 50 * time.Millisecond, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Status != probe.Closed {
		t.Errorf("result %v, want closed", rs[0])
	}
}

func TestWaitClosedTimeout(t *testing.T) {
	l := listen(t)
	// Each attempt may take longer than the whole wait: on a loaded machine
	// a loopback connect can be slower than the default four intervals, and
	// a timed-out attempt counts as silent, i.e. closed.
	_, err := probe.Wait(t.Context(), []probe.Target{target(t, l.Addr().String())}, probe.WaitOptions{
		Closed: true, Interval: 50 * time.Millisecond, Timeout: 300 * time.Millisecond,
		Check: probe.CheckOptions{Timeout: 10 * time.Second},
	})
	var we *probe.WaitError
	if !errors.As(err, &we) || !errors.Is(err, context.DeadlineExceeded) || !we.Closed || we.NotReady[0].Status != probe.Open {
		t.Fatalf("err = %v, want a timeout with the target still open", err)
	}
}

func TestWaitCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	after(t, 100*time.Millisecond, cancel)
	_, err := probe.Wait(ctx, []probe.Target{target(t, closedAddr(t))}, probe.WaitOptions{Interval: 20 * time.Millisecond})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want canceled", err)
	}
}

func TestWaitNothing(t *testing.T) {
	if rs, err := probe.Wait(t.Context(), nil, probe.WaitOptions{}); err != nil || len(rs) != 0 {
		t.Errorf("Wait on no target: %v, %v", rs, err)
	}
}

// TestWaitLeavesNoGoroutine runs a wait that ends on its timeout with
// attempts in flight, and checks that every goroutine it started is gone.
func TestWaitLeavesNoGoroutine(t *testing.T) {
	p := probe.Prober{Resolver: stubResolver{}, Dial: silentDial("127.0.0.1:9")}
	var targets []probe.Target
	for range 40 { // more than the concurrency bound
		targets = append(targets, target(t, "127.0.0.1:9"), target(t, "gone.invalid:1"), target(t, closedAddr(t)))
	}
	before := runtime.NumGoroutine()
	_, err := p.Wait(t.Context(), targets, probe.WaitOptions{Interval: 10 * time.Millisecond, Timeout: 200 * time.Millisecond, Concurrency: 4})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline", err)
	}
	// Wait has returned, so its own goroutines are gone already; allow the
	// runtime a moment for timers' and finalizers'.
	for deadline := time.Now().Add(2 * time.Second); runtime.NumGoroutine() > before; {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Wait, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lateCtx is a context whose deadline has passed before its own timer
// marks it done, as a real one's may for a moment: a dial bounded by the
// deadline fails with "i/o timeout" while Err is still nil.
type lateCtx struct {
	context.Context
	passed atomic.Bool
	done   chan struct{}
}

func (c *lateCtx) Deadline() (time.Time, bool) {
	if c.passed.Load() {
		return time.Now().Add(-time.Millisecond), true
	}
	return time.Now().Add(time.Hour), true
}
func (c *lateCtx) Done() <-chan struct{} { return c.done }
func (c *lateCtx) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// An attempt cut short by the end of the wait is not the target's answer:
// a closed port stays closed in the result, never "filtered".
func TestWaitCutAttemptKeepsLastAnswer(t *testing.T) {
	ctx := &lateCtx{Context: context.Background(), done: make(chan struct{})}
	var calls atomic.Int32
	p := probe.Prober{Resolver: stubResolver{}, Dial: func(context.Context, string, string) (net.Conn, error) {
		if calls.Add(1) == 1 {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
		}
		// The deadline passes; the context's timer fires a moment later.
		if !ctx.passed.Swap(true) {
			after(t, 50*time.Millisecond, func() { close(ctx.done) })
		}
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}
	}}
	target, err := probe.ParseTarget("127.0.0.1:9")
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Wait(ctx, []probe.Target{target}, probe.WaitOptions{Interval: time.Millisecond})
	if err == nil {
		t.Fatal("Wait of a closed port: no error")
	}
	if calls.Load() < 2 || res[0].Status != probe.Closed {
		t.Errorf("after %d attempts the result is %v (%v), want closed: the cut attempt is not an answer", calls.Load(), res[0].Status, res[0].Err)
	}
}
