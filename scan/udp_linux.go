package scan

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/portkit/portkit/scan/internal/rawnet"
)

// rawUDP is the UDP engine in raw mode; see NewUDP.
type rawUDP struct {
	*rawCore
	payload func(uint16) []byte
	watch   *icmpWatch
	sources sourceRing
}

func newRawUDP(opts UDPOptions) (Engine, error) {
	core, err := openRawCore("udp", opts.SourcePort, opts.Batch)
	if err != nil {
		return nil, err
	}
	e := &rawUDP{rawCore: core, payload: udpPayload(opts), watch: newICMPWatch(opts.OnLimit).spread(newSourceRing(opts.Sources)), sources: newSourceRing(opts.Sources)}
	core.handle = e.handle
	return e, nil
}

// Name is "udp".
func (e *rawUDP) Name() string { return "udp" }

// Proto is UDP.
func (e *rawUDP) Proto() Proto { return UDP }

// HostRate is the pace for ip's probes, if it limits its ICMP errors.
func (e *rawUDP) HostRate(ip netip.Addr) float64 { return e.watch.hostRate(ip) }

// ICMPLimits lists the hosts paced now.
func (e *rawUDP) ICMPLimits() []ICMPLimit { return e.watch.limits() }

// Send queues a datagram to p.
func (e *rawUDP) Send(p Probe, attempt int) error {
	src, ok, err := e.prepare(p, UDP)
	if !ok {
		return err
	}
	// The route's source, or the next of Sources: the receiver's filter
	// is on the port alone, so it takes the answers to any of them.
	if s, ok := e.sources.next(p.IP); ok {
		src = s
	}
	pkt, err := rawnet.AppendUDP(e.buf(), rawnet.UDP{
		Src:     netip.AddrPortFrom(src, e.port),
		Dst:     netip.AddrPortFrom(p.IP.Unmap(), p.Port),
		Payload: e.payload(p.Port),
	})
	if err != nil {
		return fmt.Errorf("udp engine: %v: %w", p.AddrPort(), err)
	}
	e.watch.sent(p.IP, p.Port, time.Now())
	return e.push(p, pkt)
}

// handle turns a packet the receiver read into a Reply. UDP probes carry
// no cookie: an answer is matched by its ports, and the Scanner ignores
// one for a probe it does not have outstanding.
func (e *rawUDP) handle(r *rawnet.Reply, at time.Time) {
	p, st, ok := e.answer(r, UDP)
	if !ok {
		return
	}
	e.watch.answered(p.IP, p.Port, st == Closed, at)
	e.deliver(Reply{Probe: p, State: st, Reason: r.Reason(), TTL: r.TTL, At: at})
}
