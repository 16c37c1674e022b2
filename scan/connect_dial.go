//go:build !linux

package scan

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"time"
)

// dialConnect is the connect engine where there is no epoll: a goroutine
// per connect in flight, each a net.Dialer dial that Done cancels.
type dialConnect struct {
	ctx      context.Context
	replies  chan<- Reply
	inflight inflight[*dialAttempt]
}

type dialAttempt struct{ cancel context.CancelFunc }

// Close cancels the dial.
func (a *dialAttempt) Close() error {
	a.cancel()
	return nil
}

// heldSpares is zero: no spare sockets are kept here.
func heldSpares() int { return 0 }

func newConnectImpl(limit int) connectImpl {
	d := &dialConnect{}
	d.inflight.init(min(limit, 1<<16))
	return d
}

func (d *dialConnect) start(ctx context.Context, replies chan<- Reply) error {
	d.ctx, d.replies = ctx, replies
	return nil
}

func (d *dialConnect) send(p Probe, attempt int) error {
	ctx, cancel := context.WithCancel(d.ctx)
	a := &dialAttempt{cancel: cancel}
	d.inflight.put(p, a)
	d.inflight.wg.Go(func() {
		defer cancel()
		st, reason, ok := dial(ctx, p)
		d.inflight.forget(p, a)
		if !ok || ctx.Err() != nil {
			return
		}
		r := connectReply(p, attempt, st, reason)
		r.At = time.Now()
		select {
		case d.replies <- r:
		case <-d.ctx.Done():
		}
	})
	return nil
}

// dial connects once; ok is false for silence.
func dial(ctx context.Context, p Probe) (st State, reason string, ok bool) {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", netip.AddrPortFrom(p.IP, p.Port).String())
	if err == nil {
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // reset, not FIN: no TIME_WAIT
		}
		conn.Close()
		return Open, "syn-ack", true
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return 0, "", false
	}
	switch {
	case slices.Contains(errReset, errno):
		// The connection was made, then reset: the port answered the SYN.
		return Open, "syn-ack", true
	case slices.Contains(errRefused, errno):
		return Closed, "conn-refused", true
	case slices.Contains(errUnreach, errno):
		return Filtered, "host-unreach", true
	case slices.Contains(errProhibited, errno):
		return Filtered, "admin-prohibited", true
	}
	return 0, "", false
}

func (d *dialConnect) done(p Probe) { d.inflight.done(p) }

func (d *dialConnect) close() error {
	d.inflight.close()
	return nil
}
