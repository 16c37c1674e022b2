package scan

import (
	"net/netip"
	"testing"
	"time"
)

func TestRTTEstimator(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name     string
		min, max time.Duration
		samples  []time.Duration
		want     time.Duration
	}{
		{"no sample: initial", 10 * ms, 10 * time.Second, nil, time.Second},
		// srtt 100, rttvar 50: 100 + 200.
		{"first sample", 10 * ms, 10 * time.Second, []time.Duration{100 * ms}, 300 * ms},
		// rttvar 50 + (0−50)/4 = 37.5, srtt 100: 100 + 150.
		{"steady second sample", 10 * ms, 10 * time.Second, []time.Duration{100 * ms, 100 * ms}, 250 * ms},
		// rttvar = 37.5 + (100−37.5)/4 = 53.125, srtt = 100 + 100/8 = 112.5: 112.5 + 212.5.
		{"a slow sample widens", 10 * ms, 10 * time.Second, []time.Duration{100 * ms, 100 * ms, 200 * ms}, 325 * ms},
		{"clamped to min", 100 * ms, 10 * time.Second, []time.Duration{ms / 10, ms / 10, ms / 10}, 100 * ms},
		{"clamped to max", 10 * ms, 500 * ms, []time.Duration{time.Second}, 500 * ms},
		{"initial clamped to max", 10 * ms, 500 * ms, nil, 500 * ms},
		// Identical samples drive rttvar to 0; G keeps a floor.
		{"granularity floor", 0, time.Second, repeat(50*ms, 200), 50*ms + clockGranularity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newRTTEstimator(time.Second, tt.min, tt.max)
			for _, s := range tt.samples {
				e.sample(s)
			}
			if got := e.rto(); got != tt.want {
				t.Errorf("rto = %v, want %v", got, tt.want)
			}
		})
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	s := make([]time.Duration, n)
	for i := range s {
		s[i] = d
	}
	return s
}

func TestRTTEstimatorConverges(t *testing.T) {
	e := newRTTEstimator(time.Second, 0, time.Minute)
	for i := range 200 {
		// 10 ms ± 2 ms.
		e.sample(10*time.Millisecond + time.Duration(i%5-2)*time.Millisecond)
	}
	if e.srtt < 9*time.Millisecond || e.srtt > 11*time.Millisecond {
		t.Errorf("srtt = %v, want about 10ms", e.srtt)
	}
	if rto := e.rto(); rto < 12*time.Millisecond || rto > 30*time.Millisecond {
		t.Errorf("rto = %v, want a little above 10ms", rto)
	}
}

func TestRTTTablePerHost(t *testing.T) {
	ms := time.Millisecond
	a, b, c := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")
	tab := newRTTTable(time.Second, ms, time.Minute, true, 2)
	for range 10 {
		tab.sample(a, 10*ms)
	}
	tab.sample(b, 500*ms)
	// b has one sample: it borrows the scan's timeout.
	if got, want := tab.rto(b), tab.scan.rto(); got != want {
		t.Errorf("rto(b) with one sample = %v, want the scan's %v", got, want)
	}
	if got := tab.rto(a); got > 20*ms {
		t.Errorf("rto(a) = %v, want its own, about 10ms", got)
	}
	tab.sample(c, 10*ms) // forgets a or b: the table holds two hosts
	if len(tab.hosts) != 2 {
		t.Errorf("table holds %d hosts, want 2", len(tab.hosts))
	}

	scanOnly := newRTTTable(time.Second, ms, time.Minute, false, 0)
	for range 10 {
		scanOnly.sample(a, 10*ms)
	}
	if scanOnly.hosts != nil || scanOnly.rto(b) != scanOnly.rto(a) {
		t.Errorf("without per-host estimation every host gets the scan's timeout")
	}
}
