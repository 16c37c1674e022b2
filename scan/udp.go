package scan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/portkit/portkit/scan/internal/payloads"
	"github.com/portkit/portkit/scan/internal/rawnet"
)

// UDPMode chooses how the UDP engine sends.
type UDPMode uint8

const (
	// UDPAuto sends raw where it can (Linux, root or CAP_NET_RAW), and
	// through sockets elsewhere.
	UDPAuto UDPMode = iota
	// UDPRaw sends whole packets through a raw socket, from one source
	// port, and reads the answers with a filter on it: Linux only.
	UDPRaw
	// UDPSockets sends each probe from a connected UDP socket of its own,
	// through the operating system: no privileges, every OS.
	UDPSockets
)

// UDPOptions configures the UDP engine. The zero value is ready.
type UDPOptions struct {
	// Mode chooses raw or socket mode; UDPAuto by default.
	Mode UDPMode

	// SourcePort is the port raw probes are sent from, reserved for the
	// scan; 0 picks a free one.
	SourcePort uint16
	// Batch is the most raw probes queued before they are written, with
	// one sendmmsg; 0 means 256.
	Batch int
	// Limit bounds the sockets in flight in socket mode; 0 means as many
	// as the open-file limit allows, less 128.
	Limit int

	// Sources, if set, are source addresses of this host to spread the
	// probes over, in turn, each probe (and each retransmission) from the
	// next address of its target's family; a family with none here is sent
	// from the route's source. A host limits the ICMP errors it sends to
	// each peer address (Linux: one a second, a burst of six), so n
	// addresses draw n times its errors a second. The addresses must be
	// configured on the interface the targets are reached through: the
	// answers come back to them.
	Sources []netip.Addr

	// Payload is what to send to a port, nil for an empty datagram; nil
	// means portkit's payloads for well-known services.
	Payload func(port uint16) []byte
	// OnLimit, if set, is told when a target is found to rate-limit its
	// ICMP errors (and when the measured rate changes twofold, or the
	// limit lifts), from one of the engine's goroutines; it must not
	// block. ICMPLimit's String says it for a person.
	OnLimit func(ICMPLimit)
}

// NewUDP returns the UDP engine. Each probe is a datagram with the payload
// for its port; a reply is open ("udp-response"), an ICMP port unreachable
// closed ("port-unreach"), another ICMP unreachable filtered (its reason);
// silence is for the Scanner to make open|filtered.
//
// Most hosts limit the ICMP errors they send (Linux by default to one a
// second for each IPv4 peer, and ten for each IPv6 one on recent kernels,
// with a burst of six), so a fast UDP scan sees closed ports fall silent. The engine
// watches each host's answers, and when they show a limit it asks the
// Scanner (HostPacer) to pace the host's probes under it, and tells
// OnLimit.
//
// The engine returned implements HostPacer, ICMPLimitLister (the hosts
// paced now), and Flusher (raw mode) or Bounded (socket mode). In raw mode
// it needs what NewSYN needs, and opens its sockets likewise, in the
// calling thread's network namespace. Sockets cannot see ICMP errors on
// Windows, where Go turns them off (SIO_UDP_CONNRESET): closed ports end
// open|filtered there.
func NewUDP(opts UDPOptions) (Engine, error) {
	switch opts.Mode {
	case UDPRaw:
		return newRawUDP(opts)
	case UDPSockets:
		return newUDPSockets(opts), nil
	}
	e, err := newRawUDP(opts)
	var perm *PrivilegeError
	if errors.As(err, &perm) || errors.Is(err, errors.ErrUnsupported) {
		return newUDPSockets(opts), nil
	}
	return e, err
}

func udpPayload(opts UDPOptions) func(uint16) []byte {
	if opts.Payload != nil {
		return opts.Payload
	}
	return payloads.For
}

// udpSockets is the UDP engine in socket mode: a connected socket per
// probe in flight, and a goroutine reading it, which a port unreachable
// ends with ECONNREFUSED.
type udpSockets struct {
	limit   int
	why     string
	reqLim  int
	payload func(uint16) []byte
	watch   *icmpWatch
	sources sourceRing

	ctx     context.Context
	replies chan<- Reply
	conns   inflight[*net.UDPConn]
}

func newUDPSockets(opts UDPOptions) *udpSockets {
	return &udpSockets{
		reqLim:  opts.Limit,
		payload: udpPayload(opts),
		watch:   newICMPWatch(opts.OnLimit).spread(newSourceRing(opts.Sources)),
		sources: newSourceRing(opts.Sources),
	}
}

// sourceRing hands out source addresses in turn, by family.
type sourceRing struct {
	v4, v6 []netip.Addr
	n4, n6 int
}

func newSourceRing(addrs []netip.Addr) sourceRing {
	var r sourceRing
	for _, a := range addrs {
		if a = a.Unmap(); a.Is4() {
			r.v4 = append(r.v4, a)
		} else if a.Is6() {
			r.v6 = append(r.v6, a)
		}
	}
	return r
}

// next is the source for a probe to dst; ok is false when there is none
// of its family.
func (r *sourceRing) next(dst netip.Addr) (src netip.Addr, ok bool) {
	list, n := r.v6, &r.n6
	if dst.Unmap().Is4() {
		list, n = r.v4, &r.n4
	}
	if len(list) == 0 {
		return netip.Addr{}, false
	}
	src = list[*n%len(list)]
	*n++
	return src, true
}

