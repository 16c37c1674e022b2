package forward

import (
	"net"
	"time"
)

// idleWatch decides when a TCP connection has been idle — no bytes in
// either direction — for its idle timeout. One timer per connection wakes
// it, not the directions' reads: a direction may be done (half-closed) or
// stuck writing to a peer that stopped reading, and the connection must
// still end.
type idleWatch struct {
	idle           time.Duration
	client, target *net.TCPConn
	activity       // how quiet a socket has been: per platform
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

// run checks the connection each time it could have become idle, until
// stop; when it has been, it calls expire once and returns.
func (w *idleWatch) run(stop <-chan struct{}, expire func()) {
	t := time.NewTimer(w.idle)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		expired, next := w.check()
		if expired {
			expire()
			return
		}
		t.Reset(time.Until(next))
	}
}
