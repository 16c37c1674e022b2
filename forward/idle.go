package forward

import (
	"net"
	"time"
)

// idleWatch decides when a TCP connection has been idle — no bytes in
// either direction — for its idle timeout. Each direction's read deadline
// wakes it; check asks how long both sockets have been quiet.
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
