package forward

import (
	"container/list"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// How a UDP session ended.
const (
	endEvicted = "evicted" // max_sessions reached: the longest-idle session made room
	endRefused = "refused" // the target answered with ICMP port unreachable
	endReload  = "reload"  // a reload denied the client or dropped the target
)

// maxDatagram is the largest UDP payload over IPv4 or IPv6 without jumbograms.
const maxDatagram = 65535

// udpRunner relays datagrams: one session per client address, each with
// its own connected socket to a target, so replies need no lookup and a
// target sees one steady source per client.
type udpRunner struct {
	f       *Forwarder
	conn    *net.UDPConn
	dstInfo bool // the listener learns each datagram's destination address
	state   atomic.Pointer[ruleState]
	bufs    sync.Pool // *[]byte of maxDatagram: held only while a datagram is in hand

	mu       sync.Mutex
	sessions map[netip.AddrPort]*udpSession
	lru      list.List // of *udpSession, most recently active first
	wg       sync.WaitGroup
	served   chan struct{}
}

type udpSession struct {
	u      *udpRunner
	st     *ruleState
	client netip.AddrPort
	local  netip.Addr // the address the client wrote to, replies' source; zero: the socket's
	target string
	ti     int
	up     *net.UDPConn
	elem   *list.Element
	start  time.Time

	last                 atomic.Int64 // unix nanoseconds of the last datagram either way
	fromClient, toClient atomic.Int64
	end                  atomic.Pointer[string]
}

func newUDPRunner(f *Forwarder, r Rule) (*udpRunner, error) {
	pc, err := net.ListenPacket("udp", r.Listen)
	if err != nil {
		return nil, err
	}
	u := &udpRunner{f: f, conn: pc.(*net.UDPConn), sessions: map[netip.AddrPort]*udpSession{},
		served: make(chan struct{})}
	u.bufs.New = func() any { b := make([]byte, maxDatagram); return &b }
	if u.conn.LocalAddr().(*net.UDPAddr).IP.IsUnspecified() {
		// A wildcard listener must answer from the address each client
		// wrote to, not the one the route prefers: a connected client
		// (most resolvers) drops a reply from any other.
		u.dstInfo = enableDstInfo(u.conn)
	}
	return u, nil
}

func (u *udpRunner) addr() net.Addr { return u.conn.LocalAddr() }

func (u *udpRunner) current() *ruleState { return u.state.Load() }

// update makes r's settings apply to new sessions. A session is open-ended
// while its client keeps sending, so the ones the new rule would not start
// — a client now denied, a target no longer listed — end here.
func (u *udpRunner) update(r Rule) {
	old := u.state.Load()
	st := u.f.nextState(old, r)
	u.state.Store(st)
	if old == nil || st == old {
		return
	}
	var stale []*udpSession
	u.mu.Lock()
	for _, s := range u.sessions {
		if !r.permits(s.client.Addr()) || !slices.Contains(r.Targets, s.target) {
			stale = append(stale, s)
		}
	}
	u.mu.Unlock()
	for _, s := range stale {
		s.close(endReload)
	}
}

// udpBatch is how many datagrams one system call reads or writes at most,
// where the platform can batch them (recvmmsg and sendmmsg on Linux).
const udpBatch = 16

// datagram is a datagram in hand: its bytes, (*bp)[:n], in a pooled buffer,
// and who sent it.
type datagram struct {
	bp   *[]byte
	n    int
	from netip.AddrPort
	to   netip.Addr // the destination, where the listener learns it
}

func (d *datagram) bytes() []byte { return (*d.bp)[:d.n] }

// release puts the datagrams' buffers back in the pool.
func (u *udpRunner) release(dgs []datagram) {
	for i := range dgs {
		if dgs[i].bp != nil {
			u.bufs.Put(dgs[i].bp)
			dgs[i].bp = nil
		}
	}
}

func (u *udpRunner) serve() {
	defer close(u.served)
	var io batchIO
	dgs := make([]datagram, udpBatch)
	for {
		n, err := u.readClients(&io, dgs)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // a transient receive error concerns one datagram only
		}
		// A client's datagrams in a row go to its session together.
		for i := 0; i < n; {
			j := i + 1
			for j < n && dgs[j].from == dgs[i].from {
				j++
			}
			u.forwardUp(&io, dgs[i:j])
			u.release(dgs[i:j])
			i = j
		}
	}
}

