package scan

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"time"
)

// AddrSet is the targets of a scan, by index; portspec's target list is one.
type AddrSet interface {
	Len() uint64
	At(i uint64) netip.Addr
}

// PortSet is the ports of a scan, by index, each with its protocol.
type PortSet interface {
	Len() uint64
	At(i uint64) (port uint16, proto Proto)
}

// Defaults of a Scanner's zero fields.
const (
	// DefaultRetries is the number of retransmissions of an unanswered
	// probe: with 5% loss each way a probe and its answer are lost one time
	// in ten, so seven attempts miss an open port about once in 10⁷.
	DefaultRetries = 6
	// MaxRetries bounds Retries: past it a probe's silence would outlast
	// any scan.
	MaxRetries = 1000
	// DefaultMaxOutstanding bounds the probes in flight (and the memory:
	// about 150 bytes each).
	DefaultMaxOutstanding = 1 << 16
)

// Scanner scans targets × ports. Its zero fields take defaults; a Scanner
// is not changed by Run, and may run again with new engines (an engine
// runs one scan: Run closes it).
type Scanner struct {
	Targets AddrSet
	Ports   PortSet

	// Engine sends the TCP probes; nil means a Connect engine.
	Engine Engine
	// UDPEngine sends the UDP probes; nil means a scan with UDP ports fails.
	UDPEngine Engine

	// Rate is the most attempts per second, retransmissions included: a hard
	// bound, below which the scanner adapts to the network. 0 means no bound
	// but MaxOutstanding and the engine's.
	Rate float64
	// InitialRate, if set, is the rate a scan with a Rate starts at: it
	// grows toward Rate while answers come back and loss stays as it was,
	// and falls back on loss (0: start at Rate). MinRate, if set, is the
	// lowest the scan falls to (0: 1/64 of Rate, at least one a second).
	// Both are at most Rate, and mean nothing without one: a scan without a
	// Rate goes as fast as it can, faster than any MinRate.
	InitialRate, MinRate float64
	// Retries is the number of retransmissions of an unanswered probe before
	// silence becomes its answer: 0 means DefaultRetries, negative none.
	// For a UDP probe it is the most: its host's loss, or its silence,
	// sets fewer (see udpsilence.go).
	Retries int
	// The retransmission timeout before any answer, and its bounds
	// (defaults DefaultInitialRTT, DefaultMinRTT, DefaultMaxRTT).
	InitialRTT, MinRTT, MaxRTT time.Duration
	// PerHostRTT keeps a round-trip estimate per host (in a bounded table)
	// besides the scan's, for targets at very different distances. UDP
	// probes always time their host's silence by its own round trip once
	// it has one (see NoRTTProbe).
	PerHostRTT bool
	// NoRTTProbe turns off the one extra UDP probe a scan sends to each
	// host it scans for UDP, to a port it does not scan, to learn the
	// host's round trip before its silent ports time out. Without it, a
	// host's silent ports wait the scan's timeouts until one of its
	// scanned ports answers.
	NoRTTProbe bool
	// HostTimeout, if set, gives up a host this long after its first probe:
	// its probes not yet sent are skipped (counted in Stats.Skipped, no
	// Result); those sent and unanswered end filtered (UDP: open|filtered)
	// with the reason "host-timeout" instead of being retransmitted. Probes are spread over the whole scan, so a host timeout
	// shorter than the scan cuts every host short. It keeps one entry per
	// host probed.
	HostTimeout time.Duration

	// Seed keys the order of the probes. Shard and Shards split the scan:
	// shard Shard (0 ≤ Shard < Shards) takes every Shards-th position of
	// the permuted order, so shards with one Seed are disjoint and together
	// make the whole scan. Shards 0 means 1.
	Seed          uint64
	Shard, Shards int
	// Resume continues an interrupted scan of the same targets and ports:
	// its Seed and shard replace the Scanner's.
	Resume *Cursor

	// MaxOutstanding bounds the probes awaiting an answer or a
	// retransmission (default DefaultMaxOutstanding); an engine's own bound
	// (Bounded) may lower it.
	MaxOutstanding int

	// Progress, if set, is called with the counts so far about four times a
	// second, from the goroutine that calls the Sink.
	Progress func(Stats)
}

// Scan scans targets × ports with a default Scanner.
func Scan(ctx context.Context, targets AddrSet, ports PortSet, sink Sink) (Stats, error) {
	s := Scanner{Targets: targets, Ports: ports}
	return s.Run(ctx, sink)
}

