package scan

import (
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// ICMPLimit is a target's limit on the ICMP errors it sends, as a UDP
// engine measured it. Linux by default sends at most one destination
// unreachable a second to each IPv4 peer (net.ipv4.icmp_ratelimit), and
// ten to each IPv6 peer on recent kernels (net.ipv6.icmp.ratelimit), with
// a burst of six: a UDP scan faster than that sees most closed ports fall
// silent, and they would end open|filtered.
type ICMPLimit struct {
	Host netip.Addr
	// Rate is the ICMP errors a second the host sends at most; 0 when a
	// limit seen before no longer holds.
	Rate float64
	// Pace is the probes a second the engine asks the Scanner to send
	// to the host (HostPacer.HostRate): just under Rate over the share
	// of the host's probes that draw a port unreachable.
	Pace float64
	// Measured is false while Rate is the first guess, just under
	// Linux's default of one a second, taken when the limit shows and
	// before it is measured.
	Measured bool
}

func (l ICMPLimit) String() string {
	if l.Rate == 0 {
		return fmt.Sprintf("target %v no longer rate-limits ICMP errors; UDP pace restored", l.Host)
	}
	approx := "~"
	if !l.Measured {
		approx = "~(assumed) "
	}
	return fmt.Sprintf("target %v rate-limits ICMP errors to %s%.3g/s; UDP pace lowered to %.3g probes/s", l.Host, approx, l.Rate, l.Pace)
}

// How icmpWatch judges; see icmpWatch.
const (
	// A host's share of closed ports is learned from its first
	// watchEarly probes, once watchLearn of them are answered closed; if
	// fewer are closed, from windows of probes, once they have drawn
	// watchLearn answers (which no limit's burst of six holds back).
	watchEarly, watchLearn = 32, 4
	// The answers a window of probes must be expected to draw before it
	// is judged: before a limit shows, and once the host is paced (when
	// answers are slow to come).
	watchExpect, watchExpectPaced = 16, 8
	// The pace on first sight of a limit, and the least: under Linux's
	// default rate, the lowest a host is likely to have, so that windows
	// at this pace tell the host's share of closed ports.
	watchFirstPace = 0.8
	// The pace is kept within these; a limit that needs more than the
	// highest is no limit worth pacing for.
	watchMinPace, watchMaxPace = watchFirstPace, 100000
	// The least wait for answers to a window's last probes.
	watchMinLag = 10 * time.Millisecond
	// Hosts watched at most; past that, an unpaced host is forgotten.
	watchMaxHosts = 1 << 16
)

// icmpWatch detects targets that rate-limit ICMP errors, from the probes a
// UDP engine sends and the port unreachables that come back, and sets a
// pace for each. It is safe for concurrent use: probes are counted on the
// Scanner's goroutine, answers on the engine's receiver.
//
// A scan's probes follow a random permutation, so the share of a host's
// probes that draw a port unreachable stays about the same over the scan:
// when it falls while probes keep going out, the host is dropping its
// errors, not its ports changing. The share is learned from the ports of
// the host's first probes, whose answers come within the limit's burst
// (six on Linux), before any limit shows.
//
// Then the host's probes are judged in windows: from a window's start
// until enough probes have gone out to expect watchExpect answers (the
// mark), then until the answers to those probes have had time to come
// back (one and a half times the delay of the host's first answer, a bound
// on its round trip). A window neither clearly answered in full nor
// clearly short is extended, up to four times. Before a limit, a window
// with a quarter of the answers expected, or fewer, shows one, and the
// host is paced at watchFirstPace (the rate cannot be measured from a
// burst); one with fewer than three quarters gives the rate, its answers
// a second. Once paced, a window answered in full raises the pace (if the
// pace held the probes back; else it says nothing): by half until the rate
// is measured, then in steps up to just under the rate, and past it only
// after a few windows there; a window short of answers halves the pace, or
// lowers it to what its answers show, and measures the rate.
type icmpWatch struct {
	onLimit func(ICMPLimit) // called without the lock held
	// peers4 and peers6 are the source addresses the probes to a host of
	// each family are spread over (UDPOptions.Sources; 1 without): the
	// host's budget is per peer, so the least pace and the first guess
	// are that many times a single peer's.
	peers4, peers6 float64

	mu    sync.Mutex
	hosts map[netip.Addr]*hostWatch
}

type hostWatch struct {
	first        time.Time     // first probe
	lag          time.Duration // first probe to first answer; 0 until then
	sent, closed uint64

	// The ports of the first probes, and which were answered closed.
	early    [watchEarly]uint16
	nEarly   int
	answered uint32

	// The share of probes answered closed: closed over sent, summed over
	// the first probes, the windows answered in full before a limit and
	// those at the least pace after; 0 until learned.
	share                  float64
	shareSent, shareClosed uint64

	// The window being judged: where it starts, and its mark (markSent
	// zero until set).
	winAt              time.Time
	winSent, winClosed uint64
	markAt             time.Time
	markSent           uint64
	need               float64 // answers expected by the mark, when more than the least
	step               float64 // the pace's rise after a window answered in full
	fullAtTop          int     // windows answered in full at the measured rate

	limit ICMPLimit // Rate zero: not paced
	peers float64   // the source addresses its probes are spread over
}

func newICMPWatch(onLimit func(ICMPLimit)) *icmpWatch {
	return &icmpWatch{onLimit: onLimit, hosts: make(map[netip.Addr]*hostWatch), peers4: 1, peers6: 1}
}

// spread tells the watch the probes go from the ring's sources.
func (w *icmpWatch) spread(r sourceRing) *icmpWatch {
	w.peers4, w.peers6 = float64(max(1, len(r.v4))), float64(max(1, len(r.v6)))
	return w
}

// sent counts a probe to host's port.
func (w *icmpWatch) sent(host netip.Addr, port uint16, now time.Time) {
	w.mu.Lock()
	h := w.hosts[host]
	if h == nil {
		h = w.addLocked(host)
		h.first, h.winAt = now, now
		h.peers = w.peers6
		if host.Unmap().Is4() {
			h.peers = w.peers4
		}
	}
	report, ok := h.judge(now)
	h.sent++
	if h.nEarly < len(h.early) && !slices.Contains(h.early[:h.nEarly], port) {
		h.early[h.nEarly] = port
		h.nEarly++
	}
	w.mu.Unlock()
	w.report(host, report, ok)
}

// answered counts an answer from host's port: closed is a port
// unreachable; anything else only times the host's round trip.
func (w *icmpWatch) answered(host netip.Addr, port uint16, closed bool, at time.Time) {
	w.mu.Lock()
	h := w.hosts[host]
	if h == nil {
		w.mu.Unlock()
		return // not probed, or forgotten
	}
	if h.lag == 0 {
		h.lag = max(at.Sub(h.first), time.Nanosecond)
	}
	// Judged first: an answer that comes after a window's wait is the
	// next window's.
	report, ok := h.judge(at)
	if closed {
		h.closed++
		if h.share == 0 {
			h.learnEarly(port, at)
		}
	}
	w.mu.Unlock()
	w.report(host, report, ok)
}

// learnEarly marks port answered if it is one of the first probed, and
// learns the share once watchLearn of them are: m answered of the first k
// probes (the last of them answered) estimate it as (m−1)/(k−1).
func (h *hostWatch) learnEarly(port uint16, now time.Time) {
	i := slices.Index(h.early[:h.nEarly], port)
	if i < 0 || h.answered&(1<<i) != 0 {
		return
	}
	h.answered |= 1 << i
	m := bits.OnesCount32(h.answered)
	if m < watchLearn {
		return
	}
	k := bits.Len32(h.answered)
	h.share = float64(m-1) / float64(k-1)
	h.shareSent, h.shareClosed = uint64(k), uint64(m)
	h.restart(now)
}

func (w *icmpWatch) report(host netip.Addr, l ICMPLimit, ok bool) {
	if ok && w.onLimit != nil {
		l.Host = host
		w.onLimit(l)
	}
}

// hostRate is the pace of host, 0 if none.
func (w *icmpWatch) hostRate(host netip.Addr) float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if h := w.hosts[host]; h != nil {
		return h.limit.Pace
	}
	return 0
}

