package scan

import (
	"math/rand/v2"
	"testing"
	"time"
)

// The bucket is a hard bound: a sender that asks as often as it likes gets
// no more than rate·t + burst tokens in any stretch of t.
func TestTokenBucketBound(t *testing.T) {
	for _, rate := range []float64{1, 10, 999, 1000, 12345, 100000, 1e6} {
		start := 5 * time.Second
		b := newTokenBucket(rate, start)
		// Greedy: ask every microsecond for 1.5 s, and record grant times.
		var grants []time.Duration
		for now := start; now < start+1500*time.Millisecond; now += time.Microsecond {
			for b.take(now) {
				grants = append(grants, now)
			}
		}
		// Any window of one second holds at most rate + burst grants.
		limit := int(rate + b.burst)
		j := 0
		for i := range grants {
			for grants[i]-grants[j] >= time.Second {
				j++
			}
			if n := i - j + 1; n > limit {
				t.Fatalf("rate %v: %d grants within one second, limit %d", rate, n, limit)
			}
		}
		// And it is not far below: 1.5 s at rate, plus the first burst.
		if want := int(1.5*rate) - 1; len(grants) < want {
			t.Errorf("rate %v: %d grants in 1.5 s, want at least %d", rate, len(grants), want)
		}
	}
}

func TestTokenBucketWait(t *testing.T) {
	b := newTokenBucket(1000, 0)
	for b.take(0) {
	}
	w := b.wait(0)
	if w <= 0 || w > time.Millisecond {
		t.Fatalf("wait after emptying at 1000/s = %v, want (0, 1ms]", w)
	}
	if !b.take(w) {
		t.Fatalf("no token after waiting %v", w)
	}
	// Lowering the rate keeps the bound at the new rate.
	b.setRate(w, 10)
	n := 0
	for now := w; now < w+time.Second; now += time.Millisecond {
		if b.take(now) {
			n++
		}
	}
	if n > 10+int(b.burst) {
		t.Errorf("%d grants in a second at 10/s", n)
	}
}

// A sender that sleeps until the next send is due and wakes late, as a
// timer does, still gets the rate: the schedule owes it what it missed.
// (A token bucket one token deep delivered 167/s of --rate 200 so.)
func TestScheduleDeliversRateDespiteLateWakeups(t *testing.T) {
	for _, c := range []struct {
		rate float64
		late time.Duration // every wake-up, at most
	}{
		{200, time.Millisecond}, {200, 4 * time.Millisecond}, {1, 300 * time.Millisecond},
		{1000, 500 * time.Microsecond}, {50000, 100 * time.Microsecond}, {3, 0},
	} {
		rng := rand.New(rand.NewPCG(1, 2))
		const d = 20 * time.Second
		s := newSchedule(c.rate, 0)
		sends := 0
		for now := time.Duration(0); now < d; {
			for s.ready(now) {
				s.take(now)
				sends++
			}
			now += s.wait(now)
			if c.late > 0 {
				now += time.Duration(rng.Int64N(int64(c.late) + 1))
			}
		}
		// All that fell due, but those due in the last wake-up's lateness.
		want := c.rate * d.Seconds()
		if float64(sends) < want-c.rate*c.late.Seconds()-1 || float64(sends) > want+float64(s.burst) {
			t.Errorf("rate %v, wake-ups up to %v late: %d sends in %v, want %.0f", c.rate, c.late, sends, d, want)
		}
	}
}

// The schedule is a hard bound: a sender that asks as often as it likes, or
// comes back after a stall, gets no more than rate·t + burst sends in any
// stretch of t, and makes up a stall with one burst at most.
func TestScheduleBound(t *testing.T) {
	for _, rate := range []float64{0.5, 1, 10, 200, 999, 12345, 100000, 1e6} {
		start := 5 * time.Second
		s := newSchedule(rate, start)
		var sends []time.Duration
		step := min(time.Duration(float64(time.Second)/rate/3), time.Millisecond)
		end := start + 3*time.Second
		for now := start; now < end; now += step {
			if now >= start+time.Second && now < start+2*time.Second {
				continue // a stall of a second
			}
			for s.ready(now) {
				s.take(now)
				sends = append(sends, now)
			}
		}
		limit := int(rate) + s.burst
		j := 0
		for i := range sends {
			for sends[i]-sends[j] >= time.Second {
				j++
			}
			if n := i - j + 1; n > limit {
				t.Fatalf("rate %v: %d sends within one second, limit %d", rate, n, limit)
			}
		}
		atOnce := 0
		for i, n := 0, 0; i < len(sends); i++ {
			if i > 0 && sends[i] == sends[i-1] {
				n++
			} else {
				n = 1
			}
			atOnce = max(atOnce, n)
		}
		if atOnce > s.burst {
			t.Errorf("rate %v: %d sends at one instant, burst %d", rate, atOnce, s.burst)
		}
	}
}

