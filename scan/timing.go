package scan

import (
	"fmt"
	"time"
)

// Timing is a timing template: how fast and how patiently a scan goes, in
// six steps named as nmap's -T0 … -T5 are. Its numbers are portkit's own.
// Apply sets a Scanner's fields from it; fields set after Apply (an
// explicit rate, say) override it.
type Timing struct {
	Level int    // 0 to 5
	Name  string // "paranoid", "sneaky", "polite", "normal", "aggressive", "insane"
	// Rate is the hard bound on probes a second, retransmissions included
	// (0: none, as fast as the engine goes); InitialRate is where the scan
	// starts below it, growing while answers come back and loss stays low
	// (0: at Rate).
	Rate, InitialRate float64
	// The retransmission timeout before any answer, and its bounds; 0 is
	// the Scanner's default.
	InitialRTT, MinRTT, MaxRTT time.Duration
	// Retries is the retransmissions of an unanswered probe.
	Retries int
	// MaxOutstanding, if set, bounds the probes awaiting an answer: 1 is
	// one probe at a time.
	MaxOutstanding int
}

// DefaultTiming is the template of a scan that names none: normal (-T3).
const DefaultTiming = 3

// Timings returns the six templates, from -T0 to -T5.
func Timings() []Timing {
	return []Timing{
		// One probe every five minutes, one at a time: days for 1,000
		// ports, for evading an intrusion detection system.
		{Level: 0, Name: "paranoid", Rate: 1.0 / 300, Retries: DefaultRetries, MaxOutstanding: 1},
		// One probe every 15 seconds, one at a time.
		{Level: 1, Name: "sneaky", Rate: 1.0 / 15, Retries: DefaultRetries, MaxOutstanding: 1},
		// 2.5 probes a second (0.4 s apart): little bandwidth and little
		// load on the targets.
		{Level: 2, Name: "polite", Rate: 2.5, Retries: DefaultRetries},
		// Starts at 1,000 probes a second and grows to at most 10,000
		// while answers keep coming, backing off on loss: about 5 Mbit/s of
		// SYNs at most, which a LAN or an uplink carries without harm.
		{Level: 3, Name: "normal", Rate: 10000, InitialRate: 1000, Retries: DefaultRetries},
		// Starts at 5,000 a second, grows to at most 100,000; gives up
		// sooner on a silent probe (timeouts from 0.5 s, at most 1.25 s).
		{Level: 4, Name: "aggressive", Rate: 100000, InitialRate: 5000,
			InitialRTT: 500 * time.Millisecond, MaxRTT: 1250 * time.Millisecond, Retries: DefaultRetries},
		// No rate bound, as fast as the engine goes, short timeouts
		// (0.25 s, at most 0.3 s) and two retransmissions: a fast, local
		// network only.
		{Level: 5, Name: "insane", InitialRTT: 250 * time.Millisecond, MinRTT: 50 * time.Millisecond,
			MaxRTT: 300 * time.Millisecond, Retries: 2},
	}
}

// TimingByLevel returns template level (0 to 5), or an error naming it.
func TimingByLevel(level int) (Timing, error) {
	ts := Timings()
	if level < 0 || level >= len(ts) {
		return Timing{}, &ConfigError{"Timing", fmt.Sprintf("-T%d: want -T0 to -T5", level)}
	}
	return ts[level], nil
}

// Apply sets s's rates, timeouts, retries and in-flight bound to the
// template's.
func (t Timing) Apply(s *Scanner) {
	s.Rate, s.InitialRate = t.Rate, t.InitialRate
	s.InitialRTT, s.MinRTT, s.MaxRTT = t.InitialRTT, t.MinRTT, t.MaxRTT
	s.Retries = t.Retries
	if t.Retries == 0 {
		s.Retries = -1 // Scanner's 0 is its default; the template's is none
	}
	s.MaxOutstanding = t.MaxOutstanding
}

// String describes the template in a line.
func (t Timing) String() string {
	pace := "no rate bound"
	switch {
	case t.Rate > 0 && t.Rate < 1:
		pace = fmt.Sprintf("a probe every %v", time.Duration(float64(time.Second)/t.Rate).Round(time.Millisecond))
	case t.InitialRate > 0:
		pace = fmt.Sprintf("%.0f probes/s growing to at most %.0f", t.InitialRate, t.Rate)
	case t.Rate > 0:
		pace = fmt.Sprintf("%g probes/s", t.Rate)
	}
	if t.MaxOutstanding == 1 {
		pace += ", one at a time"
	}
	return fmt.Sprintf("-T%d %s: %s, %d retries", t.Level, t.Name, pace, t.Retries)
}
