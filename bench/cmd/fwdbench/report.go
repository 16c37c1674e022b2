package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/portkit/portkit/bench/harness"
)

// section is one section of docs/BENCHMARKS.md.
type section struct {
	title   string
	start   time.Time
	setup   string   // how it was run, after the date on the header line
	notes   []string // paragraphs between the header and the tables
	tables  []string // rendered markdown tables, each with its own caption
	targets []string // "- target ...: PASS (...)"
	pass    bool
	raw     string // when set, the whole section, as is
	load    string // the 1-minute load average when it started
}

func newSection(title, setup string) *section {
	return &section{title: title, setup: setup, start: time.Now(), pass: true, load: loadAvg()}
}

// addTarget records a target line, "- target DESC: PASS (DETAIL)"; a
// failed target fails the section.
func (s *section) addTarget(ok bool, desc, detail string) {
	verdict := "PASS"
	if !ok {
		verdict, s.pass = "FAIL", false
	}
	line := fmt.Sprintf("- target %s: %s", desc, verdict)
	if detail != "" {
		line += " (" + detail + ")"
	}
	s.targets = append(s.targets, line)
}

// fail records a failure that is not a target, such as a run that could
// not be made.
func (s *section) fail(format string, args ...any) {
	s.pass = false
	s.warn(format, args...)
}

// warn puts a note in bold at the head of the section.
func (s *section) warn(format string, args ...any) {
	s.notes = append(s.notes, "**"+fmt.Sprintf(format, args...)+"**")
}

func (s *section) markdown(command string) string {
	if s.raw != "" {
		return s.raw + "\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** — %s, %s %s, %d CPUs", s.title, s.start.UTC().Format("2006-01-02 15:04 UTC"),
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	if s.setup != "" {
		b.WriteString(", " + s.setup)
	}
	fmt.Fprintf(&b, "; load average %s at the start, %s at the end", s.load, loadAvg())
	if command != "" {
		b.WriteString("; `" + command + "`")
	}
	b.WriteString("\n\n")
	for _, n := range s.notes {
		b.WriteString(n + "\n\n")
	}
	for _, t := range s.tables {
		b.WriteString(strings.TrimRight(t, "\n") + "\n\n")
	}
	if len(s.targets) > 0 {
		b.WriteString(strings.Join(s.targets, "\n") + "\n")
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

// table builds a markdown table; the first column is left-aligned, the
// others right-aligned unless align says otherwise.
type table struct {
	caption string
	head    []string
	align   []string
	rows    [][]string
}

func (t *table) row(cells ...string) { t.rows = append(t.rows, cells) }

// everyRun is the table of every run in the order taken, for judging the
// noise: a row per path, a column per group (a stream count, a datagram
// size; "" for none) and round. taken(pi, gi) is how many runs path pi
// made in group gi; cell(pi, gi, k) writes run k of them.
func everyRun(caption string, paths []*path, groups []string, rounds int, taken func(pi, gi int) int, cell func(pi, gi, k int) string) string {
	t := &table{caption: caption, head: []string{"path"}}
	for _, g := range groups {
		for k := range rounds {
			h := fmt.Sprintf("round %d", k+1)
			if g != "" {
				h = g + ", " + h
			}
			t.head = append(t.head, h)
		}
	}
	for pi, p := range paths {
		row := []string{p.name}
		for gi := range groups {
			for k := range rounds {
				c := ""
				if k < taken(pi, gi) {
					c = cell(pi, gi, k)
				}
				row = append(row, c)
			}
		}
		t.row(row...)
	}
	return t.String()
}

func (t *table) String() string {
	var b strings.Builder
	if t.caption != "" {
		b.WriteString(t.caption + "\n\n")
	}
	b.WriteString("| " + strings.Join(t.head, " | ") + " |\n|")
	for i := range t.head {
		a := " ---: |"
		if i == 0 {
			a = " --- |"
		}
		if i < len(t.align) && t.align[i] != "" {
			a = " " + t.align[i] + " |"
		}
		b.WriteString(a)
	}
	b.WriteString("\n")
	for _, r := range t.rows {
		cells := make([]string, len(t.head))
		copy(cells, r)
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	return b.String()
}

// median of xs, NaN for none; xs is not modified.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// percentile returns the p-th percentile of sorted durations, interpolating
// between the nearest ranks as the harness does; 0 for none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := p / 100 * float64(len(sorted)-1)
	lo, hi := int(math.Floor(rank)), int(math.Ceil(rank))
	return sorted[lo] + time.Duration(math.Round((rank-float64(lo))*float64(sorted[hi]-sorted[lo])))
}

// pairedRatio is the median over rounds of a[k]/b[k], the two taken in the
// same round, minutes apart at most: on a shared machine whose load comes
// and goes, that is steadier than the ratio of the two medians. Rounds where
// either is NaN are left out; it returns NaN when none is left.
func pairedRatio(a, b []float64) float64 {
	var rs []float64
	for k := range min(len(a), len(b)) {
		if r := ratio(a[k], b[k]); !math.IsNaN(r) {
			rs = append(rs, r)
		}
	}
	return median(rs)
}

// pairedDiff is the median over rounds of a[k]-b[k], as pairedRatio.
func pairedDiff(a, b []float64) float64 {
	var ds []float64
	for k := range min(len(a), len(b)) {
		if !math.IsNaN(a[k]) && !math.IsNaN(b[k]) {
			ds = append(ds, a[k]-b[k])
		}
	}
	return median(ds)
}

// loadAvg is the first field of /proc/loadavg, "n/a" where there is none.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "n/a"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "n/a"
	}
	return f[0]
}

// ratio is a/b, NaN when either is NaN or b is 0.
func ratio(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return math.NaN()
	}
	return a / b
}

// num prints x with three significant digits (as the harness prints
// durations), "n/a" for NaN.
func num(x float64) string {
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return "n/a"
	case math.Abs(x) >= 1000:
		return count(int64(math.Round(x)))
	case math.Abs(x) >= 100:
		return fmt.Sprintf("%.0f", x)
	case math.Abs(x) >= 10:
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.2f", x)
}

// count prints n with thousands separators: 20,000.
func count(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + count(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// dur prints d as the harness does, "n/a" for a negative value (none).
func dur(d time.Duration) string {
	if d < 0 {
		return "n/a"
	}
	return harness.FormatDuration(d)
}

// signedDur prints an added latency: "+1.23 ms", "−45.6 µs".
func signedDur(d time.Duration) string {
	if d < 0 {
		return "−" + harness.FormatDuration(-d)
	}
	return "+" + harness.FormatDuration(d)
}

// errCell shortens an error for a table cell.
func errCell(err error) string {
	msg := err.Error()
	if len(msg) > 100 {
		msg = msg[:100] + "…"
	}
	msg = strings.ReplaceAll(msg, "\n", " ")
	return "**failed**: " + strings.ReplaceAll(msg, "|", `\|`)
}

// rotated returns the order of n paths in round r: each round starts one
// further along, so that no path always runs first or last.
func rotated(n, r int) []int {
	order := make([]int, n)
	for j := range order {
		order[j] = (r + j) % n
	}
	return order
}

// commandLine is argv as a shell command line, for the reports.
func commandLine(argv []string) string { return harness.Command{Argv: argv}.String() }
