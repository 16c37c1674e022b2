//go:build !linux

package scan

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// dialConnect is the connect engine where there is no epoll: a goroutine
// per connect in flight, each a net.Dialer dial that Done cancels.
type dialConnect struct {
	ctx     context.Context
	replies chan<- Reply
	wg      sync.WaitGroup

	mu       sync.Mutex
	inflight map[Probe]*dialAttempt
}

type dialAttempt struct{ cancel context.CancelFunc }

func newConnectImpl(limit int) connectImpl {
	return &dialConnect{inflight: make(map[Probe]*dialAttempt, min(limit, 1<<16))}
}

func (d *dialConnect) start(ctx context.Context, replies chan<- Reply) error {
	d.ctx, d.replies = ctx, replies
	return nil
}

func (d *dialConnect) send(p Probe, attempt int) error {
	ctx, cancel := context.WithCancel(d.ctx)
	a := &dialAttempt{cancel: cancel}
	d.mu.Lock()
	d.inflight[p] = a
	d.mu.Unlock()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer cancel()
		st, reason, ok := dial(ctx, p)
		d.mu.Lock()
		if d.inflight[p] == a {
			delete(d.inflight, p)
		}
		d.mu.Unlock()
		if !ok || ctx.Err() != nil {
			return
		}
		r := connectReply(p, attempt, st, reason)
		r.At = time.Now()
		select {
		case d.replies <- r:
		case <-d.ctx.Done():
		}
	}()
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
	case isErrno(errno, errRefused):
		return Closed, "conn-refused", true
	case isErrno(errno, errUnreach):
		return Filtered, "host-unreach", true
	case isErrno(errno, errProhibited):
		return Filtered, "admin-prohibited", true
	}
	return 0, "", false
}

func isErrno(e syscall.Errno, set []syscall.Errno) bool {
	for _, s := range set {
		if e == s {
			return true
		}
	}
	return false
}

func (d *dialConnect) done(p Probe) {
	d.mu.Lock()
	a := d.inflight[p]
	delete(d.inflight, p)
	d.mu.Unlock()
	if a != nil {
		a.cancel()
	}
}

func (d *dialConnect) close() error {
	d.mu.Lock()
	for p, a := range d.inflight {
		a.cancel()
		delete(d.inflight, p)
	}
	d.mu.Unlock()
	d.wg.Wait()
	return nil
}
