package scan

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/netip"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// closedAt answers every probe closed but those to open ports.
func closedAt(open ...uint16) func(Probe, int) (State, bool) {
	return func(p Probe, _ int) (State, bool) {
		for _, o := range open {
			if p.Port == o {
				return Open, true
			}
		}
		return Closed, true
	}
}

func TestScanFakeAllDecided(t *testing.T) {
	eng := &fakeEngine{answer: closedAt(22, 80, 443)}
	s := Scanner{
		Targets: addrRange{base: 0xc6120000, n: 50}, // 198.18.0.0/…
		Ports:   portRange{1, 1000, TCP},
		Engine:  eng,
	}
	st, m := scanAll(t, &s)
	if len(m) != 50*1000 || st.Done != 50*1000 || st.Probes != 50*1000 {
		t.Fatalf("%d results (stats: %d done of %d), want %d", len(m), st.Done, st.Probes, 50*1000)
	}
	if st.Open != 150 || st.Closed != 50*1000-150 || st.Answered != st.Done || st.Retransmitted != 0 {
		t.Errorf("stats %+v", st)
	}
	if st.Cursor != nil {
		t.Errorf("a finished scan has a cursor")
	}
	if n := eng.badDone.Load(); n > 0 || eng.sends.Load() != eng.dones.Load() {
		t.Errorf("engine: %d sends, %d Done, %d Done without a Send", eng.sends.Load(), eng.dones.Load(), n)
	}
}

// Silence is retransmitted, and what stays silent ends filtered (TCP) or
// open|filtered (UDP) after exactly 1+Retries attempts.
func TestScanRetransmitsSilence(t *testing.T) {
	const retries = 3
	for _, proto := range []Proto{TCP, UDP} {
		eng := &fakeEngine{proto: proto, record: true, answer: func(p Probe, attempt int) (State, bool) {
			switch {
			case p.Port%10 == 0:
				return 0, false // never answers
			case p.Port%10 == 1:
				return Open, attempt == retries+1 // answers the last try only
			}
			// Lost 0 to retries times, then answered.
			return Closed, attempt > int(hash01(p, 0, 1)*(retries+1))
		}}
		s := Scanner{
			Targets: addrList{netip.MustParseAddr("198.18.0.2")},
			Ports:   portRange{1, 400, proto},
			Retries: retries,
			MinRTT:  time.Millisecond, InitialRTT: 5 * time.Millisecond,
		}
		if proto == TCP {
			s.Engine = eng
		} else {
			s.UDPEngine = eng
		}
		st, m := scanAll(t, &s)
		silent := Filtered
		if proto == UDP {
			silent = OpenFiltered
		}
		for p, r := range m {
			want := Closed
			switch p.Port % 10 {
			case 0:
				want = silent
			case 1:
				want = Open
			}
			if r.State != want {
				t.Errorf("%v %d: %v (%s), want %v", proto, p.Port, r.State, r.Reason, want)
			}
		}
		attempts := map[uint16]int{}
		for _, p := range eng.sentProbes() {
			attempts[p.Port]++
		}
		for port, n := range attempts {
			if (port%10 == 0 || port%10 == 1) && n != retries+1 {
				t.Errorf("%v %d: %d attempts, want %d", proto, port, n, retries+1)
			}
			if n > retries+1 {
				t.Errorf("%v %d: %d attempts", proto, port, n)
			}
		}
		if st.Retransmitted == 0 || st.Sent != uint64(len(eng.sentProbes())) {
			t.Errorf("stats %+v", st)
		}
	}
}

