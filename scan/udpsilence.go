package scan

import (
	"math"
	"net/netip"
	"time"
)

// A UDP port that neither replies nor draws an ICMP error ends
// open|filtered: an open port whose service ignored the probe, or a port a
// firewall drops. How long to wait for it, and how many times to ask, is
// learned from its host, as RFC 6298 learns a timeout and nmap its retries:
//
//   - A host that has answered anything (a reply, an ICMP error, a TCP
//     answer) has a round trip: its silent ports wait that round trip's
//     timeout (srtt + 4·rttvar) plus udpServiceWait for a service to answer,
//     not the scan's one-second initial timeout and 100 ms floor. They are
//     asked 1 + retries times, retries from the loss the host showed (the
//     attempts its answered probes needed): enough that an answer is lost
//     every time with a chance under silenceMiss, at least one (nmap's
//     least: two tries), at most the Scanner's Retries.
//   - A host that has answered nothing gives no evidence that asking again
//     helps: with every probe silent, a retransmission is as likely to be
//     dropped as the first was. Its ports are asked 1 + blindRetries times,
//     with the scan's timeouts (the template's initial one), and end
//     open|filtered.
//   - Silence is also what a closed port shows when its host limits its
//     ICMP errors (Linux: one a second for each peer, a burst of six) and
//     the limit is spent. So a silent port of an answering host is not
//     decided at once: it is held, and when nothing else is in flight the
//     held ports of each host are judged together. If the host's silent
//     ports are few (at most one, or 1% of its answers), it was not paced
//     for an ICMP limit and showed no loss, the silence is the ports' own
//     and they end open|filtered. Otherwise the silence may be the host's
//     limit or loss: they are asked again with the scan's timeouts, its
//     floor and its Retries (paced, once the engine measures the limit),
//     as they were before any of this was learned.
//
// To have a round trip for a host before its silent ports time out, the
// Scanner sends one extra UDP probe to each host it scans for UDP, to a
// port outside the scan (rttPort, the highest one not scanned): a closed
// port draws an ICMP port unreachable at once, an open one a reply. Its
// answer is not a Result; its attempts are counted in Stats.Sent and
// Stats.RTTProbes.
const (
	udpServiceWait = 30 * time.Millisecond
	blindRetries   = 1
	silenceMiss    = 1e-3
	// The share of a host's answers its held silent ports may be and
	// still be trusted as silent.
	silentShare = 0.01
	// Hosts whose evidence is kept at most; past it one is forgotten for
	// each new one.
	maxEvidenceHosts = 1 << 16
)

// hostEvidence is what a host has shown of itself.
type hostEvidence struct {
	rtt rttEstimator // its round trips (any protocol), from Karn-valid answers
	// answered is the probes it answered; attempts the attempts those took,
	// lost the attempts among them that went unanswered.
	answered, attempts, lost uint64
	rttProbed                bool // its RTT probe was sent
}

// retries is how many retransmissions a silent port of the host deserves,
// from the loss it showed: at least 1, and uncapped (the caller caps it by
// the Scanner's Retries).
func (h *hostEvidence) retries() int32 {
	if h.lost == 0 || h.attempts == 0 {
		return 1
	}
	p := float64(h.lost) / float64(h.attempts)
	if p >= 0.5 {
		return MaxRetries
	}
	k := math.Ceil(math.Log(silenceMiss) / math.Log(p)) // attempts
	return max(1, int32(k)-1)
}

// timeout is the wait for an answer to a UDP probe of the host, before
// backoff: the host's retransmission timeout without the scan's floor,
// plus the time a service may take to answer. lo and hi bound it: lo is
// the Scanner's MinRTT when one was set, else 0.
func (h *hostEvidence) timeout(lo, hi time.Duration) time.Duration {
	e := h.rtt
	return clamp(e.srtt+max(clockGranularity, 4*e.rttvar)+udpServiceWait, lo, hi)
}

// evidenceTable is the hosts' evidence, bounded.
type evidenceTable struct {
	hosts map[netip.Addr]*hostEvidence
}

func (t *evidenceTable) get(host netip.Addr) *hostEvidence { return t.hosts[host] }

func (t *evidenceTable) add(host netip.Addr) *hostEvidence {
	if h := t.hosts[host]; h != nil {
		return h
	}
	if t.hosts == nil {
		t.hosts = make(map[netip.Addr]*hostEvidence)
	}
	if len(t.hosts) >= maxEvidenceHosts {
		for a := range t.hosts {
			delete(t.hosts, a)
			break
		}
	}
	h := &hostEvidence{}
	t.hosts[host] = h
	return h
}

// rttPortFor is the port of the RTT probes: the highest UDP port the scan
// does not probe; ok is false when it probes every one.
func rttPortFor(ports PortSet) (port uint16, ok bool) {
	var scanned [65536 / 64]uint64
	for i := range ports.Len() {
		if p, proto := ports.At(i); proto == UDP {
			scanned[p/64] |= 1 << (p % 64)
		}
	}
	for p := 65535; p > 0; p-- {
		if scanned[p/64]&(1<<(p%64)) == 0 {
			return uint16(p), true
		}
	}
	return 0, false
}