// Cursor is where a scan stopped, to resume it; it marshals to JSON as the
// resume file. Positions are of the shard's share of the permuted order.
type Cursor struct {
	Version int    `json:"version"`
	Seed    uint64 `json:"seed"`
	Shard   int    `json:"shard"`
	Shards  int    `json:"shards"`
	// Size is targets × ports, and Sum a hash of every port and of up to
	// 4,096 targets spread over the list, to tell a resume of another scan
	// (a cursor without Sum is checked by Size alone).
	Size uint64 `json:"size"`
	Sum  uint64 `json:"sum,omitempty"`
	// Next is the number of the shard's positions taken.
	Next uint64 `json:"next"`
	// Pending is the indices (target·ports + port) of the probes taken but
	// not decided when the scan stopped; a resumed scan probes them again.
	Pending []uint64 `json:"pending,omitempty"`
}

// cursorVersion changes when a cursor's meaning does (the permutation, the
// index layout).
const cursorVersion = 1

// Stats counts what a scan did.
type Stats struct {
	Seed          uint64
	Shard, Shards int
	// Probes is the size of the shard's share of targets × ports.
	Probes uint64
	// Done is the probes decided: Results given to the Sink.
	Done uint64
	// Sent is attempts sent, Retransmitted those that repeat a probe.
	Sent, Retransmitted uint64
	// RTTProbes is the attempts, of Sent, at learning hosts' round trips
	// (Scanner.NoRTTProbe); they give no Result.
	RTTProbes uint64
	// Answered is the probes decided by an answer, not silence. Late is
	// answers to an attempt that had timed out; Stray, answers for no
	// outstanding probe (duplicates, strays).
	Answered, Late, Stray uint64
	// Skipped is probes not sent for HostTimeout.
	Skipped uint64
	// Results by state.
	Open, Closed, Filtered, OpenFiltered uint64
	// The UDP ports that stayed silent (open|filtered), by their hosts:
	// SilentAnswering on hosts that answered other probes, after their
	// round trip, loss and ICMP limit said the silence is the port's own;
	// SilentMute on hosts that answered nothing at all.
	SilentAnswering, SilentMute uint64

	Elapsed time.Duration
	// Rate is attempts per second over Elapsed.
	Rate float64
	// Pace is the rate the scan paces itself to now, at most Scanner.Rate
	// (below it while growing from InitialRate, or while the network shows
	// congestion); 0 without a Rate.
	Pace float64

	// InFlightLimit is the bound on outstanding probes, and what set it.
	InFlightLimit   int
	InFlightLimitBy string
	// InFlightLimited is set when the engine's bound (the open-file limit
	// of the connect engine), not the rate or the network, held the scan
	// back for most of its time: more file descriptors would scan faster.
	InFlightLimited bool
	// RTO is the retransmission timeout at the end.
	RTO time.Duration

	// HostsPaced is the hosts whose probes were held to a pace their
	// engine set (HostPacer): for the UDP engine, targets that rate-limit
	// their ICMP errors. A host whose pace was lifted (or, past 65536 hosts
	// paced at once, forgotten) and set again counts again. HostPaceLimited is set when waiting on those paces, with
	// nothing else to send, took most of the scan's time: the targets'
	// limits, not the rate or the network, held the scan back.
	HostsPaced      uint64
	HostPaceLimited bool
	// ICMPLimits is, at the end of a scan, the limits on ICMP errors the
	// engines (ICMPLimitLister) found in force, by host; nil if none.
	ICMPLimits []ICMPLimit

	// Cursor is set when the scan stopped before its end, to resume it.
	Cursor *Cursor
}

// ConfigError is a Scanner field that cannot be used.
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string { return fmt.Sprintf("scan: %s: %s", e.Field, e.Reason) }

// BadInput marks the error as the caller's input being wrong.
func (e *ConfigError) BadInput() bool { return true }

// Run scans, giving every Result to sink as it is decided, from the calling
// goroutine. It returns when every probe is decided, when sink or an engine
// fails, or when ctx is done; then Stats.Cursor says where to resume, and
// the error is ctx's.
func (s *Scanner) Run(ctx context.Context, sink Sink) (Stats, error) {
	r, err := s.newRun(sink)
	if err != nil {
		return Stats{}, err
	}
	return r.run(ctx)
}

// pending is one outstanding probe: in flight (heap ≥ 0), awaiting its
// retransmission (heap == inQueue), or parked until its host's pace lets it
// go (heap == parked; see hostPacing). It is all the state the scan keeps.
type pending struct {
	probe   Probe
	index   uint64
	attempt int32
	heap    int32  // position in the timeout heap
	gen     uint32 // bumped when the slot is freed, to spot stale queue entries
	window  uint32 // the pacer's window of the last attempt
	kind    uint8  // scanKind or rttKind
	// conservative: a UDP probe asked again with the scan's timeouts and
	// Retries, its silence not trusted (resolveHeld).
	conservative bool
	first        time.Duration
	sent         time.Duration
	deadline     time.Duration
}

