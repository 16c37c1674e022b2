package forward

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portkit/portkit/forward/proxyproto"
)

// How a connection ended, the "end" field of its log line.
const (
	endClosed      = "closed"      // both sides finished
	endIdle        = "idle"        // idle_timeout
	endError       = "error"       // a read or write failed: a reset, mostly
	endDialFailed  = "dial failed" // no target answered
	endDenied      = "denied"      // allow/deny lists
	endLimit       = "limit"       // max_conns or max_conns_per_source
	endProxyHeader = "bad proxy header"
	endShutdown    = "shutdown" // closed by a drain that ran out of time
	endLoop        = "loop"     // came back to the forwarder from one of its own dials
)

type tcpRunner struct {
	f     *Forwarder
	ln    *net.TCPListener
	state atomic.Pointer[ruleState]

	ctx    context.Context // cancelled when the drain runs out: ends dials
	cancel context.CancelFunc

	mu        sync.Mutex
	conns     map[*tcpConn]struct{}
	perSource map[netip.Addr]int
	active    int
	wg        sync.WaitGroup // handlers: added to only by serve
	served    chan struct{}  // closed when serve returns; then wg only falls
}

// tcpConn is one forwarded connection, tracked so a drain can close it.
type tcpConn struct {
	client  *net.TCPConn
	rule    string // the rule's name, for the loop guard
	mu      sync.Mutex
	target  *net.TCPConn
	aborted atomic.Bool
	looped  atomic.Bool // aborted by the loop guard

	// Kept by hopGuard, under its lock: the conn whose dial this one came
	// from, and the keys it is registered under.
	via             *tcpConn
	hopKey, dialKey hopEnds
}

func (c *tcpConn) setTarget(t *net.TCPConn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.aborted.Load() {
		return false
	}
	c.target = t
	return true
}

// abort resets both sides; the relay sees the errors and ends. A reset,
// not a FIN: a connection cut short must not look finished to either end.
func (c *tcpConn) abort() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.aborted.Store(true)
	reset(c.client)
	if c.target != nil {
		reset(c.target)
	}
}

// reset closes c with an RST (SO_LINGER 0) instead of a FIN, so the peer
// reads ECONNRESET rather than a clean end of stream: how an abort on one
// leg (a reset, a failed write, a drain that ran out of time, a refusal)
// is passed on to the other. An EOF-delimited download or upload cut short
// must not look complete.
func reset(c *net.TCPConn) {
	c.SetLinger(0)
	c.Close()
}

func newTCPRunner(f *Forwarder, r Rule) (*tcpRunner, error) {
	ln, err := listenTCP(r.Listen)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &tcpRunner{f: f, ln: ln, ctx: ctx, cancel: cancel,
		conns: map[*tcpConn]struct{}{}, perSource: map[netip.Addr]int{}, served: make(chan struct{})}
	return t, nil
}

func (t *tcpRunner) addr() net.Addr { return t.ln.Addr() }

func (t *tcpRunner) current() *ruleState { return t.state.Load() }

func (t *tcpRunner) update(r Rule) { t.state.Store(t.f.nextState(t.state.Load(), r)) }

func (t *tcpRunner) serve() {
	defer close(t.served)
	var delay time.Duration
	for {
		c, err := t.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: wait instead of spinning
			// (the connection stays in the backlog), and say so once per
			// episode.
			if localExhaustion(err) {
				t.f.outOfResources(opAccept, t.state.Load().rule.Name, err)
			} else if delay == 0 {
				t.f.log.Warn("accept failed", "rule", t.state.Load().rule.Name, "err", err.Error())
			}
			delay = acceptBackoff(delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		t.f.gotResources()
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			t.handle(c)
		}()
	}
}

func (t *tcpRunner) stop() { t.ln.Close() }

// pause closes the listener and waits for serve to return; resume listens
// again at the same address and serves it. Reload uses them to hand the
// port to a rule whose address overlaps this one's, and to take it back if
// that rule cannot bind.
func (t *tcpRunner) pause() {
	t.ln.Close()
	<-t.served
}

func (t *tcpRunner) resume() error {
	ln, err := listenTCP(t.ln.Addr().String())
	if err != nil {
		return err
	}
	t.ln = ln
	t.served = make(chan struct{})
	go t.serve()
	return nil
}

func (t *tcpRunner) drain(ctx context.Context) {
	<-t.served // no handler starts after this
	done := make(chan struct{})
	go func() {
		t.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	t.cancel()
	t.mu.Lock()
	for c := range t.conns {
		c.abort()
	}
	t.mu.Unlock()
	<-done
}

// admit counts a connection against the rule's bounds, or refuses it.
func (t *tcpRunner) admit(r *Rule, c *tcpConn, src netip.Addr) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.MaxConns > 0 && t.active >= r.MaxConns {
		return false
	}
	if r.MaxConnsPerSource > 0 && t.perSource[src] >= r.MaxConnsPerSource {
		return false
	}
	t.active++
	t.perSource[src]++
	t.conns[c] = struct{}{}
	return true
}

