package scan

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portkit/portkit/scan/internal/rawnet"
	"golang.org/x/sys/unix"
)

// rawCore is what the SYN and UDP engines share, and embed: the reserved
// source port, the raw sender and the batch it writes, the receiver and its
// goroutine, the source address for each destination, and the answers
// learned while sending (no route), passed on by a goroutine of their own
// since Send must not block on the replies channel. It gives the engines
// Start, Flush, Done and Close.
//
// The batch and the routes belong to the goroutine that calls Send and
// Flush; the rest is guarded by mu or atomic.
type rawCore struct {
	name string // the engine's, for errors
	res  *rawnet.Reservation
	tx   *rawnet.Sender
	rx   *rawnet.Receiver
	port uint16
	// handle turns what the receiver reads into replies: the engine's.
	handle rawnet.Handler

	routes map[netip.Prefix]rawRoute
	pkts   [][]byte // the batch: pkts[:n] are queued
	dsts   []netip.Addr
	probes []Probe
	n      int

	replies chan<- Reply
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	wake    chan struct{} // an early answer is waiting

	mu     sync.Mutex
	early  []Reply
	err    error                 // the receiver's failure, for the next Send
	zones  map[netip.Addr]string // of link-local targets, by address without zone
	zoned  atomic.Bool           // zones is not empty
	closed bool

	sent, busy, unroutable atomic.Uint64
}

// rawRoute is the source address for destinations in a prefix, or why
// there is none.
type rawRoute struct {
	src    netip.Addr
	reason string // of the Filtered answer when there is no route
}

// Route lookups are cached per prefix of these lengths: the kernel may
// route hosts within one differently, but a scan rarely meets that.
const (
	rawRouteBits4, rawRouteBits6 = 24, 64
	rawMaxRoutes                 = 1 << 14
)

// ENOBUFS from a full device queue is waited out this many times, doubling
// from rawBusyWait, before Flush leaves the rest queued.
const (
	rawBusyTries = 5
	rawBusyWait  = 50 * time.Microsecond
)

// openRawCore opens the sockets, in the calling thread's network namespace.
func openRawCore(name string, port uint16, batch int) (*rawCore, error) {
	if batch <= 0 {
		batch = 256
	}
	tx, err := rawnet.NewSender()
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, &PrivilegeError{Engine: name, Err: err}
		}
		return nil, fmt.Errorf("%s engine: %w", name, err)
	}
	res, err := rawnet.ReservePort(port)
	if err != nil {
		tx.Close()
		return nil, fmt.Errorf("%s engine: reserve source port %d: %w", name, port, err)
	}
	rx, err := rawnet.NewReceiver(rawnet.ReceiverConfig{Port: res.Port})
	if err != nil {
		tx.Close()
		res.Close()
		if errors.Is(err, os.ErrPermission) {
			return nil, &PrivilegeError{Engine: name, Err: err}
		}
		return nil, fmt.Errorf("%s engine: %w", name, err)
	}
	c := &rawCore{
		name: name, res: res, tx: tx, rx: rx, port: res.Port,
		routes: make(map[netip.Prefix]rawRoute),
		pkts:   make([][]byte, batch),
		dsts:   make([]netip.Addr, batch),
		probes: make([]Probe, batch),
		wake:   make(chan struct{}, 1),
	}
	for i := range c.pkts {
		c.pkts[i] = make([]byte, 0, 128)
	}
	return c, nil
}

// Start runs the receiver, which gives each packet to handle, and the
// goroutine that passes on early answers, until ctx is done or Close.
func (c *rawCore) Start(ctx context.Context, replies chan<- Reply) error {
	c.ctx, c.cancel = context.WithCancel(ctx)
	c.replies = replies
	c.wg.Go(func() {
		if err := c.rx.Run(c.ctx, c.handle); err != nil {
			c.mu.Lock()
			if !c.closed {
				c.err = fmt.Errorf("%s engine: receive: %w", c.name, err)
			}
			c.mu.Unlock()
		}
	})
	c.wg.Go(c.passEarly)
	return nil
}

