package harness

import (
	"context"
	"fmt"
	"io"
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
	body := fmt.Sprintf("**FAILED** — %s: `%s` stopped with: %s. The figures this section showed before are in the file's history.\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), command, strings.ReplaceAll(err.Error(), "\n", " "))
	return WriteSection(path, section, body)
}

// Finish ends a benchmark program's run as they all end it, and returns
// its exit status: 130 when ctx was interrupted; on err, the failure on
// stderr and recorded in the section (RecordFailure), 1; else body on
// stdout and written into the section when md names a file, and 1 when a
// target was missed (met false), 0 when none was.
func Finish(ctx context.Context, stdout, stderr io.Writer, prog, md, section, command, body string, met bool, err error) int {
	if ctx.Err() != nil {
		return 130
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		if rerr := RecordFailure(md, section, command, err); rerr != nil {
			fmt.Fprintf(stderr, "%s: %v\n", prog, rerr)
		}
		return 1
	}
	fmt.Fprint(stdout, body)
	if !strings.HasSuffix(body, "\n") {
		fmt.Fprintln(stdout)
	}
	if md != "" && section != "" {
		if err := WriteSection(md, section, body); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", prog, err)
			return 1
		}
	}
	if !met {
		return 1
	}
	return 0
}
