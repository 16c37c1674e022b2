package scan

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// icmpSim is one host probed through an icmpWatch, simulated: a share of
// its ports closed, packets lost at random each way, a round trip, and,
// where rate is set, Linux's limit on ICMP errors (a token bucket of
// rate a second holding six). Probes go out at scanRate, or at the pace
// the watch sets for the host.
type icmpSim struct {
	share, loss float64
	rtt         time.Duration
	rate        float64 // errors a second; 0: no limit
	scanRate    float64
	duration    time.Duration
}

type icmpSimResult struct {
	found   time.Duration // when the first limit was reported; −1 never
	final   ICMPLimit
	reports []ICMPLimit
	closed  int // closed answers delivered
	// Closed probes, and of them those whose answer the limit dropped,
	// once the limit was found.
	closedSent, dropped int
}

func (s icmpSim) run(seed uint64) icmpSimResult {
	rng := rand.New(rand.NewPCG(seed, 1))
	host := netip.MustParseAddr("198.18.0.2")
	base := time.Unix(1_000_000, 0)
	res := icmpSimResult{found: -1}
	w := newICMPWatch(func(l ICMPLimit) { res.reports = append(res.reports, l) })

	tokens, last := 6.0, time.Duration(0)
	allow := func(t time.Duration) bool {
		if s.rate == 0 {
			return true
		}
		tokens = min(tokens+(t-last).Seconds()*s.rate, 6)
		last = t
		if tokens >= 1 {
			tokens--
			return true
		}
		return false
	}
	type answer struct {
		at   time.Duration
		port uint16
	}
	var answers []answer // in order: the round trip is fixed
	for t, port := time.Duration(0), uint16(0); t < s.duration; port++ {
		for len(answers) > 0 && answers[0].at <= t {
			w.answered(host, answers[0].port, true, base.Add(answers[0].at))
			answers = answers[1:]
			res.closed++
		}
		w.sent(host, port, base.Add(t))
		if rng.Float64() < s.share && rng.Float64() >= s.loss {
			ok := allow(t + s.rtt/2)
			if res.found >= 0 {
				res.closedSent++
				if !ok {
					res.dropped++
				}
			}
			if ok && rng.Float64() >= s.loss {
				answers = append(answers, answer{t + s.rtt, port})
			}
		}
		if res.found < 0 && len(res.reports) > 0 {
			res.found = t
		}
		pace := s.scanRate
		if p := w.hostRate(host); p > 0 {
			pace = min(pace, p)
		}
		t += time.Duration(float64(time.Second) / pace)
	}
	if ls := w.limits(); len(ls) == 1 {
		res.final = ls[0]
	}
	return res
}

// Without a limit, neither loss nor few closed ports nor a long round trip
// make a host look limited.
func TestICMPWatchNoLimit(t *testing.T) {
	for _, s := range []icmpSim{
		{share: 1, rtt: 100 * time.Microsecond},
		{share: 1, loss: 0.05, rtt: 100 * time.Microsecond},
		{share: 0.5, loss: 0.05, rtt: 50 * time.Millisecond},
		{share: 0.05, loss: 0.05, rtt: 300 * time.Millisecond},
		{share: 1, loss: 0.2, rtt: 10 * time.Millisecond},
	} {
		s.scanRate, s.duration = 5000, 5*time.Second
		for seed := range uint64(5) {
			r := s.run(seed)
			if len(r.reports) > 0 {
				t.Errorf("%+v seed %d: reported %v", s, seed, r.reports)
			}
		}
	}
}

// With Linux's limit, the watch finds it within a fraction of a second
// and paces the host near rate/share (never far above it, so few answers
// are lost: the Scanner's retransmissions make up for those), and says
// so.
func TestICMPWatchFindsLimit(t *testing.T) {
	for _, s := range []icmpSim{
		{share: 1, rtt: 100 * time.Microsecond, rate: 1},
		{share: 1, loss: 0.05, rtt: 100 * time.Microsecond, rate: 1},
		{share: 1, rtt: 50 * time.Millisecond, rate: 10},
		{share: 1, rtt: 100 * time.Microsecond, rate: 100},
		// Few closed ports: found as fast; paced more cautiously.
		{share: 0.5, loss: 0.05, rtt: 20 * time.Millisecond, rate: 20},
		{share: 0.2, loss: 0.05, rtt: 20 * time.Millisecond, rate: 5},
	} {
		s.scanRate, s.duration = 5000, 120*time.Second
		for seed := range uint64(6) {
			r := s.run(seed)
			want := s.rate / s.share
			if r.found < 0 || r.found > 500*time.Millisecond {
				t.Errorf("%+v seed %d: limit found at %v, want within 500ms", s, seed, r.found)
				continue
			}
			if !strings.Contains(r.reports[0].String(), "rate-limits ICMP errors to ~") {
				t.Errorf("report %q", r.reports[0])
			}
			low := want / 2
			if s.share < 1 {
				low = watchMinPace
			}
			if r.final.Pace < low || r.final.Pace > want*2 {
				t.Errorf("%+v seed %d: ends at %v, want a pace from %.3g to %.3g", s, seed, r.final, low, want*2)
			}
			if d := float64(r.dropped) / float64(r.closedSent); d > 0.3 {
				t.Errorf("%+v seed %d: the limit dropped %.0f%% of closed ports' answers once found, want at most 30%%", s, seed, d*100)
			}
		}
	}
}

// A limit that goes away (an administrator raised it, or the loss that
// looked like one passed) is outgrown: the pace rises while every probe is
// answered, and with it the rate the watch tells.
func TestICMPWatchLimitLifts(t *testing.T) {
	w := newICMPWatch(nil)
	host := netip.MustParseAddr("2001:2::2")
	h := w.addLocked(host)
	base := time.Unix(1_000_000, 0)
	h.first, h.lag, h.share = base, time.Millisecond, 1
	h.limit = ICMPLimit{Rate: 1, Pace: 0.9, Measured: true}
	h.step = 0.1
	h.restart(base)
	now := base
	for i := range 100_000 { // 100 s at 1,000 probes a second, all answered
		now = now.Add(time.Millisecond)
		w.sent(host, uint16(i), now)
		w.answered(host, uint16(i), true, now.Add(100*time.Microsecond))
	}
	if got := w.hostRate(host); got != 0 && got < 500 {
		t.Errorf("pace %.3g after 100 s of every probe answered at 1000/s, want over 500 or none", got)
	}
}

func TestICMPWatchForgets(t *testing.T) {
	w := newICMPWatch(nil)
	now := time.Unix(1_000_000, 0)
	for i := range watchMaxHosts + 10 {
		w.sent(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 9, now)
	}
	if n := len(w.hosts); n > watchMaxHosts {
		t.Errorf("%d hosts watched, want at most %d", n, watchMaxHosts)
	}
}