// Kinds of pending probes: one of the scan, which gives a Result, or one
// that learns its host's round trip, which does not.
const (
	scanKind uint8 = iota
	rttKind
)

const (
	inQueue = -1 // awaiting retransmission
	free    = -2
	parked  = -3 // awaiting a token of its host's pace
	held    = -4 // silent, awaiting its host's judgement (resolveHeld)
)

type queued struct {
	slot int32
	gen  uint32
}

type run struct {
	s       *Scanner
	sink    Sink
	tcp     Engine
	udp     Engine
	targets AddrSet
	ports   PortSet
	nports  uint64
	perm    Permutation
	shard   uint64
	shards  uint64
	total   uint64 // positions in the shard
	next    uint64 // positions taken
	resend  []uint64
	dups    []uint64

	retries  int32
	maxOut   int
	bounded  bool // maxOut is the engine's bound
	start    time.Time
	rtt      *rttTable
	userMin  time.Duration // Scanner.MinRTT as set, 0 if not
	ev       evidenceTable
	rttPort  uint16 // of RTT probes; 0 for none
	held     int    // probes held (resolveHeld)
	sched    *schedule
	pacer    *pacer
	pace     *hostPacing                  // nil unless an engine is a HostPacer
	hosts    map[netip.Addr]time.Duration // first probe, for HostTimeout
	slab     slab[pending]
	byProbe  map[Probe]int32
	heap     []int32
	queue    []queued
	queueAt  int
	replies  chan Reply
	stats    Stats
	waitedIn time.Duration // waiting on the engine's in-flight bound
}

func (s *Scanner) newRun(sink Sink) (*run, error) {
	if s.Targets == nil || s.Ports == nil {
		return nil, &ConfigError{"Targets, Ports", "not set"}
	}
	nt, np := s.Targets.Len(), s.Ports.Len()
	hi, n := bits.Mul64(nt, np)
	if hi != 0 {
		return nil, &ConfigError{"Targets, Ports", fmt.Sprintf("%d targets × %d ports is more than 2⁶⁴ probes", nt, np)}
	}
	r := &run{s: s, sink: sink, targets: s.Targets, ports: s.Ports, nports: np}
	seed, shard, shards := s.Seed, s.Shard, s.Shards
	if shards == 0 {
		shards = 1
	}
	if c := s.Resume; c != nil {
		if c.Version != cursorVersion {
			return nil, &ConfigError{"Resume", fmt.Sprintf("cursor version %d, want %d", c.Version, cursorVersion)}
		}
		if c.Size != n || c.Sum != 0 && c.Sum != scanSum(s.Targets, s.Ports) {
			return nil, &ConfigError{"Resume", fmt.Sprintf("cursor of a scan of %d probes, this one has %d: not the same targets and ports", c.Size, n)}
		}
		seed, shard, shards = c.Seed, c.Shard, c.Shards
		for _, i := range c.Pending {
			if i >= n {
				return nil, &ConfigError{"Resume", fmt.Sprintf("pending probe %d beyond the scan's %d", i, n)}
			}
		}
		// A copy: taking from and putting back into it must not write
		// into the caller's Cursor.
		r.next, r.resend = c.Next, slices.Clone(c.Pending)
	}
	if shards < 1 || shard < 0 || shard >= shards {
		return nil, &ConfigError{"Shard", fmt.Sprintf("shard %d of %d: want 0 ≤ shard < shards", shard, shards)}
	}
	r.perm = NewPermutation(n, seed)
	r.shard, r.shards = uint64(shard), uint64(shards)
	r.total = shardLen(n, r.shard, r.shards)
	if r.next > r.total {
		return nil, &ConfigError{"Resume", fmt.Sprintf("cursor at position %d of a shard of %d", r.next, r.total)}
	}
	r.stats = Stats{Seed: seed, Shard: shard, Shards: shards, Probes: r.total}
	if !(s.Rate >= 0) || math.IsInf(s.Rate, 0) {
		return nil, &ConfigError{"Rate", fmt.Sprintf("%v: not a rate", s.Rate)}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"InitialRate", s.InitialRate}, {"MinRate", s.MinRate}} {
		switch {
		case !(f.v >= 0) || math.IsInf(f.v, 0):
			return nil, &ConfigError{f.name, fmt.Sprintf("%v: not a rate", f.v)}
		case s.Rate > 0 && f.v > s.Rate:
			return nil, &ConfigError{f.name, fmt.Sprintf("%v above Rate %v", f.v, s.Rate)}
		}
	}

	r.tcp, r.udp = s.Engine, s.UDPEngine
	var hasTCP, hasUDP bool
	for i := range np {
		switch _, p := s.Ports.At(i); p {
		case TCP:
			hasTCP = true
		case UDP:
			hasUDP = true
		default:
			return nil, &ConfigError{"Ports", fmt.Sprintf("port %d: protocol %v", i, p)}
		}
	}
	if !hasTCP {
		r.tcp = nil
	} else if r.tcp == nil {
		r.tcp = &Connect{}
	}
	if !hasUDP {
		r.udp = nil
	} else if r.udp == nil {
		return nil, &ConfigError{"UDPEngine", "UDP ports to scan and no UDP engine"}
	}
	for _, e := range []struct {
		e Engine
		p Proto
	}{{r.tcp, TCP}, {r.udp, UDP}} {
		if e.e != nil && e.e.Proto() != e.p {
			return nil, &ConfigError{"Engine", fmt.Sprintf("%s engine sends %v, not %v", e.e.Name(), e.e.Proto(), e.p)}
		}
	}

	if s.Retries > MaxRetries {
		return nil, &ConfigError{"Retries", fmt.Sprintf("%d above %d", s.Retries, MaxRetries)}
	}
	r.retries = int32(s.Retries)
	if s.Retries == 0 {
		r.retries = DefaultRetries
	} else if s.Retries < 0 {
		r.retries = 0
	}
	initial, lo, hi2 := s.InitialRTT, s.MinRTT, s.MaxRTT
	if initial <= 0 {
		initial = DefaultInitialRTT
	}
	if hi2 <= 0 {
		hi2 = DefaultMaxRTT
	}
	if lo <= 0 {
		lo = min(DefaultMinRTT, hi2) // a MaxRTT below the default floor lowers it
	}
	if lo > hi2 {
		return nil, &ConfigError{"MinRTT", fmt.Sprintf("%v above MaxRTT %v", lo, hi2)}
	}
	r.rtt = newRTTTable(initial, lo, hi2, s.PerHostRTT, 1<<16)
	r.userMin = max(s.MinRTT, 0)
	if hasUDP && !s.NoRTTProbe {
		r.rttPort, _ = rttPortFor(s.Ports)
	}
	r.maxOut = s.MaxOutstanding
	if r.maxOut <= 0 {
		r.maxOut = DefaultMaxOutstanding
	}
	r.stats.InFlightLimit, r.stats.InFlightLimitBy = r.maxOut, "MaxOutstanding"
	if s.HostTimeout > 0 {
		r.hosts = make(map[netip.Addr]time.Duration)
	}
	r.byProbe = make(map[Probe]int32)
	return r, nil
}

