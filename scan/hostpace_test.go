package scan

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// The hosts of the pacing tests: one the engine paces, three it does not.
var (
	pacedHost4  = netip.MustParseAddr("198.18.0.1")
	freeHosts4  = addrList{netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3"), netip.MustParseAddr("198.18.0.4")}
	pacingHosts = append(addrList{pacedHost4}, freeHosts4...)
)

// checkSpacing fails the test if attempts sent at ts went faster than one
// per interval.
func checkSpacing(t *testing.T, ts []time.Time, interval time.Duration) {
	t.Helper()
	// The times are when the engine was called, which a loaded machine
	// may delay after the pacer let the attempt go: a late one followed
	// by one on time looks like a short gap. So the pace is checked over
	// stretches of attempts, where a delay of up to stall cannot hide a
	// pacer that went faster than its pace: over 8 attempts, twice the
	// pace would gain 100 ms.
	const stall = 75 * time.Millisecond
	for i := range ts {
		for j := i + 8; j < len(ts); j++ {
			if span, least := ts[j].Sub(ts[i]), time.Duration(j-i-1)*interval-stall; span < least {
				t.Errorf("attempts %d to %d to the paced host took %v, want at least %v at one per %v", i, j, span, least, interval)
				return
			}
		}
	}
}

// A host the engine paces gets its attempts, retransmissions included, at
// the pace, while the other hosts' probes go at once: the paced host's
// probes are parked, not waited for. With and without a rate cap.
func TestScanHostPace(t *testing.T) {
	const pace = 40 // attempts a second to the paced host
	interval := time.Second / pace
	for _, rate := range []float64{0, 5000} {
		t.Run(fmt.Sprint("rate=", rate), func(t *testing.T) {
			eng := &pacedFake{
				// Even ports answer only the second attempt.
				fakeEngine: &fakeEngine{proto: UDP, record: true, answer: func(p Probe, attempt int) (State, bool) {
					return Closed, p.Port%2 == 1 || attempt > 1
				}},
				rate: func(ip netip.Addr) float64 {
					if ip == pacedHost4 {
						return pace
					}
					return 0
				},
			}
			// Without RTT probes: the attempts counted are the ports'.
			s := Scanner{Targets: pacingHosts, Ports: portRange{1, 20, UDP}, UDPEngine: eng, Rate: rate,
				InitialRTT: 10 * time.Millisecond, MinRTT: 5 * time.Millisecond, NoRTTProbe: true}
			st, m := scanAll(t, &s)
			if len(m) != 4*20 {
				t.Fatalf("%d results, want %d", len(m), 4*20)
			}
			for p, r := range m {
				if r.State != Closed {
					t.Errorf("%v:%d: %v, want closed", p.IP, p.Port, r.State)
				}
			}
			ts := eng.sendTimes(pacedHost4)
			if len(ts) != 30 {
				t.Fatalf("%d attempts to the paced host, want 30", len(ts))
			}
			checkSpacing(t, ts, interval)
			if took, most := ts[len(ts)-1].Sub(ts[0]), 3*29*interval; took > most {
				t.Errorf("the paced host's 30 attempts took %v, want about %v", took, 29*interval)
			}
			for _, ip := range freeHosts4 {
				if o := eng.sendTimes(ip); len(o) != 30 || !o[len(o)-1].Before(ts[3]) {
					t.Errorf("%v: %d attempts, the last not before the paced host's fourth: held to its pace", ip, len(o))
				}
			}
			if st.HostsPaced != 1 || !st.HostPaceLimited {
				t.Errorf("stats: %d hosts paced (limited %v), want 1, limited", st.HostsPaced, st.HostPaceLimited)
			}
			if n := eng.asked.Load(); n < int64(st.Sent) {
				t.Errorf("the pace asked %d times for %d attempts, want every time", n, st.Sent)
			}
		})
	}
}

// A pace lifted lets the host's parked probes go at once.
func TestScanHostPaceLifted(t *testing.T) {
	const pace, paced = 20, 5 // the pace holds for the first 5 attempts
	var sent atomic.Int64
	eng := &pacedFake{
		fakeEngine: &fakeEngine{proto: UDP, record: true, answer: func(p Probe, _ int) (State, bool) {
			if p.IP == pacedHost4 {
				sent.Add(1)
			}
			return Closed, true
		}},
		rate: func(ip netip.Addr) float64 {
			if ip == pacedHost4 && sent.Load() < paced {
				return pace
			}
			return 0
		},
	}
	s := Scanner{Targets: pacingHosts, Ports: portRange{1, 20, UDP}, UDPEngine: eng}
	st, m := scanAll(t, &s)
	if len(m) != 4*20 {
		t.Fatalf("%d results, want %d", len(m), 4*20)
	}
	ts := eng.sendTimes(pacedHost4)
	checkSpacing(t, ts[:paced], time.Second/pace)
	// The sixth waited for a token, and found the pace lifted.
	if rest := ts[len(ts)-1].Sub(ts[paced]); rest > time.Second/pace/2 {
		t.Errorf("the last %d attempts took %v after the pace was lifted", len(ts)-paced, rest)
	}
	if st.HostsPaced != 1 {
		t.Errorf("%d hosts paced, want 1", st.HostsPaced)
	}
}

// Parked probes count against MaxOutstanding, and a scan whose every
// outstanding probe is parked waits for the earliest token, not forever.
func TestScanHostPaceBounded(t *testing.T) {
	const pace, maxOut = 100, 4
	eng := &pacedFake{
		fakeEngine: &fakeEngine{proto: UDP, record: true, answer: closedAt()},
		rate:       func(netip.Addr) float64 { return pace }, // every host
	}
	s := Scanner{Targets: pacingHosts[:2], Ports: portRange{1, 10, UDP}, UDPEngine: eng, MaxOutstanding: maxOut}
	var r *run
	var results, peakOut, peakParked int
	r, err := s.newRun(SinkFunc(func(Result) error {
		// On Run's goroutine: the run's state may be read.
		results++
		peakOut = max(peakOut, len(r.byProbe))
		peakParked = max(peakParked, r.pace.parked)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	st, err := r.run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if results != 20 || st.Done != 20 {
		t.Fatalf("%d results (%d done), want 20", results, st.Done)
	}
	if peakOut > maxOut || peakParked == 0 {
		t.Errorf("%d outstanding at most (%d parked), want at most %d, some parked", peakOut, peakParked, maxOut)
	}
	for _, ip := range pacingHosts[:2] {
		checkSpacing(t, eng.sendTimes(ip), time.Second/pace)
	}
	if st.HostsPaced != 2 || st.Elapsed < 9*time.Second/pace {
		t.Errorf("%d hosts paced in %v, want 2 in %v or more", st.HostsPaced, st.Elapsed, 9*time.Second/pace)
	}
}