func TestScanShards(t *testing.T) {
	const seed = 12345
	targets := addrRange{base: 0xc6120000, n: 37}
	ports := portRange{1, 101, TCP}
	run := func(shard, shards int) []Result {
		var c collect
		s := Scanner{Targets: targets, Ports: ports, Seed: seed, Shard: shard, Shards: shards,
			Engine: &fakeEngine{answer: closedAt(7, 77)}}
		if _, err := s.Run(t.Context(), &c); err != nil {
			t.Fatal(err)
		}
		return c.results
	}
	whole, err := byProbe(run(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	var all []Result
	for i := range 4 {
		all = append(all, run(i, 4)...)
	}
	union, err := byProbe(all) // fails on overlap
	if err != nil {
		t.Fatalf("shards overlap: %v", err)
	}
	if len(union) != len(whole) {
		t.Fatalf("shards decide %d probes, the whole scan %d", len(union), len(whole))
	}
	for p, r := range whole {
		if u, ok := union[p]; !ok || u.State != r.State {
			t.Fatalf("%v:%d: whole scan %v, shards %v", p.IP, p.Port, r.State, u.State)
		}
	}
}

// A scan interrupted and resumed from its cursor (through JSON) decides
// every probe exactly once, and probes twice only what was outstanding.
func TestScanResume(t *testing.T) {
	targets := addrRange{base: 0xc6120000, n: 20}
	ports := portRange{1, 500, TCP}
	answer := func(p Probe, attempt int) (State, bool) {
		return Closed, hash01(p, attempt, 7) > 0.2
	}
	base := Scanner{Targets: targets, Ports: ports, Seed: 99, Shard: 1, Shards: 2,
		MinRTT: time.Millisecond, InitialRTT: 2 * time.Millisecond, Rate: 50000}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	first := &collect{onEach: func(n int) {
		if n == 1234 {
			cancel()
		}
	}}
	eng1 := &fakeEngine{answer: answer, record: true, delay: time.Millisecond}
	s1 := base
	s1.Engine = eng1
	st1, err := s1.Run(ctx, first)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted scan: %v", err)
	}
	if st1.Cursor == nil {
		t.Fatal("interrupted scan has no cursor")
	}
	js, err := json.Marshal(st1.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	var cur Cursor
	if err := json.Unmarshal(js, &cur); err != nil {
		t.Fatal(err)
	}
	if len(cur.Pending) == 0 {
		t.Fatalf("cursor %s: nothing outstanding at the interrupt; the test means to have some", js)
	}

	eng2 := &fakeEngine{answer: answer, record: true}
	s2 := base
	s2.Seed, s2.Shard, s2.Shards = 0, 0, 0 // the cursor's count
	s2.Engine, s2.Resume = eng2, &cur
	second := &collect{}
	cur.Pending = slices.Grow(cur.Pending, 8) // room that Run must not write into
	before := slices.Clone(cur.Pending)
	if _, err := s2.Run(t.Context(), second); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cur.Pending, before) || !slices.Equal(cur.Pending[:cap(cur.Pending)][len(before):], make([]uint64, cap(cur.Pending)-len(before))) {
		t.Fatal("Run wrote into the Cursor it resumed from")
	}

	whole := &collect{}
	s3 := base
	s3.Engine = &fakeEngine{answer: answer}
	if _, err := s3.Run(t.Context(), whole); err != nil {
		t.Fatal(err)
	}
	want, _ := byProbe(whole.results)
	got, err := byProbe(append(first.results, second.results...))
	if err != nil {
		t.Fatalf("interrupted + resumed: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("interrupted + resumed decide %d probes, the whole scan %d", len(got), len(want))
	}
	for p := range want {
		if _, ok := got[p]; !ok {
			t.Fatalf("%v:%d not decided after resume", p.IP, p.Port)
		}
	}
	// Probed in both runs: only the outstanding ones.
	pending := map[Probe]bool{}
	r := run{targets: targets, ports: ports, nports: ports.Len()}
	for _, i := range cur.Pending {
		pending[r.probe(i)] = true
	}
	sent1 := map[Probe]bool{}
	for _, p := range eng1.sentProbes() {
		sent1[p] = true
	}
	for _, p := range eng2.sentProbes() {
		if sent1[p] && !pending[p] {
			t.Fatalf("%v:%d probed in both runs and not outstanding", p.IP, p.Port)
		}
	}
	t.Logf("interrupted after %d results with %d outstanding; resumed %d", len(first.results), len(cur.Pending), len(second.results))
}

func TestScanResumeMismatch(t *testing.T) {
	c := &Cursor{Version: cursorVersion, Size: 10, Shards: 1}
	s := Scanner{Targets: addrRange{n: 3}, Ports: portRange{1, 4, TCP}, Resume: c, Engine: &fakeEngine{answer: closedAt()}}
	_, err := s.Run(t.Context(), &collect{})
	var ce *ConfigError
	if !errors.As(err, &ce) || !ce.BadInput() {
		t.Fatalf("resume of another scan: %v, want a ConfigError", err)
	}

	// The same size, other ports: told apart by the sum.
	c = &Cursor{Version: cursorVersion, Size: 12, Sum: scanSum(addrRange{n: 3}, portRange{1, 4, TCP}), Shards: 1}
	s = Scanner{Targets: addrRange{n: 3}, Ports: portRange{2, 5, TCP}, Resume: c, Engine: &fakeEngine{answer: closedAt()}}
	if _, err := s.Run(t.Context(), &collect{}); !errors.As(err, &ce) {
		t.Fatalf("resume with other ports of the same count: %v, want a ConfigError", err)
	}
	s.Ports = portRange{1, 4, TCP}
	if _, err := s.Run(t.Context(), &collect{}); err != nil {
		t.Fatalf("resume of the same scan: %v", err)
	}
}

func TestScanConfigErrors(t *testing.T) {
	eng := &fakeEngine{answer: closedAt()}
	one := addrList{netip.MustParseAddr("127.0.0.1")}
	for name, s := range map[string]Scanner{
		"no targets":      {Ports: portRange{1, 2, TCP}},
		"shard ≥ shards":  {Targets: one, Ports: portRange{1, 2, TCP}, Shard: 4, Shards: 4, Engine: eng},
		"negative shard":  {Targets: one, Ports: portRange{1, 2, TCP}, Shard: -1, Shards: 4, Engine: eng},
		"udp, no engine":  {Targets: one, Ports: portRange{1, 2, UDP}, Engine: eng},
		"overflow":        {Targets: addrRange{n: 1 << 60}, Ports: portRange{1, 100, TCP}, Engine: eng},
		"min above max":   {Targets: one, Ports: portRange{1, 2, TCP}, MinRTT: time.Second, MaxRTT: time.Millisecond, Engine: eng},
		"rate NaN":        {Targets: one, Ports: portRange{1, 2, TCP}, Rate: math.NaN(), Engine: eng},
		"retries":         {Targets: one, Ports: portRange{1, 2, TCP}, Retries: 1 << 32, Engine: eng},
		"initial > rate":  {Targets: one, Ports: portRange{1, 2, TCP}, Rate: 10, InitialRate: 20, Engine: eng},
		"min rate > rate": {Targets: one, Ports: portRange{1, 2, TCP}, Rate: 10, MinRate: 20, Engine: eng},
		"min rate < 0":    {Targets: one, Ports: portRange{1, 2, TCP}, MinRate: -1, Engine: eng},
	} {
		_, err := s.Run(t.Context(), &collect{})
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s: %v, want a ConfigError", name, err)
		}
	}
}

// Cancelling stops a scan of silent targets at once, with a cursor.
func TestScanCancelPrompt(t *testing.T) {
	eng := &fakeEngine{answer: func(Probe, int) (State, bool) { return 0, false }}
	s := Scanner{Targets: addrRange{base: 0xc6120000, n: 1 << 16}, Ports: portRange{1, 1000, TCP}, Engine: eng, Rate: 20000}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	st, err := s.Run(ctx, &collect{})
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	if took > time.Second {
		t.Errorf("Run returned %v after it was cancelled", took-100*time.Millisecond)
	}
	if st.Cursor == nil || st.Cursor.Next == 0 || uint64(len(st.Cursor.Pending)) != st.Cursor.Next {
		t.Errorf("cursor %+v: want every probe taken still pending (nothing answers, none timed out)", st.Cursor)
	}
	if !eng.closed.Load() {
		t.Errorf("engine not closed")
	}
}

// The rate bound holds through the scheduler: about a second at 2000/s
// sends at most 2000 + burst (measured by the engine's clock, real time).
func TestScanRateBound(t *testing.T) {
	const rate = 2000
	var times []time.Time
	eng := &fakeEngine{answer: func(Probe, int) (State, bool) {
		times = append(times, time.Now()) // Send runs on Run's goroutine
		return Closed, true
	}}
	s := Scanner{Targets: addrRange{base: 0xc6120000, n: 100}, Ports: portRange{1, 25, TCP}, Engine: eng, Rate: rate}
	st, err := s.Run(t.Context(), &collect{})
	if err != nil {
		t.Fatal(err)
	}
	burst := scheduleBurst(rate)
	j := 0
	for i := range times {
		for times[i].Sub(times[j]) >= time.Second {
			j++
		}
		if n := i - j + 1; n > rate+burst {
			t.Fatalf("%d probes within one second at rate %d", n, rate)
		}
	}
	if st.Elapsed < 1200*time.Millisecond {
		t.Errorf("2500 probes at %d/s took %v", rate, st.Elapsed)
	}
}

// Memory stays flat: state is kept per outstanding probe, never per probe
// of the scan. 6.5 M probes (a /16 × 100 ports) through an engine that
// answers at once, with the heap sampled as results arrive.
func TestScanMemoryFlat(t *testing.T) {
	n := uint64(1 << 16)
	if testing.Short() || raceEnabled {
		n = 1 << 12
	}
	eng := &fakeEngine{answer: closedAt(22, 80)}
	s := Scanner{Targets: addrRange{base: 0x0a000000, n: n}, Ports: portRange{1, 100, TCP}, Engine: eng}
	var peak uint64
	var count uint64
	sink := SinkFunc(func(r Result) error {
		count++
		if count%500000 == 0 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Second)
	defer cancel()
	st, err := s.Run(ctx, sink)
	if err != nil {
		t.Fatalf("after %d of %d probes in %v: %v", count, n*100, st.Elapsed, err)
	}
	if count != n*100 {
		t.Fatalf("%d results, want %d", count, n*100)
	}
	const bound = 64 << 20
	if peak > bound {
		t.Errorf("heap in use peaked at %d MiB, want under %d MiB", peak>>20, bound>>20)
	}
	t.Logf("%d probes in %v (%.0f/s), heap in use peaked at %.1f MiB", count, st.Elapsed, st.Rate, float64(peak)/(1<<20))
}

// boundedFake is a fake engine that can hold only a few probes in flight.
type boundedFake struct {
	*fakeEngine
	n int
}

func (b boundedFake) MaxInFlight() (int, string) { return b.n, "fake bound" }

// An engine's bound is kept, and reported as the bottleneck when the scan
// spends its time waiting on it.
func TestScanInFlightLimited(t *testing.T) {
	eng := &fakeEngine{answer: closedAt(), delay: 2 * time.Millisecond}
	s := Scanner{Targets: addrRange{base: 0xc6120000, n: 4}, Ports: portRange{1, 100, TCP}, Engine: boundedFake{eng, 4}}
	st, err := s.Run(t.Context(), &collect{})
	if err != nil {
		t.Fatal(err)
	}
	if eng.maxIn > 4 {
		t.Errorf("%d probes in flight, bound 4", eng.maxIn)
	}
	if !st.InFlightLimited || st.InFlightLimit != 4 || st.InFlightLimitBy != "fake engine: fake bound" {
		t.Errorf("stats: limited %v, limit %d (%q); want the engine's bound named as the bottleneck",
			st.InFlightLimited, st.InFlightLimit, st.InFlightLimitBy)
	}

	// Without the bound, the same scan is not limited by it.
	s.Engine = &fakeEngine{answer: closedAt(), delay: 2 * time.Millisecond}
	if st, _ = s.Run(t.Context(), &collect{}); st.InFlightLimited {
		t.Errorf("unbounded engine reported as limited")
	}
}

func TestScanProgress(t *testing.T) {
	var calls []Stats
	s := Scanner{Targets: addrRange{base: 0xc6120000, n: 1}, Ports: portRange{1, 600, TCP}, Rate: 1000,
		Engine:   &fakeEngine{answer: closedAt()},
		Progress: func(st Stats) { calls = append(calls, st) }}
	st, err := s.Run(t.Context(), &collect{})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) < 2 || len(calls) > 5 {
		t.Fatalf("%d progress calls in %v, want about four a second", len(calls), st.Elapsed)
	}
	for i := 1; i < len(calls); i++ {
		if calls[i].Sent < calls[i-1].Sent || calls[i].Elapsed <= calls[i-1].Elapsed {
			t.Errorf("progress goes backwards: %+v then %+v", calls[i-1], calls[i])
		}
	}
}

// A failing sink stops the scan; the probe whose result was lost is in the
// cursor, to be probed again.
func TestScanSinkError(t *testing.T) {
	boom := errors.New("disk full")
	n := 0
	var lost Probe
	sink := SinkFunc(func(r Result) error {
		if n++; n == 50 {
			lost = r.Probe
			return boom
		}
		return nil
	})
	targets, ports := addrRange{base: 0xc6120000, n: 2}, portRange{1, 100, TCP}
	s := Scanner{Targets: targets, Ports: ports, Engine: &fakeEngine{answer: closedAt()}}
	st, err := s.Run(t.Context(), sink)
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want the sink's", err)
	}
	if st.Cursor == nil {
		t.Fatal("no cursor")
	}
	r := run{targets: targets, ports: ports, nports: ports.Len()}
	found := false
	for _, i := range st.Cursor.Pending {
		found = found || r.probe(i) == lost
	}
	if !found {
		t.Errorf("the probe whose result the sink refused is not pending in the cursor")
	}
}