func (r *run) now() time.Duration { return time.Since(r.start) }

func (r *run) run(ctx context.Context) (Stats, error) {
	r.start = time.Now()
	ectx, cancel := context.WithCancel(ctx)
	// Replies arrive while the scanner sends; the buffer lets an engine's
	// receiver run ahead of it a little.
	r.replies = make(chan Reply, min(r.maxOut, 4096))
	var started []Engine
	defer func() {
		cancel()
		for _, e := range started {
			e.Close()
		}
	}()
	for _, e := range []Engine{r.tcp, r.udp} {
		if e == nil {
			continue
		}
		if err := e.Start(ectx, r.replies); err != nil {
			return r.finish(), fmt.Errorf("scan: start %s engine: %w", e.Name(), err)
		}
		started = append(started, e)
		if b, ok := e.(Bounded); ok {
			if n, why := b.MaxInFlight(); n > 0 && n < r.maxOut {
				r.maxOut, r.bounded = n, true
				r.stats.InFlightLimit, r.stats.InFlightLimitBy = n, e.Name()+" engine: "+why
			}
		}
	}
	r.pace = newHostPacing(r.tcp, r.udp)
	if r.s.Rate > 0 {
		r.pacer = newPacer(r.s.Rate, r.s.InitialRate, r.s.MinRate, 0)
		sched := newSchedule(r.s.Rate, 0)
		sched.setRate(r.pacer.rate)
		r.sched = &sched
	}

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var lastProgress time.Duration
	const progressEvery = 250 * time.Millisecond
	for {
		if err := ctx.Err(); err != nil {
			return r.stop(), err
		}
		if err := r.drain(); err != nil {
			return r.stop(), err
		}
		now := r.now()
		if err := r.expire(now); err != nil {
			return r.stop(), err
		}
		blocked, err := r.send(now)
		if err != nil {
			return r.stop(), err
		}
		if r.s.Progress != nil && r.now()-lastProgress >= progressEvery {
			lastProgress = r.now()
			r.s.Progress(r.snapshot())
		}
		if blocked == nothingLeft && len(r.byProbe) == 0 {
			return r.finish(), nil
		}
		if r.held > 0 && len(r.heap) == 0 && (blocked == nothingLeft || blocked == byInFlight) {
			// Nothing in flight but silent ports held: judge them.
			if err := r.resolveHeld(); err != nil {
				return r.stop(), err
			}
			continue
		}
		if blocked == notBlocked {
			continue // more to send at once: look at replies and timeouts first
		}

		// Wait for an answer, a timeout, a token or the end: a host's
		// token only when nothing else can go (a parked probe that waits
		// for the scan's token waits with everything else).
		if err := r.flush(); err != nil {
			return r.stop(), err
		}
		now = r.now()
		wait := time.Hour
		if len(r.heap) > 0 {
			wait = r.slab.items[r.heap[0]].deadline - now
		}
		switch blocked {
		case byRate:
			wait = min(wait, r.sched.wait(now))
		case byBusy:
			wait = min(wait, time.Millisecond)
		case byHost:
			wait = min(wait, r.pace.wait(now))
		}
		if r.s.Progress != nil {
			// Waking for the next Progress: the caller lets buffered
			// results out and redraws with it, even while nothing happens.
			wait = min(wait, lastProgress+progressEvery-now)
		}
		if wait <= 0 {
			continue
		}
		timer.Reset(wait)
		t0 := time.Now()
		select {
		case <-ctx.Done():
		case <-timer.C:
		case rep := <-r.replies:
			if err := r.answer(rep); err != nil {
				return r.stop(), err
			}
		}
		if r.bounded && (blocked == byInFlight || blocked == byBusy) {
			r.waitedIn += time.Since(t0)
		}
		if blocked == byHost {
			r.pace.waited += time.Since(t0)
		}
	}
}

