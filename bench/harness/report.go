package harness

import (
	"math"
	"slices"
	"time"
)

// Report is the outcome of Run.
type Report struct {
	Title  string
	Start  time.Time // UTC
	Runs   int
	Warmup int
	GOOS   string
	GOARCH string
	NumCPU int
	Stats  []Stats // in the order of Spec.Commands
}

// Stats summarises the measured runs of one command.
type Stats struct {
	Command    Command
	Runs       int
	MedianWall time.Duration
	MinWall    time.Duration
	P90Wall    time.Duration
	MedianCPU  time.Duration
	PeakRSS    int64    // bytes, the largest of all runs; 0 if not reported
	RSSFloor   int64    // bytes, the largest Sample.RSSFloor of the runs
	Samples    []Sample // in the order they were taken
}

func summarize(c Command, samples []Sample) Stats {
	wall := make([]time.Duration, len(samples))
	cpu := make([]time.Duration, len(samples))
	var rss, floor int64
	for i, s := range samples {
		wall[i], cpu[i] = s.Wall, s.CPU
		rss = max(rss, s.PeakRSS)
		floor = max(floor, s.RSSFloor)
	}
	slices.Sort(wall)
	slices.Sort(cpu)
	return Stats{
		Command:    c,
		Runs:       len(samples),
		MedianWall: percentile(wall, 50),
		MinWall:    percentile(wall, 0),
		P90Wall:    percentile(wall, 90),
		MedianCPU:  percentile(cpu, 50),
		PeakRSS:    rss,
		RSSFloor:   floor,
		Samples:    samples,
	}
}

// percentile returns the p-th percentile (0 to 100) of sorted, interpolating
// linearly between the two nearest ranks, so that the 50th is the usual
// median for an even count too. It returns 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := p / 100 * float64(len(sorted)-1)
	lo := int(math.Floor(rank))
	hi := int(math.Ceil(rank))
	frac := rank - float64(lo)
	return sorted[lo] + time.Duration(math.Round(frac*float64(sorted[hi]-sorted[lo])))
}

// Ratio is the median wall time of command a divided by that of command b.
// It is NaN when either name is unknown or b's median is zero.
func (r *Report) Ratio(a, b string) float64 {
	sa, okA := r.stats(a)
	sb, okB := r.stats(b)
	if !okA || !okB || sb.MedianWall == 0 {
		return math.NaN()
	}
	return float64(sa.MedianWall) / float64(sb.MedianWall)
}

func (r *Report) stats(name string) (Stats, bool) {
	for _, s := range r.Stats {
		if s.Command.Name == name {
			return s, true
		}
	}
	return Stats{}, false
}