// prepare readies a probe of proto to p: its source address, and room in
// the batch. ok is false when there is nothing to send: the probe is
// answered already (no route), or err says why not. The receiver's
// failure, if any, is returned here: without it every probe would end
// filtered.
func (c *rawCore) prepare(p Probe, proto Proto) (src netip.Addr, ok bool, err error) {
	if p.Proto != proto {
		return netip.Addr{}, false, fmt.Errorf("%s engine: %v probe", c.name, p.Proto)
	}
	c.mu.Lock()
	err = c.err
	c.mu.Unlock()
	if err != nil {
		return netip.Addr{}, false, err
	}
	if src, ok, err = c.source(p); !ok {
		return netip.Addr{}, false, err
	}
	if err := c.room(); err != nil {
		return netip.Addr{}, false, err
	}
	return src, true, nil
}

// source returns the source address for packets to dst. When there is
// none, ok is false and the probe's Filtered answer is already on its way.
func (c *rawCore) source(p Probe) (src netip.Addr, ok bool, err error) {
	dst := p.IP.Unmap()
	bits := rawRouteBits4
	if dst.Is6() {
		bits = rawRouteBits6
	}
	pfx, _ := dst.WithZone("").Prefix(bits)
	if z := dst.Zone(); z != "" {
		c.mu.Lock()
		if c.zones == nil {
			c.zones = make(map[netip.Addr]string)
		}
		c.zones[dst.WithZone("")] = z
		c.zoned.Store(true)
		c.mu.Unlock()
	}
	rt, cached := c.routes[pfx]
	if !cached || dst.Zone() != "" {
		route, err := rawnet.LookupRoute(dst)
		rt = rawRoute{src: route.Src}
		if err != nil {
			if rt.reason = unroutable(err); rt.reason == "" {
				return netip.Addr{}, false, fmt.Errorf("%s engine: %w", c.name, err)
			}
		}
		if len(c.routes) >= rawMaxRoutes {
			clear(c.routes)
		}
		c.routes[pfx] = rt
	}
	if rt.reason != "" {
		c.unroutable.Add(1)
		c.answerLater(Reply{Probe: p, State: Filtered, Reason: rt.reason, At: time.Now()})
		return netip.Addr{}, false, nil
	}
	return rt.src, true, nil
}

// unroutable names the answer for an error that says the destination
// cannot be reached from here, or returns "".
func unroutable(err error) string {
	switch {
	case errors.Is(err, unix.ENETUNREACH), errors.Is(err, unix.EAFNOSUPPORT), errors.Is(err, unix.EADDRNOTAVAIL):
		return "net-unreach"
	case errors.Is(err, unix.EHOSTUNREACH):
		return "host-unreach"
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		// A local firewall's reject, or a prohibit route.
		return "admin-prohibited"
	}
	return ""
}

// room makes room in the batch for one more packet, or says the engine is
// busy.
func (c *rawCore) room() error {
	if c.n < len(c.pkts) {
		return nil
	}
	if err := c.Flush(); err != nil {
		return err
	}
	if c.n == len(c.pkts) {
		return fmt.Errorf("%s engine: %w: the network device's queue is full", c.name, ErrBusy)
	}
	return nil
}

// buf is the buffer for the next packet, to append it to; room must have
// made room.
func (c *rawCore) buf() []byte { return c.pkts[c.n][:0] }

// push queues pkt, built in buf, for p, and writes the batch when it is
// full.
func (c *rawCore) push(p Probe, pkt []byte) error {
	c.pkts[c.n], c.dsts[c.n], c.probes[c.n] = pkt, p.IP.Unmap(), p
	c.n++
	if c.n < len(c.pkts) {
		return nil
	}
	return c.Flush()
}