// udpRetries is how many retransmissions pd's probe gets: the Scanner's
// Retries for TCP and for a probe asked again after its silence was not
// trusted; for UDP otherwise, as its host's evidence says.
func (r *run) udpRetries(pd *pending) int32 {
	if pd.probe.Proto != UDP || pd.conservative {
		return r.retries
	}
	h := r.ev.get(pd.probe.IP)
	if h == nil || h.answered == 0 || pd.kind == rttKind {
		return min(r.retries, blindRetries)
	}
	return min(r.retries, h.retries())
}

// learn records an answer to pd's probe: the round trip, if Karn's rule
// lets it be sampled (valid), and the attempts it took. A host's first
// answer shortens the timeouts of its UDP probes in flight.
func (r *run) learn(pd *pending, rtt time.Duration, valid bool) {
	host := pd.probe.IP
	h := r.ev.add(host)
	first := h.rtt.samples == 0
	if valid {
		h.rtt.sample(rtt)
	}
	h.answered++
	h.attempts += uint64(pd.attempt)
	if pd.attempt > 1 || pd.heap < 0 {
		// Answered after an attempt timed out: that attempt, or its
		// answer, was lost (or limited).
		h.lost += uint64(max(pd.attempt-1, 1))
	}
	if first && h.rtt.samples > 0 {
		r.redeadline(host)
	}
}

// redeadline moves the deadlines of host's UDP attempts in flight to what
// the host's round trip now says, if sooner.
func (r *run) redeadline(host netip.Addr) {
	var slots []int32
	for _, slot := range r.heap {
		if pd := &r.slab.items[slot]; pd.probe.IP == host && pd.probe.Proto == UDP && !pd.conservative {
			slots = append(slots, slot)
		}
	}
	for _, slot := range slots {
		pd := &r.slab.items[slot]
		if d := pd.sent + r.timeout(pd); d < pd.deadline {
			pd.deadline = d
			r.heapUp(int(pd.heap))
		}
	}
}

// addRTTProbe queues the RTT probe of host, to go next.
func (r *run) addRTTProbe(host netip.Addr) {
	p := Probe{IP: host, Port: r.rttPort, Proto: UDP}
	if _, busy := r.byProbe[p]; busy || len(r.byProbe) >= r.maxOut {
		return // no room: the host's own ports will time it
	}
	slot := r.slab.alloc()
	pd := &r.slab.items[slot]
	*pd = pending{probe: p, heap: inQueue, gen: pd.gen, kind: rttKind}
	r.byProbe[p] = slot
	r.requeue(slot)
}

// hold keeps a silent UDP port of an answering host until its host's
// silent ports are judged together (resolveHeld).
func (r *run) hold(slot int32) {
	r.slab.items[slot].heap = held
	r.held++
}

// resolveHeld judges the held ports, host by host: their silence is
// trusted, and they end open|filtered, or they are asked again as the
// scan's Retries and timeouts say. It is called when nothing is in flight.
func (r *run) resolveHeld() error {
	byHost := map[netip.Addr]uint64{}
	var slots []int32
	for i := range r.slab.items {
		if pd := &r.slab.items[i]; pd.heap == held {
			byHost[pd.probe.IP]++
			slots = append(slots, int32(i))
		}
	}
	for _, slot := range slots {
		pd := &r.slab.items[slot]
		h := r.ev.get(pd.probe.IP)
		trusted := h != nil && h.answered > 0 && h.lost == 0 && !r.paced(pd.probe.IP) &&
			float64(byHost[pd.probe.IP]) <= max(1, silentShare*float64(h.answered))
		r.held--
		pd.heap = inQueue
		if !trusted && pd.attempt <= r.retries {
			pd.conservative = true
			r.queue = append(r.queue, queued{slot, pd.gen})
			continue
		}
		if err := r.silent(slot); err != nil {
			return err
		}
	}
	return nil
}

// paced reports whether the UDP engine holds host to a pace for its ICMP
// limit now.
func (r *run) paced(host netip.Addr) bool {
	if r.pace == nil || r.pace.by[UDP] == nil {
		return false
	}
	return r.pace.by[UDP].HostRate(host) > 0
}

// silent decides a probe that stayed silent: filtered (TCP) or
// open|filtered (UDP), counted by what its host said otherwise.
func (r *run) silent(slot int32) error {
	pd := &r.slab.items[slot]
	st := Filtered
	if pd.probe.Proto == UDP {
		st = OpenFiltered
		if h := r.ev.get(pd.probe.IP); h != nil && h.answered > 0 {
			r.stats.SilentAnswering++
		} else {
			r.stats.SilentMute++
		}
	}
	return r.decide(slot, Result{Probe: pd.probe, State: st, Reason: "no-response"})
}