// Name is "udp".
func (u *udpSockets) Name() string { return "udp" }

// Proto is UDP.
func (u *udpSockets) Proto() Proto { return UDP }

// MaxInFlight is the bound on sockets in flight, known after Start.
func (u *udpSockets) MaxInFlight() (int, string) { return u.limit, u.why }

// HostRate is the pace for ip's probes, if it limits its ICMP errors.
func (u *udpSockets) HostRate(ip netip.Addr) float64 { return u.watch.hostRate(ip) }

// ICMPLimits lists the hosts paced now.
func (u *udpSockets) ICMPLimits() []ICMPLimit { return u.watch.limits() }

// Start raises the open-file limit and sets the bound.
func (u *udpSockets) Start(ctx context.Context, replies chan<- Reply) error {
	var err error
	if u.limit, u.why, err = socketBound("udp", 0, u.reqLim); err != nil {
		return err
	}
	u.ctx, u.replies = ctx, replies
	return nil
}

// Send sends a datagram to p from a socket of its own.
func (u *udpSockets) Send(p Probe, attempt int) error {
	if p.Proto != UDP {
		return fmt.Errorf("udp engine: %v probe", p.Proto)
	}
	if u.conns.len() >= u.limit {
		return fmt.Errorf("udp engine: %w: %d sockets in flight", ErrBusy, u.limit)
	}
	var laddr *net.UDPAddr
	if src, ok := u.sources.next(p.IP); ok {
		laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
	}
	c, err := net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.IP, p.Port)))
	if err == nil {
		_, err = c.Write(u.payload(p.Port))
		if err != nil {
			c.Close()
		}
	}
	if err != nil {
		if udpBusy(err) {
			return fmt.Errorf("udp engine: %w: %v", ErrBusy, err)
		}
		st, reason, ok := udpVerdict(err)
		if !ok {
			return fmt.Errorf("udp engine: %v: %w", p.AddrPort(), err)
		}
		// Answered at once; passed on from a goroutine, as Send must
		// not block on replies.
		u.conns.wg.Go(func() { u.deliver(Reply{Probe: p, State: st, Reason: reason, Attempt: attempt, At: time.Now()}) })
		return nil
	}
	u.watch.sent(p.IP, p.Port, time.Now())
	u.conns.put(p, c)
	u.conns.wg.Go(func() { u.read(p, attempt, c) })
	return nil
}

// read waits for c's answer, until Done or Close closes it.
func (u *udpSockets) read(p Probe, attempt int, c *net.UDPConn) {
	// Only that a reply came matters, but a buffer too short for it is
	// an error on some systems (Windows: WSAEMSGSIZE).
	var buf [512]byte
	_, err := c.Read(buf[:])
	at := time.Now()
	u.conns.forget(p, c)
	c.Close()
	st, reason, ok := udpVerdict(err)
	if !ok {
		return // closed by Done or Close, or nothing said about the port
	}
	u.watch.answered(p.IP, p.Port, st == Closed, at)
	u.deliver(Reply{Probe: p, State: st, Reason: reason, Attempt: attempt, At: at})
}

func (u *udpSockets) deliver(r Reply) {
	select {
	case u.replies <- r:
	case <-u.ctx.Done():
	}
}

// udpVerdict maps what reading a connected UDP socket gave to an answer;
// ok is false when it says nothing of the port.
func udpVerdict(err error) (st State, reason string, ok bool) {
	var errno syscall.Errno
	switch {
	case err == nil:
		return Open, "udp-response", true
	case errors.Is(err, net.ErrClosed), !errors.As(err, &errno):
		return 0, "", false
	case errno == syscall.ECONNREFUSED:
		return Closed, "port-unreach", true
	case errno == syscall.EHOSTUNREACH:
		return Filtered, "host-unreach", true
	case errno == syscall.ENETUNREACH:
		return Filtered, "net-unreach", true
	case errno == syscall.EACCES, errno == syscall.EPERM:
		return Filtered, "admin-prohibited", true
	}
	return 0, "", false
}

// udpBusy reports whether err is running out of sockets, buffers or local
// ports: try again later.
func udpBusy(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.EADDRNOTAVAIL, syscall.EAGAIN} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Done closes p's socket, if it is still open.
func (u *udpSockets) Done(p Probe) { u.conns.done(p) }

// Close closes every socket and waits for their goroutines.
func (u *udpSockets) Close() error {
	u.conns.close()
	return nil
}

// InterfaceAddrs returns the addresses a UDP scan of dst can spread its
// probes over (UDPOptions.Sources): those of dst's family on the
// interface the route to dst leaves by, global unicast ones (and
// link-local ones for a link-local dst), the route's own source first.
// It sends nothing, and looks in the calling thread's network namespace.
func InterfaceAddrs(dst netip.Addr) ([]netip.Addr, error) {
	rt, err := rawnet.LookupRoute(dst.Unmap())
	if err != nil {
		return nil, err
	}
	if rt.Interface == nil {
		return []netip.Addr{rt.Src}, nil
	}
	addrs, err := rt.Interface.Addrs()
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", rt.Interface.Name, err)
	}
	list := []netip.Addr{rt.Src.WithZone("")}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if ip = ip.Unmap(); !ok || ip.Is4() != dst.Unmap().Is4() || ip == list[0] {
			continue
		}
		if ip.IsGlobalUnicast() || ip.IsLinkLocalUnicast() && dst.IsLinkLocalUnicast() {
			list = append(list, ip)
		}
	}
	return list, nil
}