// limits lists the hosts paced now.
func (w *icmpWatch) limits() []ICMPLimit {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ls []ICMPLimit
	for host, h := range w.hosts {
		if h.limit.Rate > 0 {
			l := h.limit
			l.Host = host
			ls = append(ls, l)
		}
	}
	return ls
}

func (w *icmpWatch) addLocked(host netip.Addr) *hostWatch {
	if len(w.hosts) >= watchMaxHosts {
		// Forget an unpaced host, else any: map order is arbitrary
		// enough.
		var victim netip.Addr
		for a, h := range w.hosts {
			victim = a
			if h.limit.Rate == 0 {
				break
			}
		}
		delete(w.hosts, victim)
	}
	h := &hostWatch{}
	w.hosts[host] = h
	return h
}

// judge moves h's window on at now, and returns its limit when it changed
// in a way worth telling: found, first measured, changed twofold, or gone.
func (h *hostWatch) judge(now time.Time) (ICMPLimit, bool) {
	paced := h.limit.Rate > 0
	base := float64(watchExpect)
	if paced {
		base = watchExpectPaced
	}
	need := max(h.need, base)
	if h.markSent == 0 {
		probes := float64(h.sent - h.winSent)
		if h.share == 0 && probes >= watchEarly || h.share*probes >= need {
			h.markAt, h.markSent = now, h.sent
		}
		return ICMPLimit{}, false
	}
	wait := max(h.lag+h.lag/2, watchMinLag)
	if h.lag == 0 || now.Sub(h.markAt) < wait {
		return ICMPLimit{}, false // the answers may be on their way
	}
	probes := float64(h.markSent - h.winSent)
	got := float64(h.closed - h.winClosed)
	probeRate := probes / max(h.markAt.Sub(h.winAt).Seconds(), 1e-9)
	pool := func() {
		h.shareSent += h.markSent - h.winSent
		h.shareClosed += h.closed - h.winClosed
		if h.shareClosed >= watchLearn {
			h.share = min(float64(h.shareClosed)/float64(h.shareSent), 1)
		}
	}
	if h.share == 0 {
		pool()
		h.restart(now)
		return ICMPLimit{}, false
	}
	ratio := got / (h.share * probes)
	full, short := ratio >= 0.75, ratio <= 0.5
	if paced {
		// Slow to cut on few answers.
		full, short = ratio >= 0.8, ratio <= 0.3 || need > base && ratio <= 0.6
	}
	if !full && !short && need < 4*base {
		// Not clear either way: wait for a longer window.
		h.need, h.markSent = 2*need, 0
		return ICMPLimit{}, false
	}
	// Windows that tell the share: before a limit, those answered in
	// full; once paced, those at the least pace, which no limit
	// saturates.
	peers := max(h.peers, 1)
	minPace := watchMinPace * peers
	atFloor := paced && probeRate <= 1.5*minPace
	if !paced && full || atFloor {
		pool()
	}
	old := h.limit
	// Over the time the probes took to send and answer: not the time
	// since, when none went out, in which a limit's burst refills.
	answerRate := got / (h.markAt.Sub(h.winAt) + wait).Seconds()
	measured := ICMPLimit{
		Rate:     answerRate,
		Pace:     min(max(0.9*answerRate/h.shareHigh(), minPace), watchMaxPace),
		Measured: true,
	}
	switch {
	case !paced && ratio <= 0.25:
		h.limit = ICMPLimit{Rate: watchFirstPace * peers, Pace: watchFirstPace * peers}
	case !paced && ratio < 0.75:
		h.limit = measured
	case !paced:
	case full && !old.Measured:
		// Look for room fast until the rate is measured, if the pace
		// held the probes back.
		if probeRate >= old.Pace/2 {
			h.limit.Pace *= 1.5
		}
	case full:
		// Then slowly, and up to just under the measured rate: a pace
		// past the limit loses answers, and the limit's burst hides it
		// for a while. Past the rate only after many windows there
		// answered in full.
		top := 0.9 * old.Rate / h.shareHigh()
		switch {
		case probeRate < old.Pace/2:
		case old.Pace < top:
			h.limit.Pace = min(old.Pace+h.step, top)
		case h.fullAtTop < 4:
			h.fullAtTop++
		default:
			h.fullAtTop = 0
			h.limit.Rate *= 1.1
			h.limit.Pace = 0.9 * h.limit.Rate / h.shareHigh()
		}
	case atFloor:
		// Short by chance: no limit is thought to be this low.
	default:
		// Halved, or to the pace the answers show if that is less,
		// but not below a quarter: a window of few answers can be
		// short by chance.
		if got >= watchLearn*2 {
			h.limit = measured
		}
		h.limit.Pace = max(min(measured.Pace, old.Pace/2), old.Pace/4, minPace)
		h.step, h.fullAtTop = old.Pace/8, 0
	}
	if h.limit.Pace > watchMaxPace {
		h.limit = ICMPLimit{}
	}
	h.restart(now)
	changed := (old.Rate == 0) != (h.limit.Rate == 0) ||
		old.Measured != h.limit.Measured ||
		h.limit.Rate > 2*old.Rate || 2*h.limit.Rate < old.Rate
	return h.limit, changed
}

// shareHigh is the share as high as the probes it was learned from leave
// likely: a share too low would pace the host past its limit.
func (h *hostWatch) shareHigh() float64 {
	n := float64(h.shareSent)
	return min(h.share+math.Sqrt(h.share*(1-h.share)/n)+1/n, 1)
}

// restart starts a window at now.
func (h *hostWatch) restart(now time.Time) {
	h.winAt, h.winSent, h.winClosed = now, h.sent, h.closed
	h.markSent, h.need = 0, 0
}