// Why the sender stopped.
const (
	notBlocked  = iota // it did not: there is more to send now
	nothingLeft        // every probe is taken
	byRate
	byInFlight
	byBusy
	byHost // only probes parked for their hosts' pace are left to send
)

// maxBurst is the most probes sent between looks at replies and timeouts.
const maxBurst = 256

// send sends retransmissions first, then new probes, within the bounds.
func (r *run) send(now time.Duration) (blocked int, err error) {
	for n := 0; n < maxBurst; n++ {
		// In flight: the engine's bound. Outstanding, counting those
		// awaiting retransmission: the table's; only new probes add to it.
		if len(r.heap) >= r.maxOut {
			return byInFlight, nil
		}
		slot, idx, unparked, ok := r.nextProbe(now, len(r.byProbe) < r.maxOut)
		if !ok {
			switch {
			case r.pace != nil && r.pace.parked > 0:
				return byHost, nil
			case len(r.byProbe) >= r.maxOut:
				return byInFlight, nil
			}
			return nothingLeft, nil
		}
		// The scan's token is looked for first, and taken last: a probe
		// its host's pace parks costs none.
		if r.sched != nil {
			r.sched.setRate(r.pacer.rate)
			if !r.sched.ready(now) {
				if unparked {
					r.repark(slot, now)
				} else {
					r.unget(slot, idx)
				}
				return byRate, nil
			}
		}
		if r.pace != nil && !r.admit(now, &slot, idx, unparked) {
			continue // parked, or a duplicate deferred
		}
		if r.sched != nil {
			r.sched.take(now)
		}
		if slot < 0 {
			slot = r.alloc(idx)
			if slot < 0 {
				continue // a duplicate of an outstanding probe, deferred
			}
		}
		pd := &r.slab.items[slot]
		if r.hosts != nil {
			first, seen := r.hosts[pd.probe.IP]
			if !seen {
				r.hosts[pd.probe.IP] = now
			} else if now-first > r.s.HostTimeout {
				if pd.kind == rttKind {
					r.release(slot)
					continue
				}
				if pd.attempt == 0 {
					r.stats.Skipped++
					r.release(slot)
					continue
				}
				// Sent and unanswered: as silent as after its last
				// retransmission, and said so.
				st := Filtered
				if pd.probe.Proto == UDP {
					st = OpenFiltered
				}
				if err := r.decide(slot, Result{Probe: pd.probe, State: st, Reason: "host-timeout"}); err != nil {
					return 0, err
				}
				continue
			}
		}
		pd.attempt++
		e := r.engine(pd.probe.Proto)
		if err := e.Send(pd.probe, int(pd.attempt)); err != nil {
			pd.attempt--
			if errors.Is(err, ErrBusy) {
				r.requeue(slot)
				return byBusy, nil
			}
			return 0, fmt.Errorf("scan: %s engine: send %v: %w", e.Name(), pd.probe.AddrPort(), err)
		}
		if pd.attempt == 1 {
			pd.first = now
		} else {
			r.stats.Retransmitted++
		}
		r.stats.Sent++
		if pd.kind == rttKind {
			r.stats.RTTProbes++
		}
		pd.sent = now
		pd.deadline = now + r.timeout(pd)
		if pd.attempt == 1 && pd.probe.Proto == UDP && r.rttPort != 0 {
			if h := r.ev.add(pd.probe.IP); !h.rttProbed {
				h.rttProbed = true
				if h.answered == 0 {
					r.addRTTProbe(pd.probe.IP)
				}
			}
		}
		if r.pacer != nil {
			pd.window = r.pacer.sent(now)
		}
		r.heapPush(slot)
		now = r.now()
	}
	return notBlocked, nil
}

