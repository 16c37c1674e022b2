package scan

import (
	"crypto/rand"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/portkit/portkit/scan/internal/rawnet"
)

// synEngine is the SYN engine on Linux; see NewSYN.
type synEngine struct {
	*rawCore
	key     [16]byte
	invalid atomic.Uint64
}

func newSYN(opts SYNOptions) (Engine, error) {
	core, err := openRawCore("syn", opts.SourcePort, opts.Batch)
	if err != nil {
		return nil, err
	}
	e := &synEngine{rawCore: core}
	core.handle = e.handle
	rand.Read(e.key[:])
	return e, nil
}

// Name is "syn".
func (e *synEngine) Name() string { return "syn" }

// Proto is TCP.
func (e *synEngine) Proto() Proto { return TCP }

// Send queues a SYN to p.
func (e *synEngine) Send(p Probe, attempt int) error {
	src, ok, err := e.prepare(p, TCP)
	if !ok {
		return err
	}
	dst := p.IP.Unmap()
	// Every attempt carries the same sequence number. A retransmitted SYN
	// with another one, reaching a port whose SYN-ACK to the first was lost
	// (the port sits in SYN-RECV), is answered with a reset (RFC 793's
	// unacceptable SYN; Linux's tcp_check_req): an open port would read as
	// closed under loss. The same SYN again draws the SYN-ACK again.
	seq := rawnet.Cookie(e.key, src, dst, e.port, p.Port)
	pkt, err := rawnet.AppendTCP(e.buf(), rawnet.TCP{
		Src:   netip.AddrPortFrom(src, e.port),
		Dst:   netip.AddrPortFrom(dst, p.Port),
		Seq:   seq,
		Flags: rawnet.FlagSYN,
		// A small window and an MSS option, as nmap's SYN scan sends.
		Window: 1024,
		MSS:    1460,
		ID:     uint16(seq >> 16),
	})
	if err != nil {
		return fmt.Errorf("syn engine: %v: %w", p.AddrPort(), err)
	}
	return e.push(p, pkt)
}

func (e *synEngine) stats() rawStats { return e.rawStats(e.invalid.Load()) }

// handle turns a packet the receiver read into a Reply.
func (e *synEngine) handle(r *rawnet.Reply, at time.Time) {
	p, st, ok := e.answer(r, TCP)
	if !ok {
		return
	}
	if !rawnet.ValidCookie(e.key, r) {
		e.invalid.Add(1)
		return
	}
	// Attempt 0: the answer cannot tell which attempt it answers.
	e.deliver(Reply{Probe: p, State: st, Reason: r.Reason(), TTL: r.TTL, At: at})
}
