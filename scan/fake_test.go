package scan

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// addrList is an AddrSet of listed addresses.
type addrList []netip.Addr

func (a addrList) Len() uint64            { return uint64(len(a)) }
func (a addrList) At(i uint64) netip.Addr { return a[i] }

// addrRange is an AddrSet of n IPv4 addresses from base, computed, so that
// a huge set costs no memory.
type addrRange struct {
	base uint32
	n    uint64
}

func (a addrRange) Len() uint64 { return a.n }
func (a addrRange) At(i uint64) netip.Addr {
	v := a.base + uint32(i)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// portRange is a PortSet of the ports lo..hi of one protocol.
type portRange struct {
	lo, hi uint16
	proto  Proto
}

func (p portRange) Len() uint64 { return uint64(p.hi) - uint64(p.lo) + 1 }
func (p portRange) At(i uint64) (uint16, Proto) {
	return p.lo + uint16(i), p.proto
}

// portList is a PortSet of listed ports.
type portList []struct {
	port  uint16
	proto Proto
}

func (p portList) Len() uint64                 { return uint64(len(p)) }
func (p portList) At(i uint64) (uint16, Proto) { return p[i].port, p[i].proto }

// fakeEngine answers probes by a rule, at once or after a delay, from its
// own goroutine; answer returns ok false for silence.
type fakeEngine struct {
	proto  Proto
	answer func(p Probe, attempt int) (st State, ok bool)
	delay  time.Duration                            // of every answer; 0: from Send, without blocking
	delays func(p Probe, attempt int) time.Duration // or of each; overrides delay
	// cancelOnDone drops a delayed answer whose attempt was given up, as
	// the connect engine does by closing its socket.
	cancelOnDone bool
	record       bool // keep every (probe, attempt) sent, and when

	ctx     context.Context
	replies chan<- Reply
	wg      sync.WaitGroup

	mu       sync.Mutex
	sent     []Probe
	sentAt   []time.Time
	inflight map[Probe]int
	maxIn    int
	sends    atomic.Int64
	dones    atomic.Int64
	closed   atomic.Bool
	badDone  atomic.Int64 // Done without a Send
}

func (f *fakeEngine) Name() string { return "fake" }
func (f *fakeEngine) Proto() Proto {
	if f.proto == 0 {
		return TCP
	}
	return f.proto
}

func (f *fakeEngine) Start(ctx context.Context, replies chan<- Reply) error {
	f.ctx, f.replies = ctx, replies
	f.inflight = make(map[Probe]int)
	return nil
}

func (f *fakeEngine) Send(p Probe, attempt int) error {
	f.mu.Lock()
	if f.record {
		f.sent = append(f.sent, p)
		f.sentAt = append(f.sentAt, time.Now())
	}
	if _, dup := f.inflight[p]; dup {
		f.mu.Unlock()
		return fmt.Errorf("send %v:%d while in flight", p.IP, p.Port)
	}
	f.inflight[p] = attempt
	f.maxIn = max(f.maxIn, len(f.inflight))
	f.mu.Unlock()
	f.sends.Add(1)
	st, ok := f.answer(p, attempt)
	if !ok {
		return nil
	}
	r := Reply{Probe: p, State: st, Reason: "fake", Attempt: attempt}
	d := f.delay
	if f.delays != nil {
		d = f.delays(p, attempt)
	}
	if d > 0 {
		f.wg.Add(1)
		time.AfterFunc(d, func() {
			defer f.wg.Done()
			if f.cancelOnDone {
				f.mu.Lock()
				a, ok := f.inflight[p]
				f.mu.Unlock()
				if !ok || a != attempt {
					return
				}
			}
			r.At = time.Now()
			select {
			case f.replies <- r:
			case <-f.ctx.Done():
			}
		})
		return nil
	}
	r.At = time.Now()
	select {
	case f.replies <- r:
		return nil
	default:
		// The scanner's buffer is full: say busy, as a real engine would,
		// and forget the attempt.
		f.mu.Lock()
		delete(f.inflight, p)
		f.mu.Unlock()
		f.sends.Add(-1)
		return ErrBusy
	}
}

func (f *fakeEngine) Done(p Probe) {
	f.dones.Add(1)
	f.mu.Lock()
	if _, ok := f.inflight[p]; !ok {
		f.badDone.Add(1)
	}
	delete(f.inflight, p)
	f.mu.Unlock()
}

func (f *fakeEngine) Close() error {
	f.closed.Store(true)
	f.wg.Wait()
	return nil
}

func (f *fakeEngine) sentProbes() []Probe {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

// sendTimes is when each attempt at a probe to ip was sent, in order.
func (f *fakeEngine) sendTimes(ip netip.Addr) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ts []time.Time
	for i, p := range f.sent {
		if p.IP == ip {
			ts = append(ts, f.sentAt[i])
		}
	}
	return ts
}

// pacedFake is a fake engine that sets a pace for hosts (HostPacer), and
// counts how often it is asked.
type pacedFake struct {
	*fakeEngine
	rate  func(ip netip.Addr) float64
	asked atomic.Int64
}

func (p *pacedFake) HostRate(ip netip.Addr) float64 {
	p.asked.Add(1)
	return p.rate(ip)
}

// collect is a Sink that keeps every result.
type collect struct {
	mu      sync.Mutex
	results []Result
	onEach  func(n int)
}

func (c *collect) Result(r Result) error {
	c.mu.Lock()
	c.results = append(c.results, r)
	n := len(c.results)
	c.mu.Unlock()
	if c.onEach != nil {
		c.onEach(n)
	}
	return nil
}

// scanAll runs s to its end, bounded in time, and returns its results
// by probe, failing the test on an error or a probe decided twice.
func scanAll(t testing.TB, s *Scanner) (Stats, map[Probe]Result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var c collect
	st, err := s.Run(ctx, &c)
	if err != nil {
		t.Fatal(err)
	}
	m, err := byProbe(c.results)
	if err != nil {
		t.Fatal(err)
	}
	return st, m
}

// byProbe indexes results, failing on a probe decided twice.
func byProbe(rs []Result) (map[Probe]Result, error) {
	m := make(map[Probe]Result, len(rs))
	for _, r := range rs {
		if _, dup := m[r.Probe]; dup {
			return nil, fmt.Errorf("%v:%d decided twice", r.IP, r.Port)
		}
		m[r.Probe] = r
	}
	return m, nil
}

// hash01 is a deterministic number in [0, 1) for a probe and attempt.
func hash01(p Probe, attempt int, salt uint64) float64 {
	a := p.IP.As16()
	var h uint64 = salt
	for _, b := range a {
		h = mix64(h ^ uint64(b))
	}
	h = mix64(h ^ uint64(p.Port)<<8 ^ uint64(attempt)<<32)
	return float64(h>>11) / (1 << 53)
}