// A target listed twice is probed twice, never with two of the same probe
// in flight at once.
func TestScanDuplicateTargets(t *testing.T) {
	a := netip.MustParseAddr("198.18.0.9")
	eng := &fakeEngine{answer: closedAt(), delay: time.Millisecond}
	s := Scanner{Targets: addrList{a, a, a}, Ports: portRange{1, 50, TCP}, Engine: eng}
	var c collect
	if _, err := s.Run(t.Context(), &c); err != nil {
		t.Fatal(err) // the fake fails a Send of a probe already in flight
	}
	if len(c.results) != 150 {
		t.Errorf("%d results, want 150", len(c.results))
	}
}

// A host farther than the timeout learned from others is still answered:
// the backed-off timeout of later attempts outgrows its round trip, even
// with an engine that drops the answers to abandoned attempts.
func TestScanFarHostBackoff(t *testing.T) {
	near, far := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	eng := &fakeEngine{answer: closedAt(), cancelOnDone: true, delays: func(p Probe, _ int) time.Duration {
		if p.IP == far {
			return 30 * time.Millisecond
		}
		return 0
	}}
	s := Scanner{Targets: addrList{near, far, near.Next().Next(), near.Next().Next().Next()}, Ports: portRange{1, 50, TCP}, Engine: eng,
		MinRTT: 10 * time.Millisecond, InitialRTT: 10 * time.Millisecond}
	st, m := scanAll(t, &s)
	for p, r := range m {
		if r.State != Closed {
			t.Errorf("%v:%d: %v, want closed", p.IP, p.Port, r.State)
		}
	}
	if st.Retransmitted == 0 {
		t.Errorf("no retransmissions: the far host was not farther than the timeout")
	}
}