// timeout is how long to wait for an answer to attempt of a probe to host:
// the retransmission timeout, backed off by half for each earlier attempt
// (RFC 6298 doubles it; a scanner's silence is mostly filtered ports, and
// half keeps their cost down — about 32 timeouts' worth over seven
// attempts, rather than 127). The backoff is what saves a host farther
// than the timeout learned from others: an engine that abandons an attempt
// at its timeout (the connect engine closes its socket) cannot see its
// late answer, so only a longer wait for a later attempt can.
//
// A UDP probe whose host has a round trip waits by it instead (see
// udpsilence.go), unless its silence was not trusted.
func (r *run) timeout(pd *pending) time.Duration {
	host, attempt := pd.probe.IP, pd.attempt
	rto := r.rtt.rto(host)
	if pd.probe.Proto == UDP && !pd.conservative {
		if h := r.ev.get(host); h != nil && h.rtt.samples > 0 {
			rto = h.timeout(r.userMin, r.rtt.scan.max)
		}
	}
	for i := int32(1); i < attempt && rto < r.rtt.scan.max; i++ {
		rto += rto / 2
	}
	return min(rto, r.rtt.scan.max)
}

// nextProbe is the next thing to send: a parked slot whose host's token has
// come (unparked), a slot awaiting retransmission, or if allowNew the index
// of a new probe (slot −1).
func (r *run) nextProbe(now time.Duration, allowNew bool) (slot int32, idx uint64, unparked, ok bool) {
	if r.pace != nil {
		if slot, ok := r.unpark(now); ok {
			return slot, 0, true, true
		}
	}
	for r.queueAt < len(r.queue) {
		q := r.queue[r.queueAt]
		r.queueAt++
		if r.queueAt == len(r.queue) {
			r.queue, r.queueAt = r.queue[:0], 0
		}
		if pd := &r.slab.items[q.slot]; pd.gen == q.gen && pd.heap == inQueue {
			return q.slot, 0, false, true
		}
	}
	if !allowNew {
		return -1, 0, false, false
	}
	if n := len(r.resend); n > 0 {
		idx, r.resend = r.resend[n-1], r.resend[:n-1]
		return -1, idx, false, true
	}
	if r.next < r.total {
		idx = r.perm.At(r.shard + r.next*r.shards)
		r.next++
		return -1, idx, false, true
	}
	// Duplicates wait for the end, when their twins are likely decided.
	for i, idx := range r.dups {
		if _, busy := r.byProbe[r.probe(idx)]; !busy {
			r.dups = append(r.dups[:i], r.dups[i+1:]...)
			return -1, idx, false, true
		}
	}
	return -1, 0, false, false
}

// unget puts back what nextProbe gave and was not sent.
func (r *run) unget(slot int32, idx uint64) {
	if slot >= 0 {
		r.requeue(slot)
		return
	}
	r.resend = append(r.resend, idx)
}

// requeue puts a slot at the front of the retransmission queue.
func (r *run) requeue(slot int32) {
	q := queued{slot, r.slab.items[slot].gen}
	if r.queueAt > 0 {
		r.queueAt--
		r.queue[r.queueAt] = q
		return
	}
	r.queue = append([]queued{q}, r.queue...)
}

func (r *run) probe(idx uint64) Probe {
	port, proto := r.ports.At(idx % r.nports)
	return Probe{IP: r.targets.At(idx / r.nports), Port: port, Proto: proto}
}

func (r *run) engine(p Proto) Engine {
	if p == UDP {
		return r.udp
	}
	return r.tcp
}

