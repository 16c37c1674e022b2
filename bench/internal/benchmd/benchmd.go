// Package benchmd writes the sections of docs/BENCHMARKS.md that the
// benchmark programs (bench/cmd/fwdbench, bench/cmd/knockbench) produce: a
// header line with the date, the machine and its load, notes, tables and
// target lines, and the small number formats they share.
package benchmd

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

// Section is one section of docs/BENCHMARKS.md.
type Section struct {
	Title   string
	Start   time.Time
	Setup   string   // how it was run, after the date on the header line
	Notes   []string // paragraphs between the header and the tables
	Tables  []string // rendered markdown tables, each with its own caption
	Targets []string // "- target ...: PASS (...)"
	Pass    bool
	Raw     string // when set, the whole section, as is
	Load    string // the 1-minute load average when it started
}

// New starts a section titled title, timed and loaded from now; setup
// goes on the header line after the date.
func New(title, setup string) *Section {
	return &Section{Title: title, Setup: setup, Start: time.Now(), Pass: true, Load: LoadAvg()}
}

// AddTarget records a target line, "- target DESC: PASS (DETAIL)"; a
// failed target fails the section.
func (s *Section) AddTarget(ok bool, desc, detail string) {
	verdict := "PASS"
	if !ok {
		verdict, s.Pass = "FAIL", false
	}
	line := fmt.Sprintf("- target %s: %s", desc, verdict)
	if detail != "" {
		line += " (" + detail + ")"
	}
	s.Targets = append(s.Targets, line)
}

// Fail records a failure that is not a target, such as a run that could
// not be made.
func (s *Section) Fail(format string, args ...any) {
	s.Pass = false
	s.Warn(format, args...)
}

// Warn puts a note in bold at the head of the section.
func (s *Section) Warn(format string, args ...any) {
	s.Notes = append(s.Notes, "**"+fmt.Sprintf(format, args...)+"**")
}

func (s *Section) Markdown(command string) string {
	if s.Raw != "" {
		return s.Raw + "\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** — %s, %s %s, %d CPUs", s.Title, s.Start.UTC().Format("2006-01-02 15:04 UTC"),
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	if s.Setup != "" {
		b.WriteString(", " + s.Setup)
	}
	fmt.Fprintf(&b, "; load average %s at the start, %s at the end", s.Load, LoadAvg())
	if command != "" {
		b.WriteString("; `" + command + "`")
	}
	b.WriteString("\n\n")
	for _, n := range s.Notes {
		b.WriteString(n + "\n\n")
	}
	for _, t := range s.Tables {
		b.WriteString(strings.TrimRight(t, "\n") + "\n\n")
	}
	if len(s.Targets) > 0 {
		b.WriteString(strings.Join(s.Targets, "\n") + "\n")
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

// Table builds a markdown table; the first column is left-aligned, the
// others right-aligned unless align says otherwise.
type Table struct {
	Caption string
	Head    []string
	Align   []string
	Rows    [][]string
}

func (t *Table) Row(cells ...string) { t.Rows = append(t.Rows, cells) }

func (t *Table) String() string {
	var b strings.Builder
	if t.Caption != "" {
		b.WriteString(t.Caption + "\n\n")
	}
	b.WriteString("| " + strings.Join(t.Head, " | ") + " |\n|")
	for i := range t.Head {
		a := " ---: |"
		if i == 0 {
			a = " --- |"
		}
		if i < len(t.Align) && t.Align[i] != "" {
			a = " " + t.Align[i] + " |"
		}
		b.WriteString(a)
	}
	b.WriteString("\n")
	for _, r := range t.Rows {
		cells := make([]string, len(t.Head))
		copy(cells, r)
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	return b.String()
}

// Median of xs, NaN for none; xs is not modified.
func Median(xs []float64) float64 {
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

// Percentile returns the p-th percentile of sorted durations, interpolating
// between the nearest ranks as the harness does; 0 for none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := p / 100 * float64(len(sorted)-1)
	lo, hi := int(math.Floor(rank)), int(math.Ceil(rank))
	return sorted[lo] + time.Duration(math.Round((rank-float64(lo))*float64(sorted[hi]-sorted[lo])))
}

// PairedRatio is the median over rounds of a[k]/b[k], the two taken in the
// same round, minutes apart at most: on a shared machine whose load comes
// and goes, that is steadier than the ratio of the two medians. Rounds where
// either is NaN are left out; it returns NaN when none is left.
func PairedRatio(a, b []float64) float64 {
	var rs []float64
	for k := range min(len(a), len(b)) {
		if r := Ratio(a[k], b[k]); !math.IsNaN(r) {
			rs = append(rs, r)
		}
	}
	return Median(rs)
}

// PairedDiff is the median over rounds of a[k]-b[k], as pairedRatio.
func PairedDiff(a, b []float64) float64 {
	var ds []float64
	for k := range min(len(a), len(b)) {
		if !math.IsNaN(a[k]) && !math.IsNaN(b[k]) {
			ds = append(ds, a[k]-b[k])
		}
	}
	return Median(ds)
}

// LoadAvg is the first field of /proc/loadavg, "n/a" where there is none.
func LoadAvg() string {
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

// Ratio is a/b, NaN when either is NaN or b is 0.
func Ratio(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return math.NaN()
	}
	return a / b
}

// Num prints x with three significant digits (as the harness prints
// durations), "n/a" for NaN.
func Num(x float64) string {
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return "n/a"
	case math.Abs(x) >= 1000:
		return Count(int64(math.Round(x)))
	case math.Abs(x) >= 100:
		return fmt.Sprintf("%.0f", x)
	case math.Abs(x) >= 10:
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.2f", x)
}

// Count prints n with thousands separators: 20,000.
func Count(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + Count(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// Dur prints d as the harness does, "n/a" for a negative value (none).
func Dur(d time.Duration) string {
	if d < 0 {
		return "n/a"
	}
	return harness.FormatDuration(d)
}

// SignedDur prints an added latency: "+1.23 ms", "−45.6 µs".
func SignedDur(d time.Duration) string {
	if d < 0 {
		return "−" + harness.FormatDuration(-d)
	}
	return "+" + harness.FormatDuration(d)
}

// ErrCell shortens an error for a table cell.
func ErrCell(err error) string {
	msg := err.Error()
	if len(msg) > 100 {
		msg = msg[:100] + "…"
	}
	msg = strings.ReplaceAll(msg, "\n", " ")
	return "**failed**: " + strings.ReplaceAll(msg, "|", `\|`)
}

// Rotated returns the order of n paths in round r: each round starts one
// further along, so that no path always runs first or last.
func Rotated(n, r int) []int {
	order := make([]int, n)
	for j := range order {
		order[j] = (r + j) % n
	}
	return order
}