// HostTimeout gives up hosts: probes to them after the timeout are skipped,
// and every probe is either decided or skipped.
func TestScanHostTimeout(t *testing.T) {
	s := Scanner{Targets: addrRange{base: 0xc6120000, n: 4}, Ports: portRange{1, 100, TCP},
		Engine: &fakeEngine{answer: closedAt()}, Rate: 2000, HostTimeout: 50 * time.Millisecond}
	st, m := scanAll(t, &s)
	if st.Skipped == 0 || st.Done == 0 || st.Done+st.Skipped != st.Probes || uint64(len(m)) != st.Done {
		t.Errorf("%d probes: %d done, %d skipped, %d results", st.Probes, st.Done, st.Skipped, len(m))
	}
}

// Random loss costs retransmissions, not rate: through the scheduler, with
// 10% of attempts unanswered at random, the scan keeps near its rate cap and
// still decides every probe by an answer.
func TestScanRandomLossKeepsRate(t *testing.T) {
	const rate = 20000
	eng := &fakeEngine{answer: func(p Probe, attempt int) (State, bool) {
		return Closed, hash01(p, attempt, 3) >= 0.10
	}}
	s := Scanner{Targets: addrRange{base: 0xc6120000, n: 64}, Ports: portRange{1, 500, TCP}, Engine: eng,
		Rate: rate, MinRTT: 5 * time.Millisecond, InitialRTT: 20 * time.Millisecond}
	st, m := scanAll(t, &s)
	if st.Answered != st.Probes || uint64(len(m)) != st.Probes {
		t.Errorf("%d of %d probes answered", st.Answered, st.Probes)
	}
	// What random loss must not do is lower the pace: that is the pacer's
	// decision, checked here. The attempts actually made a second depend on
	// how busy the machine is, so they are only held to the cap.
	if st.Pace < 0.85*rate {
		t.Errorf("pace %.0f/s at the end, want near the cap %d: random loss lowered it", st.Pace, rate)
	}
	if st.Rate > 1.01*rate {
		t.Errorf("%.0f attempts/s, over the cap %d", st.Rate, rate)
	}
	t.Logf("%d probes, %d attempts in %v: %.0f/s, %d retransmitted", st.Probes, st.Sent, st.Elapsed, st.Rate, st.Retransmitted)
}

