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
	Sinks []Sink
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

	// Blocks run outside mu, one at a time, in a goroutine of their own
	// while blockQueue has work: a slow firewall must not stop the
	// packets. blocking is every source queued or being blocked, so a
	// source is never handed to the Blocker twice at once.
	blockQueue []blockRequest
	blocking   map[netip.Addr]struct{}
	blockRuns  bool
	blockIdle  *sync.Cond // on mu: blockRuns became false
}

// blockRequest is a source to block, for a scan reported at at.
type blockRequest struct {
	src  netip.Addr
	at   time.Time
	scan uint64
}

// maxBlockQueue bounds the sources waiting for the Blocker (a
// distributed scan of spoofed sources can name thousands); past it a
// source is not blocked, and that is logged.
const maxBlockQueue = 4096

// blockTimeout bounds one call of the Blocker.
const blockTimeout = 5 * time.Second

// NewGuard returns a Guard.
func NewGuard(opts Options) *Guard {
	g := &Guard{opts: opts, log: opts.Logger, blocked: map[netip.Addr]time.Time{}, blocking: map[netip.Addr]struct{}{}}
	g.blockIdle = sync.NewCond(&g.mu)
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

// Idle says no packet is waiting: the sinks write what they hold back.
func (g *Guard) Idle() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.flushSinks()
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
	g.flushSinks()
}

// Flush ends everything going on, as at the end of a capture, and has
// the sinks write everything.
func (g *Guard) Flush(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.engine.Flush(now)
	g.flushSinks()
}

// flushSinks has each sink write what it holds back. It runs with g.mu
// held.
func (g *Guard) flushSinks() {
	if g.sinkErr != nil {
		return
	}
	for _, s := range g.opts.Sinks {
		if err := s.Flush(); err != nil {
			g.sinkErr = &SinkError{err}
			return
		}
	}
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

// emit is the engine's sink; it runs with g.mu held. The blocks it
// asks for run after it, outside the lock: an alert lists in Blocked the
// sources whose block the Blocker has confirmed by the time of the
// report, so the start of a scan usually does not, and its next report
// does.
func (g *Guard) emit(ev Event) {
	if a := ev.Alert; a != nil && g.opts.Blocker != nil && g.opts.BlockFor > 0 {
		for _, src := range a.Sources {
			if a.Phase != PhaseEnd {
				g.requestBlock(src, a)
			}
			if _, ok := g.blocked[src]; ok {
				a.Blocked = append(a.Blocked, src)
			}
		}
	}
	if g.sinkErr != nil {
		return
	}
	for _, s := range g.opts.Sinks {
		if err := s.Event(ev); err != nil {
			g.sinkErr = &SinkError{err}
			return
		}
	}
}

// requestBlock queues src to be blocked unless it is blocked, being
// blocked, local or allowed. It runs with g.mu held.
func (g *Guard) requestBlock(src netip.Addr, a *Alert) {
	if _, done := g.blocked[src]; done {
		return
	}
	if _, queued := g.blocking[src]; queued || (g.opts.Local != nil && g.opts.Local(src)) || g.engine.allowed(src) {
		return
	}
	if len(g.blockQueue) >= maxBlockQueue {
		g.log.Error("block failed", "source", src.String(), "scan", a.ID, "err", fmt.Sprintf("%d sources already wait for the blocker", len(g.blockQueue)))
		return
	}
	g.blocking[src] = struct{}{}
	g.blockQueue = append(g.blockQueue, blockRequest{src: src, at: a.Time, scan: a.ID})
	if !g.blockRuns {
		g.blockRuns = true
		go g.runBlocks()
	}
}

// runBlocks hands the queued sources to the Blocker, one at a time and
// without g.mu, until the queue is empty.
func (g *Guard) runBlocks() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for len(g.blockQueue) > 0 {
		r := g.blockQueue[0]
		g.blockQueue[0] = blockRequest{}
		g.blockQueue = g.blockQueue[1:]
		g.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), blockTimeout)
		err := g.opts.Blocker.Block(ctx, r.src, g.opts.BlockFor)
		cancel()
		g.mu.Lock()
		delete(g.blocking, r.src)
		if err != nil {
			g.log.Error("block failed", "source", r.src.String(), "scan", r.scan, "err", err.Error())
			continue
		}
		g.blocked[r.src] = r.at.Add(g.opts.BlockFor)
		g.nBlock++
		g.log.Info("blocked", "source", r.src.String(), "for", g.opts.BlockFor.String(), "scan", r.scan)
	}
	g.blockQueue = nil
	g.blockRuns = false
	g.blockIdle.Broadcast()
}

// WaitBlocks waits until every block asked for so far is done (or has
// failed).
func (g *Guard) WaitBlocks() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.blockRuns {
		g.blockIdle.Wait()
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
	// The scans' summaries name the sources blocked meanwhile.
	g.WaitBlocks()
	g.Flush(last.Add(time.Hour))
	return g.Err()
}
