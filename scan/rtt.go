package scan

import (
	"net/netip"
	"time"
)

// Defaults of the retransmission timeout. Initial is RFC 6298's; the floor
// is lower than its one second, as nmap's is, because a scanner's silence is
// mostly filtered ports, not congestion, and waiting a second on each would
// make every filtered port cost seconds.
const (
	DefaultInitialRTT = time.Second
	DefaultMinRTT     = 100 * time.Millisecond
	DefaultMaxRTT     = 10 * time.Second
)

// rttEstimator keeps the smoothed round-trip time and its variation and
// derives the retransmission timeout from them, as RFC 6298 does for TCP:
//
//	first sample R:  srtt = R, rttvar = R/2
//	each next R:     rttvar = 3/4·rttvar + 1/4·|srtt − R|, srtt = 7/8·srtt + 1/8·R
//	rto = srtt + max(G, 4·rttvar), clamped to [min, max]
//
// The zero value is not ready; set min, max and initial (newRTTEstimator).
type rttEstimator struct {
	srtt, rttvar time.Duration
	samples      uint64
	min, max     time.Duration
	initial      time.Duration
}

// clockGranularity is G of RFC 6298: the floor of the variance term.
const clockGranularity = time.Millisecond

func newRTTEstimator(initial, min, max time.Duration) rttEstimator {
	return rttEstimator{initial: initial, min: min, max: max}
}

// sample adds one measured round trip. Callers follow Karn's rule: only
// answers that are known to answer one particular send are sampled.
func (e *rttEstimator) sample(r time.Duration) {
	if r < 0 {
		return
	}
	if e.samples == 0 {
		e.srtt, e.rttvar = r, r/2
	} else {
		d := e.srtt - r
		if d < 0 {
			d = -d
		}
		e.rttvar += (d - e.rttvar) / 4
		e.srtt += (r - e.srtt) / 8
	}
	e.samples++
}

// rto is the retransmission timeout: the initial one before any sample.
func (e *rttEstimator) rto() time.Duration {
	if e.samples == 0 {
		return clamp(e.initial, e.min, e.max)
	}
	return clamp(e.srtt+max(clockGranularity, 4*e.rttvar), e.min, e.max)
}

func clamp(d, lo, hi time.Duration) time.Duration {
	return min(max(d, lo), hi)
}

// rttTable is the scan's estimator and, when perHost, one per host. A host
// with fewer than hostSamples samples borrows the scan's timeout, so a host
// seen once does not get a timeout from one noisy answer. The table is
// bounded: when it holds maxHosts hosts, one is forgotten for each new one
// (with probes spread over all hosts, the forgotten host is as likely to be
// needed again as any).
type rttTable struct {
	scan     rttEstimator
	perHost  bool
	hosts    map[netip.Addr]*rttEstimator
	maxHosts int
}

const hostSamples = 3

func newRTTTable(initial, min, max time.Duration, perHost bool, maxHosts int) *rttTable {
	t := &rttTable{scan: newRTTEstimator(initial, min, max), perHost: perHost, maxHosts: maxHosts}
	if perHost {
		t.hosts = make(map[netip.Addr]*rttEstimator)
	}
	return t
}

func (t *rttTable) sample(host netip.Addr, r time.Duration) {
	t.scan.sample(r)
	if !t.perHost {
		return
	}
	e := t.hosts[host]
	if e == nil {
		if len(t.hosts) >= t.maxHosts {
			for h := range t.hosts {
				delete(t.hosts, h)
				break
			}
		}
		e = &rttEstimator{initial: t.scan.initial, min: t.scan.min, max: t.scan.max}
		t.hosts[host] = e
	}
	e.sample(r)
}

func (t *rttTable) rto(host netip.Addr) time.Duration {
	if t.perHost {
		if e := t.hosts[host]; e != nil && e.samples >= hostSamples {
			return e.rto()
		}
	}
	return t.scan.rto()
}