// Flush writes the batch. A packet the kernel refuses for want of a route
// or by a local firewall is answered Filtered and skipped; while the
// device queue is full (ENOBUFS) it waits a little, and then leaves what
// is left queued for the next Flush.
func (c *rawCore) Flush() error {
	done, tries := 0, 0
	defer func() {
		// Keep the unsent at the front, swapping buffers so each keeps
		// its capacity.
		for i := done; i < c.n; i++ {
			j := i - done
			c.pkts[j], c.pkts[i] = c.pkts[i], c.pkts[j]
			c.dsts[j], c.probes[j] = c.dsts[i], c.probes[i]
		}
		c.n -= done
	}()
	for done < c.n {
		m, err := c.tx.Send(c.pkts[done:c.n], c.dsts[done:c.n])
		done += m
		c.sent.Add(uint64(m))
		if err == nil {
			continue
		}
		if errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.ENOMEM) {
			c.busy.Add(1)
			if tries == rawBusyTries {
				return nil
			}
			time.Sleep(rawBusyWait << tries)
			tries++
			continue
		}
		reason := unroutable(err)
		if reason == "" {
			return fmt.Errorf("%s engine: %w", c.name, err)
		}
		c.unroutable.Add(1)
		c.answerLater(Reply{Probe: c.probes[done], State: Filtered, Reason: reason, At: time.Now()})
		done++
	}
	return nil
}

// answerLater queues an answer for the early goroutine to pass on.
func (c *rawCore) answerLater(r Reply) {
	c.mu.Lock()
	c.early = append(c.early, r)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *rawCore) passEarly() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.wake:
		}
		c.mu.Lock()
		early := c.early
		c.early = nil
		c.mu.Unlock()
		for _, r := range early {
			if !c.deliver(r) {
				return
			}
		}
	}
}

// deliver sends r on the replies channel, unless the scan is stopping.
func (c *rawCore) deliver(r Reply) bool {
	select {
	case c.replies <- r:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// answer reads r as an answer to a probe of proto sent from the core's
// port: the probe, and the state the answer says, as nmap reads it; ok is
// false if r says nothing of such a probe.
func (c *rawCore) answer(r *rawnet.Reply, proto Proto) (p Probe, st State, ok bool) {
	f := r.Flow()
	wire := rawnet.ProtoTCP
	if proto == UDP {
		wire = rawnet.ProtoUDP
	}
	if f.Proto != wire || f.Local.Port() != c.port {
		return Probe{}, 0, false
	}
	switch k := r.Kind(); {
	case k == rawnet.KindSynAck && proto == TCP, k == rawnet.KindUDP && proto == UDP:
		st = Open
	case k == rawnet.KindReset && proto == TCP, k == rawnet.KindPortUnreachable && proto == UDP:
		st = Closed
	case k == rawnet.KindUnreachable, k == rawnet.KindPortUnreachable:
		st = Filtered
	default:
		return Probe{}, 0, false
	}
	return Probe{IP: c.remote(f.Remote.Addr()), Port: f.Remote.Port(), Proto: proto}, st, true
}

// remote is a replying address as the probe named it: with its zone, for
// a link-local address probed with one.
func (c *rawCore) remote(a netip.Addr) netip.Addr {
	if !c.zoned.Load() || !a.IsLinkLocalUnicast() {
		return a
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if z, ok := c.zones[a]; ok {
		return a.WithZone(z)
	}
	return a
}

// rawStats counts what a raw engine did, for tests and benchmarks.
type rawStats struct {
	Sent       uint64 // packets written
	Busy       uint64 // times the device queue was full
	Unroutable uint64 // probes answered Filtered for want of a route
	Invalid    uint64 // replies whose cookie did not match
	rawnet.ReceiverStats
}

func (c *rawCore) rawStats(invalid uint64) rawStats {
	rs, _ := c.rx.Stats()
	return rawStats{
		Sent: c.sent.Load(), Busy: c.busy.Load(), Unroutable: c.unroutable.Load(),
		Invalid: invalid, ReceiverStats: rs,
	}
}

// Done does nothing: a raw engine keeps nothing per probe.
func (c *rawCore) Done(Probe) {}

// Close stops the goroutines and closes the sockets; what is still queued
// is dropped.
func (c *rawCore) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	if c.cancel != nil {
		c.cancel()
	}
	err := c.rx.Close()
	c.wg.Wait()
	if e := c.tx.Close(); err == nil {
		err = e
	}
	if e := c.res.Close(); err == nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("%s engine: close: %w", c.name, err)
	}
	return nil
}
