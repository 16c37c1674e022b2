package forward

import (
	"net"
	"sync"
	"time"
)

// idleWatch decides when a TCP connection has been idle — no bytes in
// either direction — for its idle timeout. One timer per connection wakes
// it, not the directions' reads: a direction may be done (half-closed) or
// stuck writing to a peer that stopped reading, and the connection must
// still end. The timer runs its check in a goroutine of its own only when
// it fires, so a connection that ends before its idle timeout costs a
// timer, not a goroutine.
type idleWatch struct {
	idle           time.Duration
	client, target *net.TCPConn
	activity       // how quiet a socket has been: per platform

	mu      sync.Mutex
	timer   *time.Timer
	expire  func()
	stopped bool
}

func newIdleWatch(client, target *net.TCPConn, idle time.Duration) *idleWatch {
	return &idleWatch{idle: idle, client: client, target: target, activity: newActivity()}
}

// check reports whether the connection has been quiet for the whole idle
// timeout, and if not, the read deadline to wait for next.
func (w *idleWatch) check() (expired bool, next time.Time) {
	quiet := min(w.quietFor(w.client), w.quietFor(w.target))
	if quiet >= w.idle {
		return true, time.Time{}
	}
	return false, time.Now().Add(w.idle - quiet)
}

// start arms the watch: expire is called once, from the timer's goroutine,
// if the connection is found idle for the whole timeout before stop.
func (w *idleWatch) start(expire func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.expire = expire
	w.timer = time.AfterFunc(w.idle, w.fire)
}

// fire checks the connection each time it could have become idle.
func (w *idleWatch) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	expired, next := w.check()
	if expired {
		w.stopped = true
		w.expire()
		return
	}
	w.timer.Reset(time.Until(next))
}

// stop disarms the watch. Once it returns, expire is not running and will
// not be called.
func (w *idleWatch) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	w.timer.Stop()
}