// forwardUp writes a client's datagrams to its session's target.
func (u *udpRunner) forwardUp(io *batchIO, dgs []datagram) {
	s := u.session(dgs[0].from, dgs[0].to)
	if s == nil {
		return
	}
	s.touch()
	sent, err := s.writeUp(io, dgs)
	if errors.Is(err, net.ErrClosed) {
		// The session ended between the lookup and the write (idle,
		// evicted): the rest start the next one.
		s.count(dgs[:sent], &s.fromClient, &s.st.m.fromClient)
		dgs = dgs[sent:]
		if s = u.session(dgs[0].from, dgs[0].to); s == nil {
			return
		}
		sent, err = s.writeUp(io, dgs)
	}
	s.count(dgs[:sent], &s.fromClient, &s.st.m.fromClient)
	if err != nil {
		s.fail(err)
	}
}

// count adds the datagrams' bytes to a session's count and a metric.
func (s *udpSession) count(dgs []datagram, session, metric *atomic.Int64) {
	var n int64
	for i := range dgs {
		n += int64(dgs[i].n)
	}
	if n > 0 {
		session.Add(n)
		metric.Add(n)
	}
}

// session returns the client's session, starting one if the rule lets it.
func (u *udpRunner) session(from netip.AddrPort, to netip.Addr) *udpSession {
	u.mu.Lock()
	if s := u.sessions[from]; s != nil {
		u.lru.MoveToFront(s.elem)
		u.mu.Unlock()
		return s
	}
	u.mu.Unlock()

	st := u.state.Load()
	client := netip.AddrPortFrom(plainAddr(from.Addr()), from.Port())
	if !st.rule.permits(client.Addr()) {
		st.m.denied[deniedACL].Add(1)
		return nil
	}
	s := &udpSession{u: u, st: st, client: from, local: to, start: time.Now()}
	if err := s.dial(); err != nil {
		u.f.log.Info("session end", "rule", st.rule.Name, "protocol", "udp", "client", client.String(),
			"end", endDialFailed, "err", err.Error())
		return nil
	}
	var evict *udpSession
	u.mu.Lock()
	if now := u.state.Load(); now != st && (!now.rule.permits(client.Addr()) || !slices.Contains(now.rule.Targets, s.target)) {
		// A reload came while the session dialled: its scan of the
		// sessions missed this one, which the new rule would not start.
		u.mu.Unlock()
		s.up.Close()
		return nil
	}
	if len(u.sessions) >= st.rule.MaxSessions {
		if back := u.lru.Back(); back != nil {
			evict = back.Value.(*udpSession)
			u.removeLocked(evict)
		}
	}
	s.elem = u.lru.PushFront(s)
	u.sessions[from] = s
	u.wg.Add(1)
	u.mu.Unlock()
	if evict != nil {
		st.m.evicted.Add(1)
		evict.close(endEvicted)
	}
	st.m.sessions.Add(1)
	st.m.sessionsTotal.Add(1)
	go func() {
		defer u.wg.Done()
		s.relayReplies()
	}()
	return s
}

func (u *udpRunner) removeLocked(s *udpSession) {
	if u.sessions[s.client] == s {
		delete(u.sessions, s.client)
		u.lru.Remove(s.elem)
	}
}