func (t *tcpRunner) release(c *tcpConn, src netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.active--
	if t.perSource[src]--; t.perSource[src] <= 0 {
		delete(t.perSource, src)
	}
	delete(t.conns, c)
}

// connLog is what the end-of-connection line says.
type connLog struct {
	client     netip.AddrPort
	target     string
	fromClient int64
	toClient   int64
	end        string
	err        error
}

// handle forwards one accepted connection and logs its end.
func (t *tcpRunner) handle(client *net.TCPConn) {
	st := t.state.Load()
	start := time.Now()
	l := t.forward(st, client)
	t.logEnd(st, &l, start)
}

// forward serves client under st until the connection ends, and says how.
func (t *tcpRunner) forward(st *ruleState, client *net.TCPConn) (l connLog) {
	r, m := &st.rule, st.m
	m.total.Add(1)
	l.client = clientAddr(client.RemoteAddr())

	// The address the rules apply to: the peer's, or, behind a trusted
	// load balancer, the one its PROXY header gives.
	var (
		header   proxyproto.Header
		buffered []byte
	)
	if r.AcceptProxyProtocol && prefixesContain(r.TrustedProxies, l.client.Addr()) {
		var err error
		header, buffered, err = readProxyHeader(t.ctx, client, r.ConnectTimeout)
		if err != nil {
			reset(client)
			if t.ctx.Err() != nil { // cut by a drain, not the peer's fault
				l.end = endShutdown
				return
			}
			m.denied[deniedProxyHeader].Add(1)
			l.end, l.err = endProxyHeader, err
			return
		}
		if header.Command == proxyproto.Proxy && header.Source.IsValid() {
			l.client = netip.AddrPortFrom(plainAddr(header.Source.Addr()), header.Source.Port())
		}
	}
	if !r.permits(l.client.Addr()) {
		reset(client)
		m.denied[deniedACL].Add(1)
		l.end = endDenied
		return
	}
	c := &tcpConn{client: client, rule: r.Name}
	// c is in the loop guard's tables once either end of it is local.
	hopped := false
	defer func() {
		if hopped {
			t.f.hops.done(c)
		}
	}()
	if peer, self := clientAddr(client.RemoteAddr()), clientAddr(client.LocalAddr()); fromThisHost(peer, self) {
		hopped = true
		if via := t.f.hops.accept(c, peer, self); via != nil {
			reset(client) // unwinds the chain: via's dial is this conn's peer
			t.logLoop(c, via)
			l.end = endLoop
			return
		}
	}
	if !t.admit(r, c, l.client.Addr()) {
		reset(client)
		m.denied[deniedLimit].Add(1)
		l.end = endLimit
		return
	}
	defer t.release(c, l.client.Addr())
	m.active.Add(1)
	defer m.active.Add(-1)

	target, addr, err := t.dial(st)
	if err != nil {
		reset(client)
		l.end, l.err = endDialFailed, err
		if t.ctx.Err() != nil { // a drain ran out: its "operation was canceled" says nothing
			l.end, l.err = endShutdown, nil
		}
		return
	}
	l.target = addr
	if out, dst := clientAddr(target.LocalAddr()), clientAddr(target.RemoteAddr()); fromThisHost(dst, out) {
		hopped = true
		if looped := t.f.hops.dial(c, out, dst); looped != nil {
			looped.looped.Store(true)
			looped.abort()
			t.logLoop(looped, c)
		}
	}
	if !c.setTarget(target) {
		reset(target)
		l.end = endShutdown
		return
	}
	// What the target gets before the client's stream: the PROXY header,
	// then the bytes read along with a header from a load balancer.
	prefix := buffered
	if r.ProxyProtocol != 0 {
		if header.Command != proxyproto.Proxy || !header.Source.IsValid() {
			header = proxyproto.ForConn(client.RemoteAddr(), client.LocalAddr())
		}
		if r.ProxyProtocol == 1 {
			header.TLVs = nil // a v2 header's extras, which v1 cannot carry
		}
		b, err := header.Format(r.ProxyProtocol)
		if err != nil { // a load balancer's header this version cannot carry (UDP in v1)
			b, err = proxyproto.ForConn(client.RemoteAddr(), client.LocalAddr()).Format(r.ProxyProtocol)
		}
		if err != nil {
			reset(client)
			reset(target)
			l.end, l.err = endError, err
			return
		}
		prefix = append(b, buffered...)
	}
	if len(prefix) > 0 {
		if _, err := target.Write(prefix); err != nil {
			reset(client)
			reset(target)
			l.end, l.err = endError, err
			return
		}
	}
	l.fromClient = int64(len(buffered))
	m.fromClient.Add(l.fromClient)
	up, down, end, err := relay(client, target, r.IdleTimeout, m, &t.f.pipes)
	l.fromClient += up
	l.toClient = down
	l.end, l.err = end, err
	if c.aborted.Load() {
		l.end, l.err = endShutdown, nil
	}
	if c.looped.Load() {
		l.end, l.err = endLoop, nil
	}
	return l
}

