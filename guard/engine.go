package guard

import (
	"cmp"
	"hash/maphash"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// probeKind is what a probe was, from the packets.
type probeKind uint8

const (
	kindSYNRaw   probeKind = iota // a SYN refused or dropped, without the options of an OS stack
	kindSYNStack                  // a SYN refused or dropped, with SACK and timestamps (an OS's connect)
	kindHalfOpen                  // SYN, SYN-ACK, then the sender's RST: half-open
	kindConnect                   // the handshake completed
	kindFIN
	kindNULL
	kindXmas
	kindACK // ACK alone: ACK and Window scans look the same on the wire
	kindMaimon
	kindUDP
	numKinds
)

// pending is an attempt waiting for its answer.
type pending struct {
	src      *source // as it was when the attempt came: sourceOf checks it still is
	flow     Flow
	at       time.Time
	kind     probeKind
	flags    uint8
	ttl      uint8
	ipid     uint16
	seq      uint32
	queued   bool   // in Engine.queue, at qseq
	qseq     uint64 // its place: Engine.queue[qseq-Engine.queueBase]
	toolBits uint8
	// early: its port was weighed in scan detection when it came, not
	// when its answer did (countsAtOnce, or a prober's SYN); typed: its
	// kind was counted as evidence then too (only a SYN's kind waits for
	// the answer: refused, half-open or completed).
	early, typed bool
}

const (
	toolZmap    = 1
	toolMasscan = 2
)

type portKey struct {
	proto Proto
	port  uint16
}

// source is what guard keeps of one remote address, while it matters.
// Under a flood of spoofed sources there are max_sources of them, each
// seen once: a source that has probed one port of one target keeps that
// port in place (one, port0, dst0), and the maps of sourcePorts are made
// only when it probes a second. Times are Unix nanoseconds: a time.Time
// is three times the size.
type source struct {
	addr       netip.Addr
	prev, next *source // in Engine.lru, most recent first
	alert      *alert
	ports      *sourcePorts // nil while one port or none was probed

	lastSeen int64
	first    int64 // the first counted probe; 0: none (since a join)
	// scanlogd's short window: weighted distinct ports with gaps below
	// Config.ShortGap; the ports are port0 or ports.short.
	shortLast   int64
	shortWeight int

	tokens     float64
	tokensAt   int64
	suppressed int

	// The one port and target probed while ports is nil, if one is.
	dst0     netip.Addr
	port0    portKey
	one      bool
	firstTTL uint8

	evidence [numKinds]uint32
	tools    [3]uint32
}

// sourcePorts is a source's state of more than one port or target.
type sourcePorts struct {
	short map[portKey]struct{} // the short window's ports
	// The long window: when each distinct port was last probed.
	long map[portKey]time.Time
	// Sweeps: the local addresses each port was probed on.
	sweep    map[portKey]map[netip.Addr]struct{}
	accepted map[portKey]struct{} // ports whose handshake completed, a few
	targets  map[netip.Addr]struct{}
}

// portState returns the maps of s, made now if they were not, holding
// the one port it probed so far if it did: what they would hold had they
// been made with its first probe.
func (s *source) portState() *sourcePorts {
	if s.ports != nil {
		return s.ports
	}
	p := &sourcePorts{}
	if s.one {
		p.short = map[portKey]struct{}{s.port0: {}}
		p.long = map[portKey]time.Time{s.port0: time.Unix(0, s.shortLast)}
		p.sweep = map[portKey]map[netip.Addr]struct{}{s.port0: {s.dst0: {}}}
		p.targets = map[netip.Addr]struct{}{s.dst0: {}}
		s.one, s.dst0 = false, netip.Addr{}
	}
	s.ports = p
	return p
}

func (s *source) evidenceCounts() [numKinds]int {
	var out [numKinds]int
	for i, n := range s.evidence {
		out[i] = int(n)
	}
	return out
}

// alert is a scan being reported.
type alert struct {
	Alert
	sources  map[netip.Addr]struct{}
	targets  map[netip.Addr]struct{}
	tcp, udp map[uint16]struct{}
	evidence [numKinds]int
	tools    [3]int
	lastEmit time.Time
	changed  bool
}

// Stats are the engine's counters and sizes.
type Stats struct {
	Packets  uint64            // packets handed to the engine
	Attempts uint64            // connection attempts resolved
	Refused  uint64            // of which refused
	Scans    map[string]uint64 // scans started, by type
	Sources  int               // tracked now
	Pending  int               // attempts awaiting their answer now
	Alerts   int               // scans going on now
	Evicted  uint64
}

// Engine detects scans from packets. It is pure: packets in, with their
// timestamps, events out to the sink; time moves only with the packets
// and with Tick. It is not safe for concurrent use.
type Engine struct {
	cfg  Config
	sink func(Event)

	sources      map[netip.Addr]*source
	lruHead      *source // most recent
	lruTail      *source
	pending      map[Flow]*pending
	queue        []*pending // by arrival
	queueHead    int
	queueBase    uint64     // the qseq of queue[0]; a decided attempt's place is nil
	freePending  []*pending // decided, to use again
	stray        [strayCacheSize]strayEntry
	seed         maphash.Seed
	alerts       []*alert // going on, by ID: the order they started in
	nextID       uint64
	coverage     map[portKey]coverEntry
	coverSources map[netip.Addr]int

	// The rate limit of attempts logged, all sources together.
	allTokens     float64
	allTokensAt   time.Time
	allSuppressed int
	lastMaint     time.Time

	// mapsOnly makes every source's maps with its first probe, as
	// before sources kept one port in place: TestOnePortInPlace checks
	// that both report the same.
	mapsOnly bool

	stats Stats
}

// strayCacheSize is how many recent ACK and FIN+ACK packets without a
// known attempt are remembered, to tell an ACK or Maimon probe once this
// host resets it. Legitimate traffic is mostly such packets, so they get
// a fixed array (overwritten on collision), not a map.
const strayCacheSize = 4096

type strayEntry struct {
	flow  Flow
	at    time.Time
	flags uint8
	ttl   uint8
}

type coverEntry struct {
	src netip.Addr
	at  time.Time
	dst netip.Addr
}

// New returns an engine that sends what it finds to sink. cfg is
// validated by the caller (Config.Validate); zero fields take defaults.
func New(cfg Config, sink func(Event)) *Engine {
	return &Engine{
		cfg:          cfg.withDefaults(),
		sink:         sink,
		sources:      map[netip.Addr]*source{},
		pending:      map[Flow]*pending{},
		seed:         maphash.MakeSeed(),
		coverage:     map[portKey]coverEntry{},
		coverSources: map[netip.Addr]int{},
		stats:        Stats{Scans: map[string]uint64{}},
	}
}

// SetConfig replaces the configuration; state is kept, and limits apply
// from the next packet.
func (e *Engine) SetConfig(cfg Config) { e.cfg = cfg.withDefaults() }

// Config is the configuration in effect, with defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// Stats returns the counters and the sizes of the state now.
func (e *Engine) Stats() Stats {
	s := e.stats
	s.Scans = make(map[string]uint64, len(e.stats.Scans))
	for k, v := range e.stats.Scans {
		s.Scans[k] = v
	}
	s.Sources = len(e.sources)
	s.Pending = len(e.pending)
	s.Alerts = len(e.alerts)
	return s
}

// Packet takes one packet. Packets should come in time order; Tick is
// called on each.
func (e *Engine) Packet(p *Packet) {
	e.stats.Packets++
	e.Tick(p.At)
	if p.Outgoing {
		e.outgoing(p)
		return
	}
	switch p.Proto {
	case TCP:
		e.inboundTCP(p)
	case UDP:
		if _, ok := e.pending[p.Flow]; !ok {
			e.addPending(p, kindUDP)
		}
	case ICMP:
		// Echo requests are logged with LogAll; other ICMP is answers to
		// this host's own traffic.
		if e.cfg.LogAll && (p.Src.Is4() && p.ICMPType == 8 || !p.Src.Is4() && p.ICMPType == 128) {
			s := e.source(p.Src, p.At)
			e.log(s, Attempt{Time: p.At, Flow: p.Flow, Flags: p.ICMPType, TTL: p.TTL, Answer: AnswerNone})
		}
	}
}

func (e *Engine) inboundTCP(p *Packet) {
	f := p.Flags &^ (ECE | CWR)
	pd := e.pending[p.Flow]
	switch {
	case f&SYN != 0 && f&ACK == 0 && f&RST == 0:
		if pd == nil {
			e.addPending(p, kindSYNRaw)
		}
	case f&RST != 0:
		if pd != nil && pd.kind <= kindSYNStack {
			e.resolve(pd, p.At, kindHalfOpen, AnswerHalfOpen)
		}
	case f&ACK != 0 && f&SYN == 0 && pd != nil && pd.kind <= kindSYNStack:
		e.resolve(pd, p.At, kindConnect, AnswerAccepted)
	case pd != nil:
	case f == 0:
		e.addPending(p, kindNULL)
	case f == FIN:
		e.addPending(p, kindFIN)
	case f == FIN|PSH|URG:
		e.addPending(p, kindXmas)
	case f == ACK || f == FIN|ACK:
		// Most of these belong to connections; only this host's reset
		// shows one was a probe.
		se := &e.stray[maphash.Comparable(e.seed, p.Flow)%strayCacheSize]
		*se = strayEntry{flow: p.Flow, at: p.At, flags: f, ttl: p.TTL}
	}
}

func (e *Engine) outgoing(p *Packet) {
	switch {
	case p.Proto == TCP && p.Flags&RST != 0:
		in := p.Flow.Reverse()
		if pd := e.pending[in]; pd != nil {
			e.resolve(pd, p.At, pd.kind, AnswerRST)
			return
		}
		se := &e.stray[maphash.Comparable(e.seed, in)%strayCacheSize]
		if se.flow == in && p.At.Sub(se.at) <= e.cfg.AnswerWait {
			kind := kindACK
			if se.flags&FIN != 0 {
				kind = kindMaimon
			}
			pd := &pending{flow: in, at: se.at, kind: kind, flags: se.flags, ttl: se.ttl}
			*se = strayEntry{}
			e.resolve(pd, p.At, kind, AnswerRST)
		}
	case p.Unreachable() && p.Quoted.Proto != 0:
		if pd := e.pending[p.Quoted]; pd != nil {
			e.resolve(pd, p.At, pd.kind, AnswerICMP)
		}
	}
}

func (e *Engine) addPending(p *Packet, kind probeKind) {
	if kind == kindSYNRaw && p.SACKTS {
		kind = kindSYNStack
	}
	pd := e.newPending()
	*pd = pending{flow: p.Flow, at: p.At, kind: kind, flags: p.Flags, ttl: p.TTL, ipid: p.IPID, seq: p.Seq}
	if kind <= kindSYNStack {
		if p.IPID == 54321 {
			pd.toolBits |= toolZmap
		}
		if p.Dst.Is4() {
			d := p.Dst.As4()
			ip := uint32(d[0])<<24 | uint32(d[1])<<16 | uint32(d[2])<<8 | uint32(d[3])
			if uint16(ip^uint32(p.DstPort)^p.Seq) == p.IPID {
				pd.toolBits |= toolMasscan
			}
		}
	}
	e.pending[p.Flow] = pd
	if len(e.queue) == cap(e.queue) && e.queueHead >= len(e.queue)/2 {
		// The decided half at the front makes room: the queue moves
		// rather than grows.
		n := copy(e.queue, e.queue[e.queueHead:])
		clear(e.queue[n:])
		e.queueBase += uint64(e.queueHead)
		e.queue, e.queueHead = e.queue[:n], 0
	}
	pd.queued, pd.qseq = true, e.queueBase+uint64(len(e.queue))
	e.queue = append(e.queue, pd)
	pd.src = e.source(p.Src, p.At) // the source is seen, and so kept or evicted
	if !e.allowed(p.Src) {
		switch {
		case e.countsAtOnce(pd):
			// Weighed now, as scanlogd weighs every packet when it
			// comes: waiting for its answer (up to AnswerWait for an
			// open port, which does not answer these) would change
			// only when a scan is seen, not whether. Its answer is
			// still logged when known.
			pd.early, pd.typed = true, true
			e.probe(pd.src, pd, kind, AnswerNone, p.At)
		case kind <= kindSYNStack && e.probing(pd.src, p.At):
			// A prober's SYN weighs whatever its answer (see
			// probing), so it weighs now: the packet is seen here
			// before this host's stack has even answered it. What it
			// was (refused, half-open, completed) counts towards the
			// scan's type when the answer comes.
			pd.early = true
			e.weigh(pd.src, pd, p.At)
		}
	}
	// Memory stays flat under a flood: the oldest attempt is decided
	// early once there are too many.
	for len(e.pending) > e.cfg.maxPending() {
		e.expireOne(p.At)
	}
	if len(e.queue)-e.queueHead > 2*e.cfg.maxPending()+64 {
		e.compactQueue()
	}
}

// newPending is a pending attempt, one decided earlier if there is one to
// use again: a flood makes and decides one per packet.
func (e *Engine) newPending() *pending {
	if n := len(e.freePending); n > 0 {
		pd := e.freePending[n-1]
		e.freePending[n-1] = nil
		e.freePending = e.freePending[:n-1]
		return pd
	}
	return &pending{}
}

// freePendingOne keeps a decided attempt for newPending: nothing refers
// to it any more.
func (e *Engine) freePendingOne(pd *pending) {
	if len(e.freePending) < maxFreePending {
		*pd = pending{}
		e.freePending = append(e.freePending, pd)
	}
}

// maxFreePending bounds the decided attempts kept for newPending.
const maxFreePending = 4096

func (e *Engine) compactQueue() {
	q := e.queue[:0]
	e.queueBase = 0
	for _, pd := range e.queue[e.queueHead:] {
		if pd != nil {
			pd.qseq = uint64(len(q))
			q = append(q, pd)
		}
	}
	clear(e.queue[len(q):])
	e.queue, e.queueHead = q, 0
}

// expireOne decides the oldest pending attempt: no answer came.
func (e *Engine) expireOne(now time.Time) {
	e.popDecided()
	if e.queueHead == len(e.queue) {
		return
	}
	pd := e.queue[e.queueHead]
	e.queue[e.queueHead] = nil
	e.queueHead++
	pd.queued = false
	answer := AnswerNone
	if pd.kind <= kindSYNStack {
		answer = AnswerDropped
	}
	e.resolve(pd, now, pd.kind, answer)
	e.popDecided()
}

// popDecided moves the queue's head past the places of attempts decided
// already.
func (e *Engine) popDecided() {
	for e.queueHead < len(e.queue) && e.queue[e.queueHead] == nil {
		e.queueHead++
	}
	if e.queueHead == len(e.queue) {
		e.queueBase += uint64(e.queueHead)
		e.queue, e.queueHead = e.queue[:0], 0
	}
}

// Tick moves the engine's time to now: attempts whose answer did not come
// in time are decided, scans report and end, idle sources are let go.
func (e *Engine) Tick(now time.Time) {
	// Only the oldest attempt still waiting, if its wait is over: an
	// attempt decided already, at the head, says nothing of the next.
	for e.popDecided(); e.queueHead < len(e.queue) && now.Sub(e.queue[e.queueHead].at) >= e.cfg.AnswerWait; {
		e.expireOne(now)
	}
	// The rest walks whole tables: not for every packet.
	if now.Sub(e.lastMaint) < maintEvery && !e.lastMaint.IsZero() {
		return
	}
	e.lastMaint = now
	for _, a := range e.sortedAlerts() {
		switch {
		case now.Sub(a.Last) >= e.cfg.EndAfter:
			e.endAlert(a, now)
		case a.changed && now.Sub(a.lastEmit) >= e.cfg.UpdateEvery:
			e.emitAlert(a, PhaseUpdate, now)
		}
	}
	idle := max(e.cfg.LongWindow, e.cfg.DistWindow, e.cfg.ShortGap)
	// Idle sources go, but not those of a scan going on: it still names
	// them.
	for s := e.lruTail; s != nil && now.UnixNano()-s.lastSeen > int64(idle); {
		prev := s.prev
		if s.alert == nil {
			e.dropSource(s)
		}
		s = prev
	}
	for k, c := range e.coverage {
		if now.Sub(c.at) > e.cfg.DistWindow {
			e.uncover(k, c)
		}
	}
}

// maintEvery is how often (in the packets' time) Tick ends scans, reports
// them, and lets idle sources and old coverage go.
const maintEvery = 100 * time.Millisecond

// Flush decides every pending attempt and ends every scan, as at the end
// of a capture file.
func (e *Engine) Flush(now time.Time) {
	for e.queueHead < len(e.queue) {
		e.expireOne(now)
	}
	for _, a := range e.sortedAlerts() {
		e.endAlert(a, now)
	}
}

// sortedAlerts is a copy of the scans going on, by ID, for a loop that
// may end some.
func (e *Engine) sortedAlerts() []*alert { return slices.Clone(e.alerts) }

// source returns the state of addr, made on first sight, and marks it
// the most recent.
func (e *Engine) source(addr netip.Addr, now time.Time) *source {
	s := e.sources[addr]
	if s == nil {
		// At the cap, the least recent source goes, and its memory is
		// this one's: under a flood of spoofed sources every packet
		// brings a new one.
		var old *source
		for len(e.sources) >= e.cfg.MaxSources && e.lruTail != nil {
			e.stats.Evicted++
			old = e.lruTail
			e.dropSource(old)
		}
		if old == nil {
			old = &source{}
		}
		s = old
		*s = source{addr: addr, tokens: float64(e.cfg.LogBurst), tokensAt: now.UnixNano()}
		e.sources[addr] = s
	} else {
		e.unlink(s)
	}
	e.link(s, now)
	return s
}

// sourceOf is the source of an attempt: the one it was made with, unless
// that source was let go since (then found or made again).
func (e *Engine) sourceOf(pd *pending, now time.Time) *source {
	if s := pd.src; s != nil && s.addr == pd.flow.Src {
		e.unlink(s)
		e.link(s, now)
		return s
	}
	return e.source(pd.flow.Src, now)
}

// link makes s the most recent source, seen now.
func (e *Engine) link(s *source, now time.Time) {
	s.lastSeen = now.UnixNano()
	s.next = e.lruHead
	if e.lruHead != nil {
		e.lruHead.prev = s
	}
	e.lruHead = s
	if e.lruTail == nil {
		e.lruTail = s
	}
}

func (e *Engine) unlink(s *source) {
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		e.lruHead = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		e.lruTail = s.prev
	}
	s.prev, s.next = nil, nil
}