// A rate below the cap is the pacer's: it starts there, within the floor
// and cap given, and grows toward the cap while every probe is answered.
func TestPacerStartsAtInitialAndGrows(t *testing.T) {
	p := newPacer(10000, 1000, 0, 0)
	if p.rate != 1000 || p.floor != 10000.0/64 {
		t.Fatalf("rate %v, floor %v; want 1000 and the default floor", p.rate, p.floor)
	}
	now := time.Duration(0)
	for i := 0; i < 200000 && p.rate < 10000; i++ {
		p.outcome(p.sent(now), true)
		now += time.Duration(float64(time.Second) / p.rate)
	}
	if p.rate != 10000 {
		t.Fatalf("rate %v after steady answers, want the cap", p.rate)
	}
	if p := newPacer(100, 5, 20, 0); p.rate != 20 || p.floor != 20 {
		t.Errorf("initial 5 under a floor of 20: rate %v, floor %v", p.rate, p.floor)
	}
	if p := newPacer(100, 500, 200, 0); p.rate != 100 || p.floor != 100 {
		t.Errorf("initial and floor above the cap: rate %v, floor %v, want both 100", p.rate, p.floor)
	}
}

// link is a simulated path for the pacer: a bottleneck of capacity pps with
// a buffer of buffer seconds (drop-tail), a base round trip, and random
// loss each way. Pure logic on a fake clock.
type link struct {
	capacity float64 // 0: no bottleneck
	buffer   time.Duration
	base     time.Duration
	loss     float64 // each way
}

type simResult struct {
	rate    float64 // probes per second over the second half
	loss    float64 // fraction of attempts unanswered in time, second half
	minRate float64 // lowest pacer rate in the second half
}

func simulate(t *testing.T, l link, cap float64, d time.Duration, seed uint64) simResult {
	t.Helper()
	const step = time.Millisecond
	const timeout = 300 * time.Millisecond
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	p := newPacer(cap, 0, 0, 0)
	b := newSchedule(cap, 0)

	type event struct {
		sent     time.Duration
		window   uint32
		answered bool
	}
	const slots = 1024 // ms; longer than any delay
	ring := make([][]event, slots)
	at := func(when time.Duration, e event) {
		i := int(when/step) % slots
		ring[i] = append(ring[i], e)
	}
	var busyUntil time.Duration
	var r simResult
	r.minRate = cap
	var sentHalf, lostHalf, doneHalf int
	for now := time.Duration(0); now < d; now += step {
		half := now >= d/2
		slot := int(now/step) % slots
		for _, e := range ring[slot] {
			p.outcome(e.window, e.answered)
			if half && e.sent >= d/2 {
				doneHalf++
				if !e.answered {
					lostHalf++
				}
			}
		}
		ring[slot] = ring[slot][:0]
		b.setRate(p.rate)
		if half {
			r.minRate = min(r.minRate, p.rate)
		}
		for b.ready(now) {
			b.take(now)
			if half {
				sentHalf++
			}
			w := p.sent(now)
			dropped := rng.Float64() < l.loss
			arrive := now + l.base
			if !dropped && l.capacity > 0 {
				depart := max(now, busyUntil) + time.Duration(float64(time.Second)/l.capacity)
				if depart-now > l.buffer {
					dropped = true
				} else {
					busyUntil = depart
					arrive = depart + l.base
				}
			}
			if !dropped && rng.Float64() < l.loss {
				dropped = true
			}
			if dropped || arrive-now > timeout {
				at(now+timeout, event{sent: now, window: w})
			} else {
				at(arrive, event{sent: now, window: w, answered: true})
			}
		}
	}
	r.rate = float64(sentHalf) / (d / 2).Seconds()
	if doneHalf > 0 {
		r.loss = float64(lostHalf) / float64(doneHalf)
	}
	return r
}