// BenchmarkScanFake is the scheduler alone: 256 hosts × 256 TCP ports
// through a fake engine that answers every probe at once, without a rate
// ("free"), under a rate cap too high to bind ("capped"), so that the
// token bucket and the pacer are on the path, and through an engine that
// is a HostPacer but paces no host ("hostpacer"). probes/s is the figure.
func BenchmarkScanFake(b *testing.B) {
	for _, c := range []struct {
		name   string
		rate   float64
		pacing bool
	}{{"free", 0, false}, {"capped", 1e9, false}, {"hostpacer", 0, true}} {
		b.Run(c.name, func(b *testing.B) {
			const n = 256 * 256
			b.ReportAllocs()
			for b.Loop() {
				var eng Engine = &fakeEngine{answer: closedAt(22)}
				if c.pacing {
					eng = &pacedFake{fakeEngine: eng.(*fakeEngine), rate: func(netip.Addr) float64 { return 0 }}
				}
				s := Scanner{Targets: addrRange{base: 0xc6120000, n: 256}, Ports: portRange{1, 256, TCP},
					Engine: eng, Rate: c.rate}
				st, err := s.Run(b.Context(), SinkFunc(func(Result) error { return nil }))
				if err != nil {
					b.Fatal(err)
				}
				if st.Done != n {
					b.Fatalf("%d done", st.Done)
				}
			}
			b.ReportMetric(float64(b.N)*n/b.Elapsed().Seconds(), "probes/s")
		})
	}
}

