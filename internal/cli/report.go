package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portkit/portkit/registry"
	"github.com/portkit/portkit/scan/report"
)

// reportFlags are portkit report's options.
type reportFlags struct {
	format, out string
	open        bool
}

// reportFormats are the formats report writes: scan's, and html.
func reportFormats() []string { return append(report.Formats(), "html") }

func newReport(e *env) *cobra.Command {
	var f reportFlags
	cmd := &cobra.Command{
		Use:   "report FILE...",
		Short: "Merge scans' JSON Lines (shards, resumed runs) into one report",
		Long: `Read the JSON Lines that portkit scan writes (-o jsonl, --out FILE; - is
stdin) and write one report of them: one row per address, port and
protocol, in any of scan's formats or as one HTML page.

Merging: where several inputs decide the same port, the newest decision
wins. A decision is dated by the start of its run (the "scan" line the run
begins with): the later start wins; between equal dates, and for lines
without a "scan" line before them (an older portkit's output, counted as
older than any dated one), the line read last wins.

Checking: the runs of a sharded scan (--seed S --shard I/N) are checked to
be all there, once: a shard missing, or none of whose runs finished, makes
the report incomplete (exit 3, said on stderr and in the report); a shard
scanned twice from the start, or two shards that share a port, is warned
of. Inputs that hold different scans (another seed, other ports or
targets) are warned of and merged, newest decision first: a rescan
updates an older scan.

Output: a table on a terminal, JSON Lines when piped, or -o
json|xml|grep|csv|html (XML is nmap's; html is one self-contained page with
a summary, charts and a table to filter and sort). --out FILE writes there,
whole or not at all. Like scan, the table shows open ports only, the other
formats every state; --open shows open ports only in every format.

Exit status: 0 when an open port is in the report, 1 when none is, 2 on bad
input (a line that is not portkit's JSON Lines, named file:line; inputs
with nothing in them), 3 when the report is incomplete.`,
		Example: `  portkit report shard-*.jsonl -o html --out scan.html
  portkit report scan.jsonl -o xml --out scan.xml
  portkit scan 198.18.0.0/24 -o jsonl | portkit report - -o csv --open
  portkit report monday.jsonl tuesday.jsonl --open`,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return runReport(e, cmd, &f, args)
		}),
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.format, "output", "o", "", "output `FORMAT`: "+strings.Join(reportFormats(), ", ")+" (default table on a terminal, jsonl piped)")
	fl.StringVar(&f.out, "out", "", "write the report to `FILE` instead of stdout")
	fl.BoolVar(&f.open, "open", false, "show open ports only (the table's default)")
	return cmd
}

func runReport(e *env, cmd *cobra.Command, f *reportFlags, args []string) error {
	if len(args) == 0 {
		return usagef("report: give the FILEs scan wrote with -o jsonl, or - to read stdin")
	}
	format := f.format
	switch {
	case format != "":
		if err := checkReportFormat(format); err != nil {
			return &exitError{code: ExitUsage, err: err}
		}
	case e.json:
		format = "json"
	case f.out == "" && e.printer().TTY():
		format = "table"
	default:
		format = "jsonl"
	}

	m := report.NewMerge()
	stdin := false
	for _, name := range args {
		if name == "-" {
			if stdin {
				return usagef("report: - (stdin) given twice")
			}
			stdin = true
			// stdin is read until its writer ends, which an interrupt must
			// not wait for (a terminal waits for ^D).
			if err := untilDone(cmd.Context(), func() error { return m.Read(e.In, "stdin") }); err != nil {
				if errors.Is(err, context.Canceled) {
					return err
				}
				return readError(err)
			}
			continue
		}
		if err := cmd.Context().Err(); err != nil {
			return err
		}
		file, err := os.Open(name)
		if err != nil {
			return usagef("report: %s: %v", name, unwrapPath(err))
		}
		err = m.Read(file, name)
		file.Close()
		if err != nil {
			return readError(err)
		}
	}
	for name, n := range m.Skipped {
		e.warnf("warning: %s: %d line(s) of a type this portkit does not know, skipped (written by a newer portkit?)", name, n)
	}
	if len(m.Empty) == len(args) {
		return usagef("report: nothing to report: %s %s empty", strings.Join(m.Empty, ", "), isAre(len(m.Empty)))
	}
	for _, name := range m.Empty {
		e.warnf("warning: %s is empty", name)
	}
	problems := m.Check()
	incomplete := false
	for _, p := range problems {
		if p.Incomplete {
			incomplete = true
			e.warnf("incomplete: %s", p.Text)
		} else {
			e.warnf("warning: %s", p.Text)
		}
	}

	reg, _ := registry.Open(registry.Options{Services: registry.ServicesFile})
	opts := report.Options{All: !f.open && format != "table", Registry: reg, Getenv: e.Getenv}
	info := m.Info(append([]string{"portkit", "report"}, args...), buildVersion().Version)
	summary := m.Summary(info, problems)
	entries := m.Entries()
	write := func(w io.Writer) error {
		if format == "html" {
			elapsed, probes := m.Timing()
			names := slices.Clone(args)
			for i, n := range names {
				if n == "-" {
					names[i] = "stdin"
				}
			}
			return report.WriteHTML(w, report.HTMLReport{Info: info, Summary: summary, Entries: entries, Problems: problems,
				Inputs: names, Runs: len(m.Runs()), RunTime: elapsed, Probes: probes, Generated: time.Now()}, opts)
		}
		rw, err := report.New(format, w, opts)
		if err != nil {
			return err
		}
		if err := rw.Begin(info); err != nil {
			return err
		}
		for _, en := range entries {
			if err := rw.Result(en.Result); err != nil {
				return err
			}
		}
		return rw.End(summary)
	}
	if f.out == "" {
		if err := write(&ioWriter{w: e.Out, name: "stdout"}); err != nil {
			return err
		}
	} else if err := writeReportFile(f.out, write); err != nil {
		return &exitError{code: ExitIO, err: fmt.Errorf("--out %s: %v", f.out, err)}
	}

	e.warnf("%d result(s) from %d run(s): %d open, %d closed, %d filtered, %d open|filtered",
		len(entries), len(m.Runs()), summary.Open, summary.Closed, summary.Filtered, summary.OpenFiltered)
	switch {
	case incomplete:
		return &exitError{code: ExitPartial}
	case summary.Open == 0:
		return &exitError{code: ExitNegative}
	}
	return nil
}

// checkReportFormat refuses a format report does not write.
func checkReportFormat(format string) error {
	if !slices.Contains(reportFormats(), format) {
		return fmt.Errorf("-o %q: not a report format (want %s)", format, strings.Join(reportFormats(), ", "))
	}
	return nil
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// readError is a failed read as the user sees it: a bad line is bad input.
func readError(err error) error {
	var le *report.LineError
	if errors.As(err, &le) {
		return &exitError{code: ExitUsage, err: err}
	}
	return usagef("report: %w", err)
}

// untilDone runs read and returns its error, or the context's once the
// context ends first; read then goes on to its end in the background.
func untilDone(ctx context.Context, read func() error) error {
	done := make(chan error, 1)
	go func() { done <- read() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeReportFile writes the report to name whole or not at all (see
// wholeFile): a new file beside it, with mode 0666 less the umask as the
// report file itself would have, synced, then renamed over it. A symbolic
// link is followed; a FIFO or device is written to as it is.
func writeReportFile(name string, write func(io.Writer) error) error {
	return writeWhole(name, 0o666, true, write)
}