func (e *Engine) dropSource(s *source) {
	e.unlink(s)
	delete(e.sources, s.addr)
	s.addr = netip.Addr{} // not a source any more, for sourceOf
}

func (e *Engine) allowed(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range e.cfg.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// resolve decides an attempt: it is logged, and counted as a probe.
func (e *Engine) resolve(pd *pending, now time.Time, kind probeKind, answer Answer) {
	if e.pending[pd.flow] == pd {
		delete(e.pending, pd.flow)
	}
	if pd.queued {
		// Its place in the queue is let go now, not when its wait would
		// have ended: a flood answered at once leaves no attempts
		// behind.
		e.queue[pd.qseq-e.queueBase] = nil
		pd.queued = false
	}
	defer e.freePendingOne(pd)
	e.stats.Attempts++
	if answer.Refused() {
		e.stats.Refused++
	}
	s := e.sourceOf(pd, now)
	if answer.Refused() || e.cfg.LogAll {
		e.log(s, Attempt{Time: pd.at, Flow: pd.flow, Flags: pd.flags, TTL: pd.ttl, Answer: answer})
	}
	switch {
	case e.allowed(pd.flow.Src):
	case !pd.early:
		e.probe(s, pd, kind, answer, now)
	case !pd.typed:
		e.evidence(s, pd, kind)
	}
}

// countsAtOnce reports whether an attempt weighs in scan detection
// whatever its answer, so that it can be weighed when it comes: the
// stealth probes (no connection sends a lone FIN, no flags, or FIN, PSH
// and URG) and UDP to a port outside the ephemeral range (see counted).
// A SYN waits for its answer: a completed handshake does not count.
func (e *Engine) countsAtOnce(pd *pending) bool {
	switch pd.kind {
	case kindNULL, kindFIN, kindXmas:
		return true
	case kindUDP:
		return pd.flow.DstPort < e.cfg.EphemeralLow || pd.flow.DstPort > e.cfg.EphemeralHigh
	}
	return false
}

// log writes an attempt unless its source is over its rate, or all
// sources together over theirs: a flood from spoofed sources, each new,
// must not fill a disk either. a is taken by value, and copied to the
// heap only when it is written: under a flood most are not.
func (e *Engine) log(s *source, a Attempt) {
	if at := a.Time.UnixNano(); at > s.tokensAt {
		el := time.Duration(at - s.tokensAt).Seconds()
		s.tokens = min(float64(e.cfg.LogBurst), s.tokens+el*e.cfg.LogRate)
		s.tokensAt = at
	}
	if el := a.Time.Sub(e.allTokensAt).Seconds(); el > 0 || e.allTokensAt.IsZero() {
		if e.allTokensAt.IsZero() {
			e.allTokens = e.cfg.LogTotalRate
		}
		e.allTokens = min(e.cfg.LogTotalRate, e.allTokens+max(el, 0)*e.cfg.LogTotalRate)
		e.allTokensAt = a.Time
	}
	if s.tokens < 1 {
		s.suppressed++
		return
	}
	if e.allTokens < 1 {
		e.allSuppressed++
		return
	}
	s.tokens--
	e.allTokens--
	a.Suppressed, s.suppressed = s.suppressed, 0
	a.SuppressedAll, e.allSuppressed = e.allSuppressed, 0
	// A copy made here: &a would move every call's a to the heap.
	logged := a
	e.sink(Event{Attempt: &logged})
}

// counted reports whether an attempt weighs in scan detection: not when
// it was accepted (monitoring and clients complete their handshakes), nor
// UDP left unanswered on an ephemeral port (the replies to this host's
// own queries look just like that).
func (e *Engine) counted(pd *pending, kind probeKind, answer Answer) bool {
	switch {
	case kind == kindConnect:
		return false
	case kind == kindUDP && answer != AnswerICMP && pd.flow.DstPort >= e.cfg.EphemeralLow && pd.flow.DstPort <= e.cfg.EphemeralHigh:
		return false
	}
	return true
}

// probingPorts is how many distinct ports a source must have probed in
// the short window, refused or unanswered, before its completed
// handshakes weigh too (see probing).
const probingPorts = 3

// probing reports whether s has probed at least probingPorts distinct
// ports within the short window so far. Such a source is scanning, and a
// handshake it completes in that window is a probe too (a connect scan's
// open ports), as scanlogd counts every SYN. A client or a monitor that
// only connects to open services never gets here, nor one that finds a
// service or two down.
func (e *Engine) probing(s *source, at time.Time) bool {
	return s.ports != nil && at.UnixNano()-s.shortLast <= int64(e.cfg.ShortGap) && len(s.ports.short) >= probingPorts
}

// probe counts a decided attempt in scan detection: its kind as evidence
// of the scan's type, and, when it weighs (counted, or a prober's
// completed handshake), its port in the windows.
func (e *Engine) probe(s *source, pd *pending, kind probeKind, answer Answer, now time.Time) {
	e.evidence(s, pd, kind)
	if e.counted(pd, kind, answer) || kind == kindConnect && e.probing(s, pd.at) {
		e.weigh(s, pd, now)
		return
	}
	// An accepted port is named in a scan's ports, but does not make
	// one.
	if kind != kindConnect {
		return
	}
	if a := s.alert; a != nil {
		e.addToAlert(a, pd)
	} else if ps := s.portState(); len(ps.accepted) < 64 {
		if ps.accepted == nil {
			ps.accepted = map[portKey]struct{}{}
		}
		ps.accepted[portKey{pd.flow.Proto, pd.flow.DstPort}] = struct{}{}
	}
}

// evidence counts an attempt's kind, and the scanner its packets point
// to, towards the scan's type: in the scan s is reported in, if it is,
// else in s, to be joined to the scan detected later.
func (e *Engine) evidence(s *source, pd *pending, kind probeKind) {
	tool := kind <= kindHalfOpen
	if a := s.alert; a != nil {
		a.evidence[kind]++
		if tool {
			for _, b := range []uint8{toolZmap, toolMasscan} {
				if pd.toolBits&b != 0 {
					a.tools[b]++
				}
			}
		}
		if kind != kindConnect {
			a.Probes++
		}
		a.changed = true
		return
	}
	if s.evidence[kind] < math.MaxUint32 {
		s.evidence[kind]++
	}
	if tool {
		for _, b := range []uint8{toolZmap, toolMasscan} {
			if pd.toolBits&b != 0 && s.tools[b] < math.MaxUint32 {
				s.tools[b]++
			}
		}
	}
}

// weigh adds an attempt's port to the scan s is reported in, or to the
// windows of s, and detects a scan when they show one.
func (e *Engine) weigh(s *source, pd *pending, now time.Time) {
	if a := s.alert; a != nil {
		e.addToAlert(a, pd)
		return
	}
	at := pd.at
	pk := portKey{pd.flow.Proto, pd.flow.DstPort}
	if s.first == 0 {
		s.first, s.firstTTL = at.UnixNano(), pd.ttl
	}
	trigger := ""
	if s.ports == nil && (!s.one || s.port0 == pk && s.dst0 == pd.flow.Dst) && !e.onePortDetects() && !e.mapsOnly {
		// One port of one target so far: the windows below would hold
		// just it, at this time, with its weight, and detect nothing.
		if !s.one || at.UnixNano()-s.shortLast > int64(e.cfg.ShortGap) {
			// Its weight is its first probe's in the window, as in
			// the window's map.
			s.shortWeight = e.weight(pk, pd.kind)
		}
		s.one, s.port0, s.dst0 = true, pk, pd.flow.Dst
		s.shortLast = at.UnixNano()
	} else {
		trigger = e.windows(s, pk, e.weight(pk, pd.kind), pd.flow.Dst, at)
	}
	if trigger != "" {
		e.detect(s, trigger, now)
		return
	}
	// Not a scan by itself: it may be a slice of a distributed one.
	if old, ok := e.coverage[pk]; ok {
		e.uncover(pk, old)
	}
	e.coverage[pk] = coverEntry{src: s.addr, at: at, dst: pd.flow.Dst}
	e.coverSources[s.addr]++
	if len(e.coverage) >= e.cfg.DistPorts && len(e.coverSources) >= e.cfg.DistSources {
		e.detectDistributed(now)
	}
}

// onePortDetects reports whether the thresholds are so low that one
// port of one target is a scan.
func (e *Engine) onePortDetects() bool {
	return max(e.cfg.PrivWeight, e.cfg.HighWeight, e.cfg.StealthWeight) >= e.cfg.ShortThreshold || e.cfg.LongPorts <= 1 || e.cfg.SweepHosts <= 1
}

// weight is a probe's in the short window: privileged ports more, and a
// stealth probe at least StealthWeight.
func (e *Engine) weight(k portKey, kind probeKind) int {
	w := e.cfg.HighWeight
	if k.port < 1024 {
		w = e.cfg.PrivWeight
	}
	switch kind {
	case kindFIN, kindNULL, kindXmas:
		w = max(w, e.cfg.StealthWeight)
	}
	return w
}

// windows adds a probe of port k of dst at at, of the weight given, to the
// windows of s, and
// returns the rule that found a scan in them, or "".
func (e *Engine) windows(s *source, k portKey, weight int, dst netip.Addr, at time.Time) string {
	ps := s.portState()
	if ps.targets == nil {
		ps.targets = map[netip.Addr]struct{}{}
	}
	if len(ps.targets) < 64 {
		ps.targets[dst] = struct{}{}
	}

	// The short window, as scanlogd: distinct ports, privileged ones
	// weighing more, each within ShortGap of the one before.
	if ps.short == nil || at.UnixNano()-s.shortLast > int64(e.cfg.ShortGap) {
		ps.short, s.shortWeight = map[portKey]struct{}{}, 0
	}
	s.shortLast = at.UnixNano()
	trigger := ""
	if _, ok := ps.short[k]; !ok {
		ps.short[k] = struct{}{}
		s.shortWeight += weight
		if s.shortWeight >= e.cfg.ShortThreshold {
			trigger = "short"
		}
	}
	// The long window: distinct ports within LongWindow.
	if ps.long == nil {
		ps.long = map[portKey]time.Time{}
	}
	ps.long[k] = at
	if len(ps.long) >= e.cfg.LongPorts {
		for pk, t := range ps.long {
			if at.Sub(t) > e.cfg.LongWindow {
				delete(ps.long, pk)
			}
		}
		if trigger == "" && len(ps.long) >= e.cfg.LongPorts {
			trigger = "long"
		}
	}
	// Sweeps: one port on many local addresses.
	if ps.sweep == nil {
		ps.sweep = map[portKey]map[netip.Addr]struct{}{}
	}
	hosts := ps.sweep[k]
	if hosts == nil {
		if len(ps.sweep) >= e.cfg.LongPorts {
			clear(ps.sweep)
		}
		hosts = map[netip.Addr]struct{}{}
		ps.sweep[k] = hosts
	}
	hosts[dst] = struct{}{}
	if trigger == "" && len(hosts) >= e.cfg.SweepHosts {
		trigger = "sweep"
	}
	return trigger
}

func (e *Engine) uncover(k portKey, c coverEntry) {
	delete(e.coverage, k)
	if e.coverSources[c.src]--; e.coverSources[c.src] <= 0 {
		delete(e.coverSources, c.src)
	}
}

// detect starts an alert for s, or adds s to a scan going on that probes
// other ports of the same targets: a distributed scan.
func (e *Engine) detect(s *source, trigger string, now time.Time) {
	ps := s.portState()
	ports := make([]portKey, 0, len(ps.long)+len(ps.short))
	for k := range ps.long {
		ports = append(ports, k)
	}
	for _, m := range []map[portKey]struct{}{ps.short, ps.accepted} {
		for k := range m {
			if _, ok := ps.long[k]; !ok {
				ports = append(ports, k)
			}
		}
	}
	for k := range ps.sweep {
		if _, ok := ps.long[k]; !ok {
			ports = append(ports, k)
		}
	}
	ports = slices.Compact(slices.SortedFunc(slices.Values(ports), func(a, b portKey) int {
		return int(a.proto)<<16 + int(a.port) - int(b.proto)<<16 - int(b.port)
	}))
	var a *alert
	if trigger != "sweep" {
		a = e.distributedPeer(s, ports, now)
	}
	if a == nil {
		a = e.newAlert(trigger, now)
		a.Kind = "ports"
		if trigger == "sweep" {
			a.Kind = "sweep"
		}
		a.Start, a.TTL = time.Unix(0, s.first), s.firstTTL
	} else {
		a.Kind, a.Trigger = "distributed", "distributed"
		if first := time.Unix(0, s.first); first.Before(a.Start) {
			a.Start = first
		}
	}
	e.join(a, s, ports)
	// Remove this source's ports from the distributed coverage: they
	// are reported now.
	for k, c := range e.coverage {
		if c.src == s.addr {
			e.uncover(k, c)
		}
	}
	if a.Phase == "" {
		e.emitAlert(a, PhaseStart, now)
	} else {
		e.emitAlert(a, PhaseUpdate, now)
	}
}

// distributedPeer finds a scan going on of which the new source's is a
// slice: on the same targets, its ports not overlapping (by more than a
// tenth), of the same type, and under way at the same time (its first
// probe within ShortGap of the scan's last). A scan of another type, or
// one that starts after the other went quiet, is another scanner's,
// reported on its own: each per-source alert describes only its
// source's packets.
func (e *Engine) distributedPeer(s *source, ports []portKey, now time.Time) *alert {
	types := typeSet(s.evidenceCounts())
	for _, a := range e.alerts {
		if a.Kind == "sweep" || now.Sub(a.Start) > e.cfg.DistWindow || time.Unix(0, s.first).Sub(a.Last) > e.cfg.ShortGap {
			continue
		}
		if typeSet(a.evidence) != types {
			continue
		}
		shared := false
		for t := range s.portState().targets {
			if _, ok := a.targets[t]; ok {
				shared = true
				break
			}
		}
		if !shared {
			continue
		}
		overlap := 0
		for _, k := range ports {
			m := a.tcp
			if k.proto == UDP {
				m = a.udp
			}
			if _, ok := m[k.port]; ok {
				if overlap++; overlap*10 > len(ports) {
					break // not a slice of it: the same ports
				}
			}
		}
		if overlap*10 <= len(ports) {
			return a
		}
	}
	return nil
}

func (e *Engine) newAlert(trigger string, now time.Time) *alert {
	e.nextID++
	a := &alert{
		Alert:   Alert{ID: e.nextID, Trigger: trigger},
		sources: map[netip.Addr]struct{}{}, targets: map[netip.Addr]struct{}{},
		tcp: map[uint16]struct{}{}, udp: map[uint16]struct{}{},
	}
	e.alerts = append(e.alerts, a)
	for len(e.alerts) > e.cfg.MaxAlerts {
		e.endAlert(e.alerts[0], now)
	}
	return a
}

// join moves a source's findings into an alert.
func (e *Engine) join(a *alert, s *source, ports []portKey) {
	a.sources[s.addr] = struct{}{}
	for t := range s.portState().targets {
		a.targets[t] = struct{}{}
	}
	for _, k := range ports {
		if k.proto == UDP {
			a.udp[k.port] = struct{}{}
		} else {
			a.tcp[k.port] = struct{}{}
		}
	}
	for i, n := range s.evidence {
		a.evidence[i] += int(n)
		if probeKind(i) != kindConnect {
			a.Probes += int(n)
		}
	}
	for i, n := range s.tools {
		a.tools[i] += int(n)
	}
	if last := time.Unix(0, s.lastSeen); last.After(a.Last) {
		a.Last = last
	}
	s.alert = a
	s.evidence, s.tools = [numKinds]uint32{}, [3]uint32{}
	s.ports, s.one, s.dst0 = nil, false, netip.Addr{}
	s.shortWeight, s.first = 0, 0
	a.changed = true
}

// addToAlert names an attempt's target and port in the scan it is part
// of.
func (e *Engine) addToAlert(a *alert, pd *pending) {
	if len(a.targets) < 64 {
		a.targets[pd.flow.Dst] = struct{}{}
	}
	if pd.flow.Proto == UDP {
		a.udp[pd.flow.DstPort] = struct{}{}
	} else {
		a.tcp[pd.flow.DstPort] = struct{}{}
	}
	if pd.at.After(a.Last) {
		a.Last = pd.at
	}
	a.changed = true
}

// detectDistributed reports the sources of the coverage as one scan.
func (e *Engine) detectDistributed(now time.Time) {
	a := e.newAlert("distributed", now)
	a.Kind = "distributed"
	srcs := map[netip.Addr][]portKey{}
	for k, c := range e.coverage {
		srcs[c.src] = append(srcs[c.src], k)
		if a.Start.IsZero() || c.at.Before(a.Start) {
			a.Start = c.at
		}
	}
	for addr, ports := range srcs {
		s := e.sources[addr]
		if s == nil {
			// Evicted since: its ports still count.
			s = &source{addr: addr}
		}
		if a.TTL == 0 {
			a.TTL = s.firstTTL
		}
		e.join(a, s, ports)
	}
	clear(e.coverage)
	clear(e.coverSources)
	e.emitAlert(a, PhaseStart, now)
}

func (e *Engine) endAlert(a *alert, now time.Time) {
	e.emitAlert(a, PhaseEnd, now)
	if i, ok := slices.BinarySearchFunc(e.alerts, a.ID, func(a *alert, id uint64) int { return cmp.Compare(a.ID, id) }); ok {
		e.alerts = slices.Delete(e.alerts, i, i+1)
	}
	for addr := range a.sources {
		if s := e.sources[addr]; s != nil && s.alert == a {
			s.alert = nil
		}
	}
}

func (e *Engine) emitAlert(a *alert, phase Phase, now time.Time) {
	a.Phase, a.Time = phase, now
	a.lastEmit, a.changed = now, false
	a.Sources = sortedAddrs(a.sources)
	a.Targets = sortedAddrs(a.targets)
	a.TCPPorts = sortedPorts(a.tcp)
	a.UDPPorts = sortedPorts(a.udp)
	a.Type = scanType(a.evidence)
	a.Tool = toolGuess(a.tools, a.evidence)
	if phase == PhaseStart {
		e.stats.Scans[a.Type]++
	}
	out := a.Alert // a copy: the sink may keep it
	e.sink(Event{Alert: &out})
}

func sortedPorts(m map[uint16]struct{}) []uint16 {
	out := make([]uint16, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// scanType names the scan from the probes' kinds: every type with at
// least a tenth of them, the most common first.
func scanType(ev [numKinds]int) string {
	names := scanTypes(ev)
	if len(names) == 0 {
		return "unknown"
	}
	return strings.Join(names, "+")
}

// typeShare is how many probes show one scan type.
type typeShare struct {
	name string
	n    int
}

// typeShares are the probes of each type, in a fixed order; the first is
// the SYN family, named SYN or connect by its evidence.
func typeShares(ev [numKinds]int) [7]typeShare {
	synRaw, synStack, half, conn := ev[kindSYNRaw], ev[kindSYNStack], ev[kindHalfOpen], ev[kindConnect]
	syn := typeShare{n: synRaw + synStack + half + conn}
	switch {
	case half > 0 && half >= conn:
		syn.name = "SYN"
	case conn > 0:
		syn.name = "connect"
	case synStack > synRaw:
		// Refused or dropped SYNs only: the options of the operating
		// system's own stack are the sign of connect().
		syn.name = "connect"
	default:
		syn.name = "SYN"
	}
	return [7]typeShare{syn, {"FIN", ev[kindFIN]}, {"NULL", ev[kindNULL]}, {"Xmas", ev[kindXmas]},
		{"ACK/Window", ev[kindACK]}, {"Maimon", ev[kindMaimon]}, {"UDP", ev[kindUDP]}}
}

// named reports whether a type with n of total probes is named: it has at
// least a tenth of them.
func named(n, total int) bool { return n > 0 && n*10 >= total }

// scanTypes are the names scanType joins: every type with at least a
// tenth of the probes, the most common first.
func scanTypes(ev [numKinds]int) []string {
	all := typeShares(ev)
	total := 0
	for _, s := range all {
		total += s.n
	}
	slices.SortStableFunc(all[:], func(a, b typeShare) int { return b.n - a.n })
	var names []string
	for _, s := range all {
		if named(s.n, total) {
			names = append(names, s.name)
		}
	}
	return names
}

// typeSet is the set of scanTypes, as bits (the SYN family's two names
// apart), for comparing without allocating.
func typeSet(ev [numKinds]int) uint8 {
	all := typeShares(ev)
	total := 0
	for _, s := range all {
		total += s.n
	}
	var set uint8
	for i, s := range all {
		if named(s.n, total) {
			bit := uint8(1) << i
			if s.name == "connect" {
				bit = 1 << 7
			}
			set |= bit
		}
	}
	return set
}

// toolGuess names the scanner when most of the SYNs carry its mark:
// zmap's fixed IP ID 54321, masscan's IP ID = destination address ^
// destination port ^ sequence number.
func toolGuess(tools [3]int, ev [numKinds]int) string {
	syns := ev[kindSYNRaw] + ev[kindSYNStack] + ev[kindHalfOpen]
	switch {
	case syns == 0:
		return ""
	case tools[toolZmap]*2 > syns:
		return "zmap (guess)"
	case tools[toolMasscan]*2 > syns:
		return "masscan (guess)"
	}
	return ""
}
