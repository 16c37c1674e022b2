package scan

import (
	"math"
	"time"
)

// Times in the timing code are durations since the start of the scan, read
// from a monotonic clock; tests drive them by hand.

// tokenBucket is the hard bound on the send rate: in any interval of length
// t it grants at most rate·t + burst tokens, whatever the caller does,
// because it never holds more than burst and refills at most at rate.
type tokenBucket struct {
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Duration
}

// burstFor is the bucket depth for a rate: two milliseconds of probes, so a
// sender woken a little late by the timer can catch up, and at least one.
// At 100 kpps that is 200 probes; at 1 kpps and below, one.
func burstFor(rate float64) float64 {
	return min(max(1, math.Floor(rate*0.002)), 1024)
}

func newTokenBucket(rate float64, now time.Duration) tokenBucket {
	b := burstFor(rate)
	return tokenBucket{rate: rate, burst: b, tokens: b, last: now}
}

func (b *tokenBucket) refill(now time.Duration) {
	if now > b.last {
		b.tokens = min(b.burst, b.tokens+b.rate*(now-b.last).Seconds())
		b.last = now
	}
}

// setRate changes the rate from now on (the burst stays that of the cap).
func (b *tokenBucket) setRate(now time.Duration, rate float64) {
	b.refill(now)
	b.rate = rate
}

// take takes a token if there is one.
func (b *tokenBucket) take(now time.Duration) bool {
	b.refill(now)
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// wait is how long until a token is there.
func (b *tokenBucket) wait(now time.Duration) time.Duration {
	b.refill(now)
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - b.tokens) / b.rate * 1e9))
}

// schedule is the scan's send rate: a hard bound that, within it, delivers
// the rate. It keeps the time the next send is due and moves it on by one
// interval per send, so a sender woken late by its timer is owed the sends
// it missed and makes them up at once: a token bucket one token deep loses
// every late wake-up instead (--rate 200 sent 167/s, the timer about a
// millisecond late on each 5 ms interval). What it makes up is bounded: it
// falls at most lag behind the schedule, so after a stall it sends at most
// burst probes at once, and in any stretch of time t at most
// rate·t + burst (it is a token bucket in the form of a schedule, GCRA).
type schedule struct {
	interval time.Duration // between sends
	burst    int           // the most sends at one instant
	next     time.Duration // when the next send is due
}

// scheduleBurst is the most sends a schedule makes at once when catching
// up: five milliseconds of probes, so a sender woken late on a busy
// machine loses nothing, at least four however low the rate, and at most
// 1024. At 100 kpps that is 500 probes.
func scheduleBurst(rate float64) int {
	return int(min(max(4, math.Floor(rate*0.005)), 1024))
}

func newSchedule(rate float64, now time.Duration) schedule {
	s := schedule{next: now}
	s.setRate(rate)
	return s
}

// interval is the time between sends at rate, at least a nanosecond.
func interval(rate float64) time.Duration {
	return max(1, time.Duration(math.Round(1e9/rate)))
}

// setRate changes the rate from the next send on (the burst stays that of
// the first rate, the cap's).
func (s *schedule) setRate(rate float64) {
	if s.burst == 0 {
		s.burst = scheduleBurst(rate)
	}
	s.interval = interval(rate)
}

// ready reports whether a send is due.
func (s *schedule) ready(now time.Duration) bool { return now >= s.next }

// take records a send made now, which must be ready.
func (s *schedule) take(now time.Duration) {
	// Behind by more than the burst: what was missed beyond it is lost,
	// not owed.
	if lag := time.Duration(s.burst-1) * s.interval; s.next < now-lag {
		s.next = now - lag
	}
	s.next += s.interval
}

// wait is how long until the next send is due.
func (s *schedule) wait(now time.Duration) time.Duration { return max(0, s.next-now) }

// pacer adapts the send rate below the cap, telling random loss from
// congestion. Its input is the outcome of every attempt: answered in time,
// or not (timed out, whether lost or only delayed past the timeout).
//
// The heuristic. Attempts are grouped by when they were sent, in windows
// of about a tenth of a second of probes (32 to 1024 attempts); a window is
// judged once all its attempts are resolved, by its answered fraction f.
// Silence is normal in a scan — filtered ports never answer, lossy links
// drop some — and a permuted scan keeps its share steady, so the pacer
// keeps a baseline F of the answered fraction and reacts only to windows
// well below it (four binomial standard deviations and two points). What
// tells congestion from the rest is how f answers a lower rate: at a
// bottleneck f is about capacity/rate and rises when the rate falls; random
// loss and filtered ports take the same share at any rate.
//
//   - A window near the baseline raises the rate toward the cap by a
//     sixteenth; the baseline follows it, up at once, down slowly. Random
//     loss costs only retransmissions.
//   - A window well below the baseline starts a test: the rate is cut in
//     proportion to the shortfall (f/F, at least a quarter, at most half),
//     and windows sent before the cut are not judged.
//   - While a cut buys a clearly higher f the silence was congestion: the
//     rate keeps dropping until f is back near the baseline, or a cut no
//     longer helps — then the rate is below the bottleneck and the f there
//     is the new baseline.
//   - If the cuts have halved the rate without buying answers, the silence
//     was not congestion (the scan reached quieter targets, the link got
//     lossier): f becomes the baseline and the rate goes back to where the
//     test began.
//
// The baseline starts at 1 (every probe answered), so the first silent
// windows run the test once and teach the pacer the scan's normal silence.
// The rate starts at the cap, or below it (a timing template's initial
// rate) and then grows by a sixteenth a window while answers come back.
// The rate never exceeds the cap and never drops below a floor (1/64 of the
// cap, at least one probe per second), so a scan always progresses.
type pacer struct {
	cap, floor float64
	rate       float64

	window   int32 // attempts per window, at most
	ring     [pacerRing]pacerWindow
	open     uint32 // the window taking sends
	openedAt time.Duration
	oldest   uint32 // the oldest window not yet judged
	skipTo   uint32 // windows below this one were sent before a cut
	full     bool   // the open window takes no more sends

	base float64 // baseline answered fraction

	// A test in progress: cuts made, the fraction before the last, the
	// rate before the first, and whether a cut has bought answers.
	cuts      int
	lastF     float64
	rateAtCut float64
	congested bool
}

