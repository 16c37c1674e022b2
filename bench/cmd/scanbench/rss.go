package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/portkit/portkit/bench/harness"
)

// rssMax is issue 4's bound on the memory of a /16 × top-100 scan.
const rssMax = 100 << 20

// rssSummary is the last line portkit scan writes on stderr.
var rssSummary = regexp.MustCompile(`(\d+) probes in \S+ \((\d+)/s, (\d+) retransmitted\): (\d+) open, (\d+) closed, (\d+) filtered, (\d+) open\|filtered`)

// rssRun is what one run of the memory benchmark measured.
type rssRun struct {
	sample                           harness.Sample
	done, rate, retransmitted        int
	open, closed, filtered, openFilt int
	err                              error
}

// rss: `portkit scan --syn --top N` over a whole prefix (a /16: 6.5 million
// probes) through the CLI, every result written as JSON Lines (to
// /dev/null: the encoding is done, the bytes are not kept), for the peak
// resident set size the kernel measured (getrusage's ru_maxrss, VmHWM).
// Nothing listens on the prefix, so every probe must come back closed.
func rss(ctx context.Context, c *config) (*report, error) {
	prefix := c.rssPrefix.Masked()
	n := 1 << (prefix.Addr().BitLen() - prefix.Bits())
	argv := []string{c.portkit, "scan", "--syn", "--top", strconv.Itoa(c.rssTop), "--rate", strconv.Itoa(c.rate),
		prefix.String(), "-o", "jsonl", "--out", "/dev/null", "--no-progress"}
	t := tool{Command: harness.Command{Name: "portkit-syn", Argv: argv}, timeout: c.timeout}
	want := n * c.rssTop
	var runs []rssRun
	for k := range c.runs {
		fmt.Fprintf(c.log, "%-16s run %d/%d, %s probes at %s/s...\n", t.Name, k+1, c.runs, group(want), group(c.rate))
		r := rssOnce(ctx, t)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if r.err != nil {
			fmt.Fprintf(c.log, "%-16s run %d/%d FAILED: %v\n", t.Name, k+1, c.runs, r.err)
		} else {
			fmt.Fprintf(c.log, "%-16s run %d/%d %9s  peak RSS %s, %s closed of %s\n", t.Name, k+1, c.runs,
				harness.FormatDuration(r.sample.Wall), harness.FormatPeakRSS(r.sample.PeakRSS, r.sample.RSSFloor), group(r.closed), group(r.done))
		}
		runs = append(runs, r)
	}
	title := fmt.Sprintf("scan memory: %v × portkit's top %d TCP ports (%s probes) through the CLI at %s probes/s, peak RSS",
		prefix, c.rssTop, group(want), group(c.rate))
	r := &report{title: title, start: time.Now(), runs: c.runs, tools: []tool{t}, pass: true}
	r.notes = []string{c.producedBy(), fmt.Sprintf(
		"Fixture: the %s addresses of %v, local on the target namespace's loopback (`ip route add local`) and routed there from the scanner, as the sweep's are; "+
			"nothing listens on them, so the target's kernel answers every probe with a RST and every result must be closed. "+
			"portkit writes every result as JSON Lines to /dev/null (`--out /dev/null`: each one encoded, none kept); "+
			"peak RSS is the kernel's high-water mark of the process's resident set (getrusage `ru_maxrss`, as `/usr/bin/time -v` reports it), "+
			"and the counts are portkit's summary line on stderr.", group(n), prefix)}
	r.rssRuns = runs
	ok, worst := len(runs) > 0, int64(0)
	for _, x := range runs {
		ok = ok && x.err == nil && x.sample.PeakRSS > 0 && x.sample.PeakRSS < rssMax
		worst = max(worst, x.sample.PeakRSS)
	}
	r.addTarget(ok, "peak RSS < 100 MiB in every run", "largest "+harness.FormatRSS(worst))
	all := len(runs) > 0
	for _, x := range runs {
		all = all && x.err == nil && x.done == want && x.closed == want
	}
	r.addTarget(all, "every probe decided, and closed, in every run", fmt.Sprintf("%s probes a run", group(want)))
	return r, nil
}

// rssOnce runs t once and reads its summary line.
func rssOnce(ctx context.Context, t tool) rssRun {
	runCtx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	cmd := toolCommand(runCtx, t, os.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 3 * time.Second
	floor := harness.SpawnFloor()
	t0 := time.Now()
	err := cmd.Run()
	wall := time.Since(t0)
	tail := strings.TrimSpace(stderr.String())
	if i := strings.LastIndexByte(tail, '\n'); i >= 0 {
		tail = tail[i+1:]
	}
	var exitErr *exec.ExitError
	switch {
	case runCtx.Err() != nil:
		return rssRun{err: fmt.Errorf("timed out after %v", t.timeout)}
	case err != nil && !errors.As(err, &exitErr):
		return rssRun{err: err}
	}
	ps := cmd.ProcessState
	r := rssRun{sample: harness.Sample{Wall: wall, CPU: ps.UserTime() + ps.SystemTime(), PeakRSS: harness.PeakRSS(ps), RSSFloor: floor}}
	if code := ps.ExitCode(); code != 0 && code != 1 {
		r.err = fmt.Errorf("exit code %d: %s", code, tail)
		return r
	}
	m := rssSummary.FindStringSubmatch(stderr.String())
	if m == nil {
		r.err = fmt.Errorf("no summary line on stderr: %s", tail)
		return r
	}
	nums := make([]int, len(m)-1)
	for i, s := range m[1:] {
		nums[i], _ = strconv.Atoi(s)
	}
	r.done, r.rate, r.retransmitted = nums[0], nums[1], nums[2]
	r.open, r.closed, r.filtered, r.openFilt = nums[3], nums[4], nums[5], nums[6]
	return r
}

// rssMarkdown renders the memory section: a row a run.
func (r *report) rssMarkdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** — %s, %s %s, %d CPUs, %s\n\n", r.title, r.start.UTC().Format("2006-01-02 15:04 UTC"),
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), plural(r.runs, "run"))
	for _, n := range r.notes {
		b.WriteString(n + "\n\n")
	}
	fmt.Fprintf(&b, "Command: %s\n\n", harness.CodeSpan(r.tools[0].String()))
	b.WriteString("| run | wall | CPU | peak RSS | probes decided | rate | retransmitted | open | closed | filtered |\n")
	b.WriteString("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for k, x := range r.rssRuns {
		if x.err != nil {
			fmt.Fprintf(&b, "| %d | %s | | | | | | | | |\n", k+1, runCell(outcome{err: x.err}))
			continue
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s/s | %s | %s | %s | %s |\n", k+1,
			harness.FormatDuration(x.sample.Wall), harness.FormatDuration(x.sample.CPU), harness.FormatPeakRSS(x.sample.PeakRSS, x.sample.RSSFloor),
			group(x.done), group(x.rate), group(x.retransmitted), group(x.open), group(x.closed), group(x.filtered))
	}
	if len(r.targets) > 0 {
		b.WriteString("\n" + strings.Join(r.targets, "\n") + "\n")
	}
	return b.String()
}