// alloc makes a slot for a new probe; −1 if the probe is already
// outstanding (the target or port list repeats itself).
func (r *run) alloc(idx uint64) int32 {
	p := r.probe(idx)
	if _, dup := r.byProbe[p]; dup {
		r.dups = append(r.dups, idx)
		return -1
	}
	slot := r.slab.alloc()
	pd := &r.slab.items[slot]
	*pd = pending{probe: p, index: idx, heap: inQueue, gen: pd.gen}
	r.byProbe[p] = slot
	return slot
}

func (r *run) release(slot int32) {
	pd := &r.slab.items[slot]
	switch pd.heap {
	case parked:
		r.pace.parked--
	case held:
		r.held--
	}
	delete(r.byProbe, pd.probe)
	pd.gen++
	pd.heap = free
	r.slab.release(slot)
}

// drain takes the replies waiting, without blocking.
func (r *run) drain() error {
	for range cap(r.replies) {
		select {
		case rep := <-r.replies:
			if err := r.answer(rep); err != nil {
				return err
			}
		default:
			return nil
		}
	}
	return nil
}

// answer decides the probe a reply answers.
func (r *run) answer(rep Reply) error {
	slot, ok := r.byProbe[rep.Probe]
	if !ok || r.slab.items[slot].attempt == 0 { // none, or parked before its first send
		r.stats.Stray++
		return nil
	}
	pd := &r.slab.items[slot]
	now := r.now()
	at := now
	if !rep.At.IsZero() {
		if d := rep.At.Sub(r.start); d < now {
			at = d
		}
	}
	// The round trip, sampled only when the answer is known to answer one
	// send (Karn): its attempt is the last or the first.
	var rtt time.Duration
	valid := true
	switch {
	case rep.Attempt == int(pd.attempt) || (rep.Attempt == 0 && pd.attempt == 1):
		rtt = at - pd.sent
		r.rtt.sample(pd.probe.IP, rtt)
	case rep.Attempt == 1:
		rtt = at - pd.first
		r.rtt.sample(pd.probe.IP, rtt)
	case at >= pd.sent:
		valid = false
		rtt = at - pd.sent
	default:
		valid = false
		rtt = at - pd.first
	}
	if r.udp != nil {
		// What a host shows is kept for its UDP ports' silence alone.
		r.learn(pd, rtt, valid)
	}
	if rep.Attempt != 0 && rep.Attempt < int(pd.attempt) || pd.heap < 0 {
		r.stats.Late++
	}
	if pd.heap >= 0 {
		r.heapRemove(slot)
		r.engine(pd.probe.Proto).Done(pd.probe)
		if r.pacer != nil {
			r.pacer.outcome(pd.window, true)
		}
	}
	if pd.kind == rttKind {
		r.release(slot)
		return nil
	}
	r.stats.Answered++
	return r.decide(slot, Result{Probe: pd.probe, State: rep.State, RTT: max(rtt, 0), Reason: rep.Reason, TTL: rep.TTL})
}

// expire handles the attempts whose time is up.
func (r *run) expire(now time.Duration) error {
	for len(r.heap) > 0 {
		slot := r.heap[0]
		pd := &r.slab.items[slot]
		if pd.deadline > now {
			return nil
		}
		r.heapRemove(slot)
		r.engine(pd.probe.Proto).Done(pd.probe)
		if r.pacer != nil {
			r.pacer.outcome(pd.window, false)
		}
		if pd.attempt <= r.udpRetries(pd) {
			r.queue = append(r.queue, queued{slot, pd.gen})
			continue
		}
		switch h := r.ev.get(pd.probe.IP); {
		case pd.kind == rttKind:
			r.release(slot)
		case pd.probe.Proto == UDP && !pd.conservative && h != nil && h.answered > 0:
			r.hold(slot)
		default:
			if err := r.silent(slot); err != nil {
				return err
			}
		}
	}
	return nil
}

// decide gives the result of a slot's probe to the sink and frees the slot.
func (r *run) decide(slot int32, res Result) error {
	if err := r.sink.Result(res); err != nil {
		// Not delivered: the probe stays outstanding, for the cursor.
		r.slab.items[slot].heap = inQueue
		return fmt.Errorf("scan: result %v: %w", res.AddrPort(), err)
	}
	r.stats.Done++
	switch res.State {
	case Open:
		r.stats.Open++
	case Closed:
		r.stats.Closed++
	case Filtered:
		r.stats.Filtered++
	case OpenFiltered:
		r.stats.OpenFiltered++
	}
	r.release(slot)
	return nil
}

func (r *run) flush() error {
	for _, e := range []Engine{r.tcp, r.udp} {
		if f, ok := e.(Flusher); ok && e != nil {
			if err := f.Flush(); err != nil {
				return fmt.Errorf("scan: %s engine: flush: %w", e.Name(), err)
			}
		}
	}
	return nil
}