// pacerRing is the number of windows that can be in flight at once: with
// windows of at least 10 ms (1024 attempts at 100 kpps), ten seconds of
// timeouts.
const pacerRing = 1024

// A window with fewer attempts than minWindow is kept open past its tenth
// of a second: a handful of attempts says nothing about a loss rate.
const minWindow = 32

type pacerWindow struct {
	id                   uint32
	sent, resolved, lost int32
}

// newPacer returns a pacer of rates between floor and cap that starts at
// initial. A floor of 0 is the default: 1/64 of the cap, at least one probe
// a second. An initial rate of 0 is the cap.
func newPacer(cap, initial, floor float64, now time.Duration) *pacer {
	if floor <= 0 {
		floor = max(1, cap/64)
	}
	// The floor is below the cap however low the cap: --rate is a hard
	// bound, a fraction of a probe a second included.
	floor = min(cap, floor)
	if initial <= 0 {
		initial = cap
	}
	p := &pacer{cap: cap, floor: floor, rate: min(cap, max(floor, initial)), openedAt: now, base: 1}
	p.window = int32(min(max(cap/10, minWindow), 1024))
	return p
}

// sent records an attempt sent now and returns its window, to be given to
// outcome.
func (p *pacer) sent(now time.Duration) uint32 {
	w := &p.ring[p.open%pacerRing]
	if p.full || w.sent >= p.window || (w.sent >= minWindow && now-p.openedAt >= 100*time.Millisecond) {
		p.open++
		p.openedAt, p.full = now, false
		if p.open-p.oldest >= pacerRing {
			p.oldest = p.open - pacerRing + 1 // forget a window that never resolved
		}
		w = &p.ring[p.open%pacerRing]
		*w = pacerWindow{id: p.open}
	}
	w.sent++
	return p.open
}

// outcome resolves one attempt of window id.
func (p *pacer) outcome(id uint32, answered bool) {
	w := &p.ring[id%pacerRing]
	if w.id != id {
		return
	}
	w.resolved++
	if !answered {
		w.lost++
	}
	for p.oldest != p.open {
		w := &p.ring[p.oldest%pacerRing]
		if w.id == p.oldest && w.resolved < w.sent {
			break
		}
		if w.id == p.oldest && p.oldest >= p.skipTo && w.sent > 0 {
			n := float64(w.sent)
			p.judge(1-float64(w.lost)/n, n)
		}
		p.oldest++
	}
}

// judge takes the answered fraction f of a window of n attempts.
func (p *pacer) judge(f, n float64) {
	low := f < p.base-4*sigma(p.base, n)-0.02
	switch {
	case p.cuts == 0 && !low:
		p.follow(f)
		p.rate = min(p.cap, p.rate+max(p.rate/16, p.floor))
	case p.cuts == 0:
		p.lastF, p.rateAtCut, p.congested = f, p.rate, false
		p.cut(f)
	case !low:
		// Back near the baseline: the test is over.
		p.follow(f)
		p.cuts = 0
	case f > p.lastF+3*sigma(p.lastF, n)+0.01 || f > p.lastF*1.2:
		// The last cut bought answers: congestion, and still too much.
		p.congested, p.lastF = true, f
		p.cut(f)
	case p.congested:
		// Below the bottleneck now: what is left is the normal silence.
		p.base, p.cuts = f, 0
	case p.rate <= p.rateAtCut/2 || p.rate <= p.floor:
		// Half the rate bought nothing: not congestion.
		p.base, p.cuts = f, 0
		p.rate = min(p.cap, p.rateAtCut)
		p.skip()
	default:
		p.cut(f)
	}
}

// follow moves the baseline toward f: up at once, down slowly, so that a
// rate creeping past a bottleneck does not teach it a lower normal.
func (p *pacer) follow(f float64) {
	if f > p.base {
		p.base = f
	} else {
		p.base += (f - p.base) / 16
	}
}

// cut lowers the rate after a window that answered f, in proportion to
// its shortfall from the baseline.
func (p *pacer) cut(f float64) {
	p.cuts++
	p.rate = max(p.floor, p.rate*min(0.75, max(0.5, f/p.base)))
	p.skip()
}

// skip leaves unjudged the windows sent at the old rate.
func (p *pacer) skip() {
	p.skipTo = p.open + 1
	p.full = true
}

// sigma is the standard deviation of a fraction of n outcomes each of
// probability b.
func sigma(b, n float64) float64 {
	return math.Sqrt(max(0, b*(1-b)) / n)
}