// TestScanLowMaxRTT: a MaxRTT under the default MinRTT, MinRTT not given,
// lowers the floor rather than being refused.
func TestScanLowMaxRTT(t *testing.T) {
	s := Scanner{Targets: addrList{netip.MustParseAddr("127.0.0.1")}, Ports: portRange{1, 2, TCP},
		MaxRTT: DefaultMinRTT / 2, Engine: &fakeEngine{answer: closedAt()}}
	if _, err := s.Run(t.Context(), &collect{}); err != nil {
		t.Fatal(err)
	}
}

// TestScanHostTimeoutDecidesSent: a probe sent but unanswered when its
// host times out ends filtered, "host-timeout", rather than vanishing.
func TestScanHostTimeoutDecidesSent(t *testing.T) {
	s := Scanner{Targets: addrList{netip.MustParseAddr("198.18.0.9")}, Ports: portRange{1, 3, TCP},
		Engine:     &fakeEngine{answer: func(Probe, int) (State, bool) { return 0, false }},
		InitialRTT: 50 * time.Millisecond, MinRTT: 50 * time.Millisecond, HostTimeout: 60 * time.Millisecond}
	st, m := scanAll(t, &s)
	if st.Done != 3 || len(m) != 3 {
		t.Fatalf("%d probes: %d done, %d skipped, %d results; want all 3 decided", st.Probes, st.Done, st.Skipped, len(m))
	}
	for p, r := range m {
		if r.State != Filtered || r.Reason != "host-timeout" {
			t.Errorf("%v:%d: %v %q, want filtered, host-timeout", p.IP, p.Port, r.State, r.Reason)
		}
	}
}

// TestScanProgressWhileWaiting: Progress comes about four times a second
// even while the scan only waits for a slow timeout.
func TestScanProgressWhileWaiting(t *testing.T) {
	var calls atomic.Int32
	s := Scanner{Targets: addrList{netip.MustParseAddr("198.18.0.9")}, Ports: portRange{1, 1, TCP},
		Engine:     &fakeEngine{answer: func(Probe, int) (State, bool) { return 0, false }},
		InitialRTT: 1500 * time.Millisecond, MinRTT: 1500 * time.Millisecond, Retries: -1,
		Progress: func(Stats) { calls.Add(1) }}
	scanAll(t, &s)
	if n := calls.Load(); n < 4 {
		t.Errorf("%d Progress calls over a 1.5 s wait, want about six", n)
	}
}
