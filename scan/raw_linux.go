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
// source port, the raw senders and the batches they write, the receiver
// and its goroutine, the source address for each destination, and the
// answers learned while sending (no route), passed on by a goroutine of
// their own since Send must not block on the replies channel. It gives the
// engines Start, Flush, Done and Close.
//
// Send fills a batch; a full batch, or any batch at Flush, goes to the
// sending goroutines, rawSenders of them, each writing one batch at a time
// with sendmmsg. They are what makes a fast scan fast: on a veth pair or
// loopback the kernel does the target's whole work on a probe (and routes
// its answer back) inside the sender's system call, a few microseconds a
// probe, so one sending thread is held to what one CPU can do, and the
// Scanner, waiting on it, does nothing meanwhile. With the sends on their
// own goroutines the Scanner prepares the next batch while the kernel
// works, and two batches are written at once on two CPUs.
//
// The batch being filled and the routes belong to the goroutine that
// calls Send and Flush; the rest is guarded by mu, channels or atomics.
type rawCore struct {
	name string // the engine's, for errors
	res  *rawnet.Reservation
	txs  []*rawnet.Sender // one per sending goroutine
	rx   *rawnet.Receiver
	port uint16
	// handle turns what the receiver reads into replies: the engine's.
	handle rawnet.Handler

	routes map[netip.Prefix]rawRoute
	cur    *rawBatch      // being filled; nil until a free one is taken
	queue  chan *rawBatch // to the sending goroutines
	free   chan *rawBatch // written, to be filled again
	stop   chan struct{}  // closed by Close: the senders return
	txwg   sync.WaitGroup

	replies chan<- Reply
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	wake    chan struct{} // an early answer is waiting

	mu    sync.Mutex
	early []Reply
	err   error // the receiver's or a sender's failure, for the next Send
	// asProbed is the targets named otherwise than their answers name
	// them (link-local with a zone, IPv4-mapped IPv6), by the address on
	// the wire; reshaped says it is not empty.
	asProbed map[netip.Addr]netip.Addr
	reshaped atomic.Bool
	closed   bool

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

// rawBatch is a batch of packets, pkts[:n], each to dsts[i] for probes[i].
type rawBatch struct {
	pkts   [][]byte
	dsts   []netip.Addr
	probes []Probe
	n      int
}

// rawSenders is the number of goroutines that write batches, and
// rawBatches the batches: one being filled and one queued for each sender
// besides the one it writes.
const (
	rawSenders = 2
	rawBatches = 2*rawSenders + 1
)

// A sender meeting a full device queue (ENOBUFS) waits, from rawBusyWait
// doubling up to rawBusyMax, and tries again until the batch is written.
// Send waits up to rawRoomWait for a batch to fill while every one is
// queued or being written, then says the engine is busy.
const (
	rawBusyWait = 50 * time.Microsecond
	rawBusyMax  = 5 * time.Millisecond
	rawRoomWait = 20 * time.Millisecond
)

// openRawCore opens the sockets, in the calling thread's network namespace.
func openRawCore(name string, port uint16, batch int) (*rawCore, error) {
	if batch <= 0 {
		batch = 256
	}
	var txs []*rawnet.Sender
	closeTxs := func() {
		for _, tx := range txs {
			tx.Close()
		}
	}
	for range rawSenders {
		tx, err := rawnet.NewSender()
		if err != nil {
			closeTxs()
			if errors.Is(err, os.ErrPermission) {
				return nil, &PrivilegeError{Engine: name, Err: err}
			}
			return nil, fmt.Errorf("%s engine: %w", name, err)
		}
		txs = append(txs, tx)
	}
	res, err := rawnet.ReservePort(port)
	if err != nil {
		closeTxs()
		return nil, fmt.Errorf("%s engine: reserve source port %d: %w", name, port, err)
	}
	rx, err := rawnet.NewReceiver(rawnet.ReceiverConfig{Port: res.Port})
	if err != nil {
		closeTxs()
		res.Close()
		if errors.Is(err, os.ErrPermission) {
			return nil, &PrivilegeError{Engine: name, Err: err}
		}
		return nil, fmt.Errorf("%s engine: %w", name, err)
	}
	c := &rawCore{
		name: name, res: res, txs: txs, rx: rx, port: res.Port,
		routes: make(map[netip.Prefix]rawRoute),
		queue:  make(chan *rawBatch, rawBatches),
		free:   make(chan *rawBatch, rawBatches),
		stop:   make(chan struct{}),
		wake:   make(chan struct{}, 1),
	}
	for range rawBatches {
		b := &rawBatch{pkts: make([][]byte, batch), dsts: make([]netip.Addr, batch), probes: make([]Probe, batch)}
		for i := range b.pkts {
			b.pkts[i] = make([]byte, 0, 128)
		}
		c.free <- b
	}
	for _, tx := range txs {
		c.txwg.Go(func() { c.sender(tx) })
	}
	return c, nil
}

// Start runs the receiver, which gives each packet to handle, and the
// goroutine that passes on early answers, until ctx is done or Close.
func (c *rawCore) Start(ctx context.Context, replies chan<- Reply) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed || c.ctx != nil {
		return fmt.Errorf("%s engine: %w", c.name, ErrEngineClosed)
	}
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
	wire := dst.WithZone("")
	pfx, _ := wire.Prefix(bits)
	if wire != p.IP {
		c.mu.Lock()
		if c.asProbed == nil {
			c.asProbed = make(map[netip.Addr]netip.Addr)
		}
		c.asProbed[wire] = p.IP
		c.reshaped.Store(true)
		c.mu.Unlock()
	}
	// A host's own verdict (no route) is cached for it alone: a host
	// route may reject one address of a prefix whose others route well.
	host := netip.PrefixFrom(wire, wire.BitLen())
	rt, cached := c.routes[host]
	if !cached {
		rt, cached = c.routes[pfx]
	}
	if !cached || dst.Zone() != "" {
		route, err := rawnet.LookupRoute(dst)
		rt = rawRoute{src: route.Src}
		key := pfx
		if err != nil {
			if rt.reason = unroutable(err); rt.reason == "" {
				return netip.Addr{}, false, fmt.Errorf("%s engine: %w", c.name, err)
			}
			key = host
		}
		if len(c.routes) >= rawMaxRoutes {
			clear(c.routes)
		}
		c.routes[key] = rt
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

// room makes room in the batch for one more packet: it hands a full batch
// to the senders and takes a free one, waiting up to rawRoomWait for one,
// or says the engine is busy.
func (c *rawCore) room() error {
	if c.cur != nil && c.cur.n < len(c.cur.pkts) {
		return nil
	}
	if err := c.Flush(); err != nil {
		return err
	}
	select {
	case c.cur = <-c.free:
		return nil
	default:
	}
	t := time.NewTimer(rawRoomWait)
	defer t.Stop()
	select {
	case c.cur = <-c.free:
		return nil
	case <-t.C:
		return fmt.Errorf("%s engine: %w: the network device's queue is full", c.name, ErrBusy)
	}
}

// buf is the buffer for the next packet, to append it to; room must have
// made room.
func (c *rawCore) buf() []byte { return c.cur.pkts[c.cur.n][:0] }

// push queues pkt, built in buf, for p, and hands the batch to the senders
// when it is full.
func (c *rawCore) push(p Probe, pkt []byte) error {
	b := c.cur
	b.pkts[b.n], b.dsts[b.n], b.probes[b.n] = pkt, p.IP.Unmap(), p
	b.n++
	if b.n < len(b.pkts) {
		return nil
	}
	return c.Flush()
}

// Flush hands the batch being filled, if any, to the senders. It returns
// a sender's failure, if one failed.
func (c *rawCore) Flush() error {
	if b := c.cur; b != nil && b.n > 0 {
		c.cur = nil
		c.queue <- b // never blocks: it has room for every batch
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// sender writes the batches queued with tx until Close.
func (c *rawCore) sender(tx *rawnet.Sender) {
	for {
		select {
		case <-c.stop:
			return
		case b := <-c.queue:
			err := c.write(tx, b)
			b.n = 0
			c.free <- b // never blocks
			if err != nil {
				c.mu.Lock()
				if c.err == nil {
					c.err = err
				}
				c.mu.Unlock()
				return
			}
		}
	}
}

// write writes a batch. A packet the kernel refuses for want of a route or
// by a local firewall is answered Filtered and skipped; while the device
// queue is full (ENOBUFS) it waits a little and tries again, until Close.
func (c *rawCore) write(tx *rawnet.Sender, b *rawBatch) error {
	done, wait := 0, rawBusyWait
	for done < b.n {
		m, err := tx.Send(b.pkts[done:b.n], b.dsts[done:b.n])
		done += m
		c.sent.Add(uint64(m))
		if err == nil {
			continue
		}
		if errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.ENOMEM) {
			c.busy.Add(1)
			t := time.NewTimer(wait)
			select {
			case <-c.stop:
				t.Stop()
				return nil
			case <-t.C:
			}
			wait = min(2*wait, rawBusyMax)
			continue
		}
		reason := unroutable(err)
		if reason == "" {
			return fmt.Errorf("%s engine: %w", c.name, err)
		}
		c.unroutable.Add(1)
		c.answerLater(Reply{Probe: b.probes[done], State: Filtered, Reason: reason, At: time.Now()})
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
// a link-local address probed with one; IPv4-mapped, for an IPv4 address
// probed so.
func (c *rawCore) remote(a netip.Addr) netip.Addr {
	if !c.reshaped.Load() {
		return a
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if probed, ok := c.asProbed[a]; ok {
		return probed
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
// is dropped. It is called once.
func (c *rawCore) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	if c.cancel != nil {
		c.cancel()
	}
	close(c.stop)
	c.txwg.Wait()
	err := c.rx.Close()
	c.wg.Wait()
	for _, tx := range c.txs {
		if e := tx.Close(); err == nil {
			err = e
		}
	}
	if e := c.res.Close(); err == nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("%s engine: close: %w", c.name, err)
	}
	return nil
}