// logLoop says that c came back to the forwarder through via's dial.
func (t *tcpRunner) logLoop(c, via *tcpConn) {
	t.f.log.Warn("connection loops back to the forwarder, refused", "rule", c.rule, "via_rule", via.rule,
		"client", clientAddr(c.client.RemoteAddr()).String())
}

// dialResult is the outcome of a dial to target i of a rule.
type dialResult struct {
	i   int
	c   net.Conn
	err error
}

func (t *tcpRunner) dialTarget(st *ruleState, i int) dialResult {
	d := net.Dialer{Timeout: st.rule.ConnectTimeout}
	c, err := d.DialContext(t.ctx, "tcp", st.targets.addrs[i])
	return dialResult{i, c, err}
}

// learn records a dial's outcome in the targets' health.
func (t *tcpRunner) learn(st *ruleState, r dialResult) {
	addr := st.targets.addrs[r.i]
	if r.err == nil {
		t.f.gotResources()
		if st.targets.succeeded(r.i) {
			t.f.log.Info("target up", "rule", st.rule.Name, "target", addr)
		}
		return
	}
	if t.ctx.Err() != nil {
		return // cancelled by a drain, not the target's fault
	}
	if localExhaustion(r.err) {
		t.f.outOfResources(opDial, st.rule.Name, r.err)
		return // our problem, not the target's
	}
	st.m.dialError(addr)
	if backoff, marked := st.targets.failed(r.i, time.Now()); marked {
		t.f.log.Warn("target down", "rule", st.rule.Name, "target", addr, "retry_in_ms", backoff.Milliseconds(), "err", r.err)
	}
}

// attemptDelay is how long a dial may go unanswered before the next
// target is tried beside it (RFC 8305's connection attempt delay): a target
// that drops SYNs costs a client a quarter second, not connect_timeout.
const attemptDelay = 250 * time.Millisecond

// dial connects to the first target that answers, in the rule's order: each
// target is tried when the one before it fails or has been silent for
// attemptDelay, and the first connection made wins. Dials that lose run on
// to their own end, so that their targets' health is still learnt (a
// silent target is marked down once its connect_timeout passes), and close
// what they connect.
func (t *tcpRunner) dial(st *ruleState) (*net.TCPConn, string, error) {
	order := st.targets.order(time.Now())
	if len(order) == 1 {
		// Nothing to race: the dial runs here, without a goroutine, a
		// channel or a timer.
		r := t.dialTarget(st, order[0])
		t.learn(st, r)
		if r.err != nil {
			return nil, "", r.err
		}
		return r.c.(*net.TCPConn), st.targets.addrs[r.i], nil
	}
	results := make(chan dialResult, len(order))
	started, pending := 0, 0
	startNext := func() {
		i := order[started]
		started++
		pending++
		go func() { results <- t.dialTarget(st, i) }()
	}
	learn := func(r dialResult) { t.learn(st, r) }
	startNext()
	timer := time.NewTimer(attemptDelay)
	defer timer.Stop()
	var errs []error
	for pending > 0 {
		select {
		case <-timer.C:
			if started < len(order) {
				startNext()
				timer.Reset(attemptDelay)
			}
			continue
		case r := <-results:
			pending--
			learn(r)
			if r.err == nil {
				if pending > 0 {
					go func(n int) { // the losers, as they end
						for range n {
							r := <-results
							learn(r)
							if r.c != nil {
								r.c.Close()
							}
						}
					}(pending)
				}
				return r.c.(*net.TCPConn), st.targets.addrs[r.i], nil
			}
			errs = append(errs, r.err)
			if t.ctx.Err() != nil {
				return nil, "", r.err
			}
			if started < len(order) {
				startNext()
				timer.Reset(attemptDelay)
			}
		}
	}
	return nil, "", errors.Join(errs...)
}