func (s *udpSession) dial() error {
	var errs []error
	for _, i := range s.st.targets.order(time.Now()) {
		addr := s.st.targets.addrs[i]
		// On the receive loop: a host name's lookup holds every session
		// up, so it gets the rule's connect timeout.
		d := net.Dialer{Timeout: s.st.rule.ConnectTimeout}
		c, err := d.Dial("udp", addr)
		if err == nil {
			s.up, s.target, s.ti = c.(*net.UDPConn), addr, i
			s.u.f.gotResources()
			return nil
		}
		if localExhaustion(err) {
			// Our problem, not the target's: no other target would fare
			// better.
			s.u.f.outOfResources(opDial, s.st.rule.Name, err)
			return err
		}
		s.st.m.dialError(addr)
		s.st.targets.failed(i, time.Now())
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (s *udpSession) touch() { s.last.Store(time.Now().UnixNano()) }

// fail ends the session after an error on its socket; a refusal marks the
// target down, so the client's next datagram starts a session elsewhere.
func (s *udpSession) fail(err error) {
	end := endError
	if errors.Is(err, syscall.ECONNREFUSED) {
		end = endRefused
		s.st.m.dialError(s.target)
		if backoff, marked := s.st.targets.failed(s.ti, time.Now()); marked {
			s.u.f.log.Warn("target down", "rule", s.st.rule.Name, "target", s.target, "retry_in_ms", backoff.Milliseconds(), "err", err)
		}
	}
	s.close(end)
}

// close records why the session ends (the first reason wins), unlists it
// so the client's next datagram starts a new one, and closes its socket,
// which ends relayReplies.
func (s *udpSession) close(end string) {
	s.end.CompareAndSwap(nil, &end)
	s.u.mu.Lock()
	s.u.removeLocked(s)
	s.u.mu.Unlock()
	s.up.Close()
}

func (s *udpSession) relayReplies() {
	defer s.finish()
	idle := s.st.rule.IdleTimeout
	if idle > 0 { // NoLimit: the session lasts until max_sessions evicts it
		s.up.SetReadDeadline(time.Now().Add(idle))
	}
	answered := false
	var io batchIO
	dgs := make([]datagram, udpBatch)
	for {
		n, err := s.readReplies(&io, dgs)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				quiet := time.Duration(time.Now().UnixNano() - s.last.Load())
				if quiet >= idle {
					s.close(endIdle)
					return
				}
				s.up.SetReadDeadline(time.Now().Add(idle - quiet))
				continue
			}
			if !errors.Is(err, net.ErrClosed) {
				s.fail(err)
			}
			return
		}
		s.touch()
		if !answered {
			answered = true
			if s.st.targets.succeeded(s.ti) {
				s.u.f.log.Info("target up", "rule", s.st.rule.Name, "target", s.target)
			}
		}
		// A reply makes the session as recent as a request does: eviction
		// takes the one quiet longest both ways.
		s.u.mu.Lock()
		if s.u.sessions[s.client] == s {
			s.u.lru.MoveToFront(s.elem)
		}
		s.u.mu.Unlock()
		sent, _ := s.u.writeClient(&io, s.client, s.local, dgs[:n])
		s.count(dgs[:sent], &s.toClient, &s.st.m.toClient)
		s.u.release(dgs[:n])
	}
}

// finish closes the session and writes its log line.
func (s *udpSession) finish() {
	s.close(endClosed)
	s.st.m.sessions.Add(-1)
	end := endClosed
	if e := s.end.Load(); e != nil {
		end = *e
	}
	s.u.f.log.Info("session end", "rule", s.st.rule.Name, "protocol", "udp",
		"client", netip.AddrPortFrom(plainAddr(s.client.Addr()), s.client.Port()).String(), "target", s.target,
		"bytes_from_client", s.fromClient.Load(), "bytes_to_client", s.toClient.Load(),
		"duration_ms", millis(time.Since(s.start)), "end", end)
}

func (u *udpRunner) stop() {
	u.conn.Close()
}

// drain ends every session: a UDP rule has no connections to finish, and
// replies could not reach clients through a closed listener anyway.
func (u *udpRunner) drain(context.Context) {
	<-u.served // no session starts after this
	u.mu.Lock()
	all := make([]*udpSession, 0, len(u.sessions))
	for _, s := range u.sessions {
		all = append(all, s)
	}
	u.mu.Unlock()
	for _, s := range all {
		s.close(endShutdown)
	}
	u.wg.Wait()
}
