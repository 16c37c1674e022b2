package harness

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// The helpers below serve benchmarks that run their commands themselves,
// because they need more of each run than Run keeps (bench/cmd/scanbench
// scores every run's output), yet want the same statistics and formatting
// as the other reports.

// Summarize summarises samples taken of c outside Run, as Run does.
func Summarize(c Command, samples []Sample) Stats { return summarize(c, samples) }

// PeakRSS returns the peak resident set size of the finished process in
// bytes; 0 where the platform does not report it.
func PeakRSS(ps *os.ProcessState) int64 { return peakRSS(ps) }

// FormatDuration prints d as the reports do: three significant digits in
// the largest unit that keeps it at least 1, e.g. "12.3 ms".
func FormatDuration(d time.Duration) string { return formatDuration(d) }

// FormatRSS prints a byte count in MiB as the reports do, "n/a" for 0.
func FormatRSS(bytes int64) string { return formatRSS(bytes) }

// FormatPeakRSS prints a run's peak RSS, "≤ floor" where it may be the
// harness's own (see Sample.RSSFloor).
func FormatPeakRSS(peak, floor int64) string { return formatPeakRSS(peak, floor) }

// SpawnFloor readies the calling process to start a command whose peak RSS
// is measured and returns the floor under that measure (Sample.RSSFloor).
func SpawnFloor() int64 { return spawnFloor() }

// FormatRatio prints a ratio as the reports do, "1.23x", "n/a" for NaN.
func FormatRatio(x float64) string { return formatRatio(x) }

// CodeSpan wraps s as inline code that is safe inside a markdown table cell.
func CodeSpan(s string) string { return codeSpan(s) }

// RecordFailure writes into section of the markdown file at path that the
// benchmark failed, when, and why, in place of its last figures: a section
// must not go on showing a run older than the last one tried. The figures
// it held stay in the file's history. Interrupted runs (ctx ended) are not
// recorded: nothing failed.
func RecordFailure(path, section, command string, err error) error {
	if path == "" || section == "" {
		return nil
	}
	doc, rerr := os.ReadFile(path)
	if rerr != nil && !os.IsNotExist(rerr) {
		return rerr
	}
	body := fmt.Sprintf("**FAILED** — %s: `%s` stopped with: %s. The figures this section showed before are in the file's history.\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), command, strings.ReplaceAll(err.Error(), "\n", " "))
	return os.WriteFile(path, UpdateSection(doc, section, body), 0o644)
}