func (r *run) snapshot() Stats {
	st := r.stats
	st.Elapsed = r.now()
	if s := st.Elapsed.Seconds(); s > 0 {
		st.Rate = float64(st.Sent) / s
	}
	st.RTO = r.rtt.scan.rto()
	if r.pacer != nil {
		st.Pace = r.pacer.rate
	}
	st.InFlightLimited = r.bounded && r.waitedIn > st.Elapsed/2
	if r.pace != nil {
		st.HostsPaced = r.pace.paced
		st.HostPaceLimited = r.pace.waited > st.Elapsed/2
	}
	return st
}

// finish is the stats at the end of a scan.
func (r *run) finish() Stats {
	st := r.snapshot()
	for _, e := range []Engine{r.tcp, r.udp} {
		if l, ok := e.(ICMPLimitLister); ok {
			st.ICMPLimits = append(st.ICMPLimits, l.ICMPLimits()...)
		}
	}
	slices.SortFunc(st.ICMPLimits, func(a, b ICMPLimit) int { return a.Host.Compare(b.Host) })
	return st
}

// Fits reports whether c was saved by a scan of these targets and ports,
// as Run checks it: so a caller can refuse a cursor before it writes
// anything.
func (c *Cursor) Fits(t AddrSet, p PortSet) bool {
	hi, n := bits.Mul64(t.Len(), p.Len())
	return hi == 0 && c.Size == n && (c.Sum == 0 || c.Sum == scanSum(t, p))
}

// scanSum hashes every port and up to sumTargets targets evenly spread
// over the list: enough to tell another scan of the same size, in a
// millisecond however large the target list.
func scanSum(t AddrSet, p PortSet) uint64 {
	h := fnv.New64a()
	var b [20]byte
	for i := range p.Len() {
		port, proto := p.At(i)
		b[0], b[1], b[2] = byte(port>>8), byte(port), byte(proto)
		h.Write(b[:3])
	}
	n := t.Len()
	step := max(1, n/sumTargets)
	for i := uint64(0); i < n; i += step {
		a := t.At(i).As16()
		h.Write(a[:])
	}
	return h.Sum64()
}

const sumTargets = 4096

// stop ends an unfinished scan: the stats, with a cursor to resume from.
func (r *run) stop() Stats {
	st := r.finish()
	c := &Cursor{
		Version: cursorVersion, Seed: st.Seed, Shard: st.Shard, Shards: st.Shards,
		Size: r.perm.Len(), Sum: scanSum(r.targets, r.ports), Next: r.next,
	}
	c.Pending = append(c.Pending, r.resend...)
	for _, pd := range r.slab.items {
		if pd.heap != free && pd.kind == scanKind {
			c.Pending = append(c.Pending, pd.index)
		}
	}
	c.Pending = append(c.Pending, r.dups...)
	st.Cursor = c
	return st
}

// The timeout heap: slots in flight, earliest deadline first.

func (r *run) heapLess(i, j int) bool {
	return r.slab.items[r.heap[i]].deadline < r.slab.items[r.heap[j]].deadline
}

func (r *run) heapSwap(i, j int) {
	r.heap[i], r.heap[j] = r.heap[j], r.heap[i]
	r.slab.items[r.heap[i]].heap = int32(i)
	r.slab.items[r.heap[j]].heap = int32(j)
}

func (r *run) heapPush(slot int32) {
	r.heap = append(r.heap, slot)
	i := len(r.heap) - 1
	r.slab.items[slot].heap = int32(i)
	r.heapUp(i)
}

func (r *run) heapUp(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !r.heapLess(i, parent) {
			return
		}
		r.heapSwap(i, parent)
		i = parent
	}
}

func (r *run) heapDown(i int) {
	n := len(r.heap)
	for {
		least := i
		if l := 2*i + 1; l < n && r.heapLess(l, least) {
			least = l
		}
		if rt := 2*i + 2; rt < n && r.heapLess(rt, least) {
			least = rt
		}
		if least == i {
			return
		}
		r.heapSwap(i, least)
		i = least
	}
}

// heapRemove takes slot out of the heap; it is then awaiting
// retransmission until it is queued or released.
func (r *run) heapRemove(slot int32) {
	i := int(r.slab.items[slot].heap)
	last := len(r.heap) - 1
	if i != last {
		r.heapSwap(i, last)
	}
	r.heap = r.heap[:last]
	r.slab.items[slot].heap = inQueue
	if i != last {
		r.heapDown(i)
		r.heapUp(i)
	}
}