// logEnd writes the connection's end line. One line per connection is a
// feature, and its cost must stay small beside the connection's: the
// attributes are typed (slog.Attr, not key-value pairs of any) so that none
// is boxed, and the record goes to the handler without the caller's PC,
// which slog's Logger takes with a stack walk (runtime.Callers) for a
// source location that would only ever name this function. The rule's
// name and protocol come first, formatted once per rule (st.endLog).
func (t *tcpRunner) logEnd(st *ruleState, l *connLog, start time.Time) {
	end := time.Now() // the line's time, and the end of its duration
	ctx := context.Background()
	h := st.endLog
	if !h.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := [...]slog.Attr{slog.String("client", l.client.String()), slog.String("target", l.target),
		slog.Int64("bytes_from_client", l.fromClient), slog.Int64("bytes_to_client", l.toClient),
		slog.Float64("duration_ms", millis(end.Sub(start))), slog.String("end", l.end), {}}
	n := len(attrs) - 1
	if l.err != nil {
		attrs[n] = slog.String("err", l.err.Error())
		n++
	}
	rec := slog.NewRecord(end, slog.LevelInfo, "connection end", 0)
	rec.AddAttrs(attrs[:n]...)
	_ = h.Handle(ctx, rec) // a log that cannot be written has nowhere to say so
}

// readProxyHeader reads a trusted peer's PROXY header within timeout. It
// returns the bytes the reader took in beyond the header: the start of the
// client's stream, for the target.
//
// The connection is not yet tracked, so a drain that runs out of time
// cannot close it: ctx, the runner's, ends the wait instead.
func readProxyHeader(ctx context.Context, c *net.TCPConn, timeout time.Duration) (proxyproto.Header, []byte, error) {
	c.SetReadDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Unix(1, 0)) })
	defer func() {
		stop()
		c.SetReadDeadline(time.Time{})
	}()
	br := bufio.NewReaderSize(c, 512)
	h, err := proxyproto.Read(br)
	if err != nil {
		return h, nil, err
	}
	rest, _ := br.Peek(br.Buffered())
	return h, rest, nil
}

// relay moves bytes both ways until both directions end, propagating
// half-closes. It returns the bytes moved each way and how it ended: the
// first direction to fail tells the story; the other's error is its echo.
func relay(client, target *net.TCPConn, idle time.Duration, m *ruleMetrics, pipes *pipePool) (up, down int64, end string, err error) {
	r := &relayConn{client: client, target: target, first: endClosed}
	var watch *idleWatch
	if idle > 0 {
		watch = newIdleWatch(client, target, idle)
		watch.start(r.idled)
	}
	r.upDone.Add(1)
	go r.up(watch, pipes, &m.fromClient)
	down, dend, derr := pipe(client, target, watch, pipes, &m.toClient)
	r.finish(dend, derr)
	r.upDone.Wait()
	if watch != nil {
		watch.stop() // after it, no expire runs: first and ferr are settled
	}
	client.Close()
	target.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.upN, down, r.first, r.ferr
}

// relayConn is what a relay's two directions and its idle watch share, in
// one allocation.
type relayConn struct {
	client, target *net.TCPConn
	upDone         sync.WaitGroup
	upN            int64 // bytes from the client, once upDone

	mu    sync.Mutex
	first string // how the connection ended: the first failure's end
	ferr  error
}

// up is the client-to-target direction, in a goroutine of its own.
func (r *relayConn) up(watch *idleWatch, pipes *pipePool, count *atomic.Int64) {
	defer r.upDone.Done()
	n, end, err := pipe(r.target, r.client, watch, pipes, count)
	r.upN = n
	r.finish(end, err)
}

func (r *relayConn) idled() { r.finish(endIdle, nil) }

// finish records how a direction (or the idle watch) ended the connection,
// if it ended it, and closes both sockets, which wakes the other direction.
func (r *relayConn) finish(end string, err error) {
	if end == endClosed {
		return
	}
	r.mu.Lock()
	if r.first == endClosed {
		r.first, r.ferr = end, err
	}
	r.mu.Unlock()
	// A failure on either leg reaches both ends as a reset; an idle
	// timeout is a policy end of a quiet connection, closed as nginx's
	// proxy_timeout does.
	if end == endError {
		reset(r.client)
		reset(r.target)
		return
	}
	r.client.Close()
	r.target.Close()
}

// pipe copies src to dst until src's EOF, then half-closes dst.
func pipe(dst, src *net.TCPConn, watch *idleWatch, pipes *pipePool, count *atomic.Int64) (int64, string, error) {
	n, err := copyTCP(dst, src, watch, pipes, count)
	switch {
	case err == nil:
		// src said EOF: pass the half-close on.
		dst.CloseWrite()
		return n, endClosed, nil
	case errors.Is(err, net.ErrClosed):
		return n, endClosed, nil // the other direction closed both
	default:
		return n, endError, err
	}
}

var _ io.ReaderFrom = (*net.TCPConn)(nil) // the splice path: keep it unwrapped