func TestPacerRandomLossKeepsRate(t *testing.T) {
	const cap = 10000
	for seed := uint64(1); seed <= 3; seed++ {
		for _, loss := range []float64{0, 0.025, 0.05, 0.10} { // each way
			r := simulate(t, link{base: 10 * time.Millisecond, loss: loss}, cap, 20*time.Second, seed)
			if r.rate < 0.9*cap || r.minRate < 0.7*cap {
				t.Errorf("seed %d, %.1f%% random loss each way: rate %.0f/s (lowest %.0f), want near the cap %d",
					seed, loss*100, r.rate, r.minRate, cap)
			}
		}
	}
}

func TestPacerBacksOffAtBottleneck(t *testing.T) {
	const cap = 10000
	for seed := uint64(1); seed <= 3; seed++ {
		for _, c := range []struct {
			capacity float64
			loss     float64
		}{{2500, 0}, {5000, 0}, {2500, 0.05}, {1000, 0.05}} {
			l := link{capacity: c.capacity, buffer: 50 * time.Millisecond, base: 10 * time.Millisecond, loss: c.loss}
			r := simulate(t, l, cap, 20*time.Second, seed)
			// Well below the cap, not collapsed, and with the loss of the
			// link plus a little.
			if r.rate > 1.5*c.capacity || r.rate < 0.5*c.capacity {
				t.Errorf("seed %d, bottleneck %.0f/s, %.0f%% loss: rate %.0f/s, want about the bottleneck",
					seed, c.capacity, c.loss*100, r.rate)
			}
			randomLoss := 1 - (1-c.loss)*(1-c.loss)
			if r.loss > randomLoss+0.2 {
				t.Errorf("seed %d, bottleneck %.0f/s, %.0f%% loss: %.0f%% of attempts lost",
					seed, c.capacity, c.loss*100, r.loss*100)
			}
			t.Logf("bottleneck %.0f/s, %.0f%% loss each way: rate %.0f/s, lost %.1f%%", c.capacity, c.loss*100, r.rate, r.loss*100)
		}
	}
}

// A jump in loss that a lower rate does not cure (here: the link itself
// turns lossier halfway) is taken as the new normal after a few cuts.
func TestPacerLossStepIsNotCongestion(t *testing.T) {
	const cap = 10000
	p := newPacer(cap, 0, 0, 0)
	rng := rand.New(rand.NewPCG(9, 9))
	now := time.Duration(0)
	feed := func(loss float64, d time.Duration) {
		// Sent at the pacer's rate, resolved at once.
		for end := now + d; now < end; now += time.Duration(float64(time.Second) / p.rate) {
			p.outcome(p.sent(now), rng.Float64() >= loss)
		}
	}
	feed(0.05, 5*time.Second)
	if p.rate != cap {
		t.Fatalf("rate %.0f under steady 5%% loss, want the cap", p.rate)
	}
	feed(0.40, 5*time.Second)
	if p.rate < 0.9*cap {
		t.Errorf("rate %.0f after loss rose to 40%% and stayed there whatever the rate, want back near the cap", p.rate)
	}
}

// TestPacerNeverAboveCap: whatever the answers, the pacer's rate stays at
// or under the cap, below one probe a second too.
func TestPacerNeverAboveCap(t *testing.T) {
	for _, cap := range []float64{0.5, 1, 3, 100} {
		p := newPacer(cap, 0, 0, 0)
		now := time.Duration(0)
		for i := range 2000 {
			w := p.sent(now)
			p.outcome(w, i%3 == 0) // mostly silence: cuts, then recoveries
			if p.rate > cap || p.floor > cap {
				t.Fatalf("cap %v: rate %v, floor %v after %d attempts", cap, p.rate, p.floor, i)
			}
			now += 50 * time.Millisecond
		}
	}
}
