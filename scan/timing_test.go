package scan

import (
	"errors"
	"testing"
)

// The templates go from slowest and most patient to fastest: each level's
// bound is above the one before (none, the last, is above all), and each is
// applied whole.
func TestTimings(t *testing.T) {
	ts := Timings()
	if len(ts) != 6 || ts[DefaultTiming].Name != "normal" {
		t.Fatalf("%d templates, default %q", len(ts), ts[DefaultTiming].Name)
	}
	for i, tm := range ts {
		if tm.Level != i {
			t.Errorf("template %d has level %d", i, tm.Level)
		}
		if i > 0 && ts[i-1].Rate > 0 && tm.Rate > 0 && tm.Rate <= ts[i-1].Rate {
			t.Errorf("-T%d: rate %v not above -T%d's %v", i, tm.Rate, i-1, ts[i-1].Rate)
		}
		if tm.InitialRate > tm.Rate || (tm.Rate == 0 && i != 5) {
			t.Errorf("-T%d: initial rate %v, rate %v", i, tm.InitialRate, tm.Rate)
		}
		var s Scanner
		tm.Apply(&s)
		if s.Rate != tm.Rate || s.InitialRate != tm.InitialRate || s.MaxRTT != tm.MaxRTT || s.MaxOutstanding != tm.MaxOutstanding {
			t.Errorf("-T%d applied: %+v", i, s)
		}
		if s.Retries != tm.Retries {
			t.Errorf("-T%d applied: %d retries, want %d", i, s.Retries, tm.Retries)
		}
	}
	for _, level := range []int{-1, 6} {
		var ce *ConfigError
		if _, err := TimingByLevel(level); !errors.As(err, &ce) {
			t.Errorf("TimingByLevel(%d) = %v, want a ConfigError", level, err)
		}
	}
	if got := ts[0].String(); got != "-T0 paranoid: a probe every 5m0s, one at a time, 6 retries" {
		t.Errorf("-T0: %q", got)
	}
	if got := ts[3].String(); got != "-T3 normal: 1000 probes/s growing to at most 10000, 6 retries" {
		t.Errorf("-T3: %q", got)
	}
}

// A scan with an initial rate starts there, not at its bound: after 100
// probes, a few windows of growth at most, the pace is far below the cap.
func TestScanStartsAtInitialRate(t *testing.T) {
	eng := &fakeEngine{answer: closedAt()}
	s := Scanner{Targets: addrRange{base: 0xc6120000, n: 10}, Ports: portRange{1, 10, TCP}, Engine: eng,
		Rate: 10000, InitialRate: 200, MinRate: 150}
	st, err := s.Run(t.Context(), &collect{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Pace < 150 || st.Pace > 1000 {
		t.Errorf("pace %v after 100 answered probes from 200/s (floor 150), want between the floor and 1000", st.Pace)
	}
}
