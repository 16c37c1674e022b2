package scan

import (
	"container/heap"
	"math"
	"net/netip"
	"time"
)

// maxPacedHosts bounds the hosts the Scanner keeps a pace for; past it, a
// host with nothing parked is forgotten to make room, and when there is
// none a newly paced host is not held to its pace.
const maxPacedHosts = 1 << 16

// hostPacing holds the probes of a run to the pace its engines set for
// each host (HostPacer). It exists only when an engine is a HostPacer, and
// keeps state only for hosts with a pace: a token bucket, and the probes
// parked for want of a token.
type hostPacing struct {
	by    [UDP + 1]HostPacer // by Proto; nil for an engine that sets no pace
	hosts map[netip.Addr]*pacedHost
	ready readyHeap // the hosts with parked probes, earliest token first

	parked int           // probes parked now
	paced  uint64        // hosts that began to be paced (Stats.HostsPaced)
	waited time.Duration // waiting on parked probes' tokens, nothing else to do
}

// pacedHost is a host with a pace.
type pacedHost struct {
	bucket tokenBucket
	parked []queued // its parked probes, oldest first from head
	head   int
	at     int           // position in hostPacing.ready; −1 when not there
	next   time.Duration // when its next token comes, while in ready
}

// newHostPacing returns the pacing for the engines that are HostPacers,
// nil if none is.
func newHostPacing(engines ...Engine) *hostPacing {
	var hp *hostPacing
	for _, e := range engines {
		if p, ok := e.(HostPacer); ok {
			if hp == nil {
				hp = &hostPacing{hosts: make(map[netip.Addr]*pacedHost)}
			}
			hp.by[e.Proto()] = p
		}
	}
	return hp
}

// wait is how long until the earliest parked probe's host has a token; an
// hour when nothing is parked.
func (hp *hostPacing) wait(now time.Duration) time.Duration {
	if len(hp.ready) == 0 {
		return time.Hour
	}
	return hp.ready[0].next - now
}

// add starts pacing host at rate; nil if the table is full of hosts with
// probes parked.
func (hp *hostPacing) add(host netip.Addr, rate float64, now time.Duration) *pacedHost {
	if len(hp.hosts) >= maxPacedHosts {
		var victim netip.Addr
		for a, h := range hp.hosts {
			if h.at < 0 {
				victim = a
				break
			}
		}
		if !victim.IsValid() {
			return nil
		}
		delete(hp.hosts, victim)
	}
	h := &pacedHost{bucket: newTokenBucket(rate, now), at: -1}
	hp.hosts[host] = h
	hp.paced++
	return h
}

// setRate sets h's pace from now; its burst follows the pace.
func (h *pacedHost) setRate(now time.Duration, rate float64) {
	if rate == h.bucket.rate {
		return
	}
	h.bucket.setRate(now, rate)
	h.bucket.burst = burstFor(rate)
	h.bucket.tokens = min(h.bucket.tokens, h.bucket.burst)
}

// admit holds a probe to its host's pace, asked of the engine now: it
// returns true when the probe may be sent, and false when it is parked
// until the host's next token (made outstanding first if it is new: *slot
// −1, idx its index), or deferred as a duplicate. A probe just unparked
// goes before its host's other parked probes; any other waits behind them.
func (r *run) admit(now time.Duration, slot *int32, idx uint64, unparked bool) bool {
	hp := r.pace
	var p Probe
	if *slot >= 0 {
		p = r.slab.items[*slot].probe
	} else {
		p = r.probe(idx)
	}
	pacer := hp.by[p.Proto]
	if pacer == nil {
		return true
	}
	rate := pacer.HostRate(p.IP)
	h := hp.hosts[p.IP]
	if !(rate > 0) || math.IsInf(rate, 1) {
		if h != nil {
			r.unpace(p.IP, h)
		}
		return true
	}
	if h == nil {
		if h = hp.add(p.IP, rate, now); h == nil {
			return true
		}
	}
	h.setRate(now, rate)
	if (unparked || h.at < 0) && h.bucket.take(now) {
		r.readied(h, now)
		return true
	}
	if *slot < 0 {
		if *slot = r.alloc(idx); *slot < 0 {
			return false
		}
	}
	r.park(h, *slot, unparked, now)
	return false
}

// park parks slot at h's tail, or at its head (a probe unparked and not
// sent).
func (r *run) park(h *pacedHost, slot int32, head bool, now time.Duration) {
	pd := &r.slab.items[slot]
	pd.heap = parked
	q := queued{slot, pd.gen}
	switch {
	case !head:
		h.parked = append(h.parked, q)
	case h.head > 0:
		h.head--
		h.parked[h.head] = q
	default:
		h.parked = append([]queued{q}, h.parked...)
	}
	r.pace.parked++
	r.readied(h, now)
}

// readied puts h in the ready heap at its next token if it has probes
// parked, and out of it if not.
func (r *run) readied(h *pacedHost, now time.Duration) {
	hp := r.pace
	switch {
	case h.head == len(h.parked):
		if h.at >= 0 {
			heap.Remove(&hp.ready, h.at)
		}
		// A long list is let go: what a host once parked, the table of
		// paced hosts would keep for each.
		h.parked, h.head = h.parked[:0], 0
		if cap(h.parked) > 64 {
			h.parked = nil
		}
	case h.at >= 0:
		h.next = now + h.bucket.wait(now)
		heap.Fix(&hp.ready, h.at)
	default:
		h.next = now + h.bucket.wait(now)
		heap.Push(&hp.ready, h)
	}
}

// unpark takes the oldest parked probe of the host whose token comes
// first, if it has come.
func (r *run) unpark(now time.Duration) (int32, bool) {
	hp := r.pace
	for len(hp.ready) > 0 && hp.ready[0].next <= now {
		h := hp.ready[0]
		q := h.parked[h.head]
		h.head++
		if h.head == len(h.parked) {
			r.readied(h, now)
		}
		if pd := &r.slab.items[q.slot]; pd.gen == q.gen && pd.heap == parked {
			pd.heap = inQueue
			hp.parked--
			return q.slot, true
		}
	}
	return -1, false
}

// repark puts back a probe unpark gave and the run could not send.
func (r *run) repark(slot int32, now time.Duration) {
	h := r.pace.hosts[r.slab.items[slot].probe.IP]
	if h == nil { // forgotten meanwhile: not paced
		r.requeue(slot)
		return
	}
	r.park(h, slot, true, now)
}

// unpace forgets host, whose pace is lifted: its parked probes go to the
// retransmission queue, to be sent without waiting.
func (r *run) unpace(host netip.Addr, h *pacedHost) {
	for _, q := range h.parked[h.head:] {
		if pd := &r.slab.items[q.slot]; pd.gen == q.gen && pd.heap == parked {
			pd.heap = inQueue
			r.pace.parked--
			r.queue = append(r.queue, q)
		}
	}
	if h.at >= 0 {
		heap.Remove(&r.pace.ready, h.at)
	}
	delete(r.pace.hosts, host)
}

// readyHeap is the hosts with parked probes, by their next token.
type readyHeap []*pacedHost

func (h readyHeap) Len() int           { return len(h) }
func (h readyHeap) Less(i, j int) bool { return h[i].next < h[j].next }
func (h readyHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].at, h[j].at = i, j
}

func (h *readyHeap) Push(x any) {
	p := x.(*pacedHost)
	p.at = len(*h)
	*h = append(*h, p)
}

func (h *readyHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	p.at = -1
	return p
}
