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
	seq := rawnet.Cookie(e.key, src, dst, e.port, p.Port) + synAttemptCode(attempt)
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
		return fmt.Errorf("syn engine: %v:%d: %w", p.IP, p.Port, err)
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
	attempt, ok := synAttempt(e.key, r)
	if !ok {
		e.invalid.Add(1)
		return
	}
	e.deliver(Reply{Probe: p, State: st, Reason: r.Reason(), TTL: r.TTL, Attempt: attempt, At: at})
}

// synAttempts is how many attempts a SYN's sequence number tells apart:
// it is the cookie plus the attempt less one, the last code standing for
// that attempt and all later ones. A forged answer passes one time in
// 2³²/synAttempts, where rawnet.ValidCookie's exact match passes one in
// 2³²; in return the Scanner can time the answer to a retransmission.
const synAttempts = 16

func synAttemptCode(attempt int) uint32 {
	return uint32(min(max(attempt, 1), synAttempts) - 1)
}

// synAttempt checks that r answers a SYN of this scan, as
// rawnet.ValidCookie does, and returns the attempt it answers: 0 for one
// past synAttempts−1, which the code cannot tell.
func synAttempt(key [16]byte, r *rawnet.Reply) (attempt int, ok bool) {
	var code uint32
	switch r.Proto {
	case rawnet.ProtoTCP:
		if r.Flags&rawnet.FlagACK == 0 {
			return 0, false
		}
		code = r.Ack - 1 - rawnet.Cookie(key, r.Dst, r.Src, r.DstPort, r.SrcPort)
	case rawnet.ProtoICMP, rawnet.ProtoICMPv6:
		o := &r.Orig
		if o.Proto != rawnet.ProtoTCP {
			return 0, false
		}
		code = o.Seq - rawnet.Cookie(key, o.Src, o.Dst, o.SrcPort, o.DstPort)
	default:
		return 0, false
	}
	switch {
	case code >= synAttempts:
		return 0, false
	case code == synAttempts-1:
		return 0, true
	}
	return int(code) + 1, true
}
