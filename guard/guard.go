// Package guard logs the connection attempts this host refuses and
// detects port scans as they happen: the scan's type, its source or
// sources, the ports, and optionally blocks the scanner for a time.
//
// The detection Engine is pure (packets with timestamps in, events out);
// a Guard runs it over a live capture (Linux: AF_PACKET with a BPF
// filter, internal/packetring) or a capture file (pcap, pcapng), writes
// what it finds to sinks, and hands scanners to a Blocker.
package guard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// Blocker blocks a source address for a time: portkit's firewall package
// implements it with nftables.
type Blocker interface {
	Block(ctx context.Context, addr netip.Addr, d time.Duration) error
}

// Options configure a Guard.
type Options struct {
	Config Config
	// Sinks receive every event, in order; an error of one stops the
	// Guard (Run returns a *SinkError).
	Sinks []func(Event) error
	// Blocker, with BlockFor above zero, blocks each scan's sources.
	Blocker  Blocker
	BlockFor time.Duration
	// Local reports this host's own addresses, which are never blocked.
	Local  func(netip.Addr) bool
	Logger *slog.Logger
}

// SinkError is an event a sink could not take.
type SinkError struct{ Err error }

func (e *SinkError) Error() string { return fmt.Sprintf("write event: %v", e.Err) }
func (e *SinkError) Unwrap() error { return e.Err }

// Guard runs the engine and acts on what it finds. Its methods may be
// called from several goroutines.
type Guard struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	engine  *Engine
	blocked map[netip.Addr]time.Time // until when
	nBlock  uint64
	sinkErr error
	dropped func() uint64 // packets the capture lost, nil without one
}

// NewGuard returns a Guard.
func NewGuard(opts Options) *Guard {
	g := &Guard{opts: opts, log: opts.Logger, blocked: map[netip.Addr]time.Time{}}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	g.engine = New(opts.Config, g.emit)
	return g
}

// Reload replaces the detection settings.
func (g *Guard) Reload(cfg Config) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.engine.SetConfig(cfg)
}

// Packet takes one packet.
func (g *Guard) Packet(p *Packet) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.engine.Packet(p)
}

// Tick moves time on.
func (g *Guard) Tick(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.engine.Tick(now)
	for a, until := range g.blocked {
		if now.After(until) {
			delete(g.blocked, a)
		}
	}
}

// Flush ends everything going on, as at the end of a capture.
func (g *Guard) Flush(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.engine.Flush(now)
}

// Err is the first sink error, if any.
func (g *Guard) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sinkErr
}

// Stats are the engine's counters, with the blocks.
func (g *Guard) Stats() (Stats, uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.engine.Stats(), g.nBlock
}

// emit is the engine's sink; it runs with g.mu held.
func (g *Guard) emit(ev Event) {
	if a := ev.Alert; a != nil && g.opts.Blocker != nil && g.opts.BlockFor > 0 && a.Phase != PhaseEnd {
		for _, src := range a.Sources {
			if _, done := g.blocked[src]; done || (g.opts.Local != nil && g.opts.Local(src)) || g.engine.allowed(src) {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := g.opts.Blocker.Block(ctx, src, g.opts.BlockFor)
			cancel()
			if err != nil {
				g.log.Error("block failed", "source", src.String(), "err", err.Error())
				continue
			}
			g.blocked[src] = a.Time.Add(g.opts.BlockFor)
			g.nBlock++
			g.log.Info("blocked", "source", src.String(), "for", g.opts.BlockFor.String(), "scan", a.ID)
		}
		for _, src := range a.Sources {
			if _, ok := g.blocked[src]; ok {
				a.Blocked = append(a.Blocked, src)
			}
		}
	}
	if g.sinkErr != nil {
		return
	}
	for _, s := range g.opts.Sinks {
		if err := s(ev); err != nil {
			g.sinkErr = &SinkError{err}
			return
		}
	}
}

// Replay runs the detection over a capture file (pcap or pcapng) and
// ends every scan at its end. Where the capture does not tell a packet's
// direction (Ethernet, raw IP), local names this host's addresses: a
// packet from one is outgoing; nil is then an error.
func (g *Guard) Replay(ctx context.Context, r io.Reader, local func(netip.Addr) bool) error {
	cr, err := NewCaptureReader(r)
	if err != nil {
		return err
	}
	var (
		p    Packet
		last time.Time
	)
	for n := 0; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		f, err := cr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		p.At = f.At
		switch f.Dir {
		case DirOut:
			p.Outgoing = true
		case DirIn:
			p.Outgoing = false
		default:
			if local == nil {
				return &CaptureError{Offset: cr.off, What: "the capture does not say which packets this host sent: name its addresses"}
			}
		}
		if Parse(f.IP, &p) != nil {
			continue
		}
		if f.Dir == DirUnknown {
			p.Outgoing = local(p.Src)
		}
		last = p.At
		g.Packet(&p)
		if err := g.Err(); err != nil {
			return err
		}
	}
	g.Flush(last.Add(time.Hour))
	return g.Err()
}
