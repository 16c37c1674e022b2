// Command sidebyside times a portkit command and its peers in one run and
// prints a markdown table, optionally checking ratio and peak-memory targets
// and updating a section of a markdown file.
//
// Exit codes: 0 success, 1 a run failed or a target was missed, 2 bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portkit/portkit/bench/harness"
)

const usage = `usage: sidebyside -cmd NAME=COMMAND [-cmd NAME=COMMAND ...] [-title T] [-runs N] [-warmup N] [-timeout D] [-allow-exit 0,1] [-md FILE -section NAME] [-max-ratio A/B<=X ...] [-max-rss NAME<=MiB ...]`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	// Checked before stop, which cancels ctx too. A ctrl-C reaches the timed
	// command as well, whose death can end run before the signal has made
	// its way to ctx: a failed run waits a moment for it.
	interrupted := ctx.Err() != nil
	if !interrupted && code != 0 {
		select {
		case <-ctx.Done():
			interrupted = true
		case <-time.After(200 * time.Millisecond):
		}
	}
	stop()
	if interrupted {
		dieOfInterrupt()
	}
	os.Exit(code)
}

// dieOfInterrupt ends the process by SIGINT itself rather than by an exit
// code. A shell script waiting for a command when ctrl-C is pressed carries
// on, and skips its INT trap, if the command exits normally: bash takes that
// as the command having handled the interrupt. Dying of it stops the bench
// script too, so that it cleans up instead of starting its next benchmark.
func dieOfInterrupt() {
	signal.Reset(os.Interrupt)
	if p, err := os.FindProcess(os.Getpid()); err == nil && p.Signal(os.Interrupt) == nil {
		// Delivery is all but immediate; should another thread take it, allow
		// it a moment.
		time.Sleep(100 * time.Millisecond)
	}
	// The signal is ignored (a background job) or cannot be sent (Windows).
	os.Exit(130)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var (
		spec    harness.Spec
		targets []target
		rssCaps []rssTarget
		mdFile  string
		section string
	)
	fl := flag.NewFlagSet("sidebyside", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fl.PrintDefaults()
	}
	fl.StringVar(&spec.Title, "title", "", "title of the report")
	fl.IntVar(&spec.Runs, "runs", 21, "measured `rounds`; each runs every command once")
	fl.IntVar(&spec.Warmup, "warmup", 3, "unrecorded `rounds` run first")
	fl.DurationVar(&spec.Timeout, "timeout", 30*time.Second, "limit for each single run")
	fl.Func("cmd", "`NAME=COMMAND LINE`: a command to time (repeatable; split on blanks, '...' and \"...\" quote, no shell)", func(v string) error {
		c, err := parseCommand(v)
		if err != nil {
			return err
		}
		if hasCommand(spec.Commands, c.Name) {
			return fmt.Errorf("command name %q used twice", c.Name)
		}
		spec.Commands = append(spec.Commands, c)
		return nil
	})
	fl.Func("allow-exit", "accepted exit `codes`, comma-separated (default 0)", func(v string) (err error) {
		spec.AllowExit, err = parseCodes(v)
		return err
	})
	fl.StringVar(&mdFile, "md", "", "markdown `FILE` whose section receives the report (created if absent)")
	fl.StringVar(&section, "section", "", "`NAME` of the section in -md FILE, between <!-- bench:NAME --> markers")
	fl.Func("max-ratio", "target `A/B<=X`: median wall of A at most X times that of B (repeatable)", func(v string) error {
		t, err := parseTarget(v)
		if err != nil {
			return err
		}
		targets = append(targets, t)
		return nil
	})
	fl.Func("max-rss", "target `NAME<=MiB`: peak RSS of NAME, the largest of its runs, at most that many MiB (repeatable)", func(v string) error {
		t, err := parseRSSTarget(v)
		if err != nil {
			return err
		}
		rssCaps = append(rssCaps, t)
		return nil
	})
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := checkUsage(fl.Args(), spec, targets, rssCaps, mdFile, section); err != nil {
		fmt.Fprintf(stderr, "sidebyside: %v\n%s\n", err, usage)
		return 2
	}

	report, err := harness.Run(ctx, spec)
	if err != nil {
		fmt.Fprintf(stderr, "sidebyside: %v\n", err)
		if ctx.Err() == nil {
			if rerr := harness.RecordFailure(mdFile, section, "sidebyside", err); rerr != nil {
				fmt.Fprintf(stderr, "sidebyside: %v\n", rerr)
			}
		}
		return 1
	}
	md, pass := report.Markdown(), true
	if len(targets) > 0 || len(rssCaps) > 0 {
		md += "\n"
	}
	for _, t := range targets {
		ratio := report.Ratio(t.a, t.b)
		verdict := "FAIL"
		if ratio <= t.max { // false for NaN, which fails
			verdict = "PASS"
		} else {
			pass = false
		}
		md += fmt.Sprintf("- target %s/%s <= %s: %s (ratio %.2f)\n", t.a, t.b, strconv.FormatFloat(t.max, 'g', -1, 64), verdict, ratio)
	}
	for _, t := range rssCaps {
		line, ok := t.check(report)
		pass = pass && ok
		md += line
	}
	fmt.Fprint(stdout, md)

	if mdFile != "" {
		if err := writeSection(mdFile, section, md); err != nil {
			fmt.Fprintf(stderr, "sidebyside: %v\n", err)
			return 1
		}
	}
	if !pass {
		return 1
	}
	return 0
}

// checkUsage catches what the flags cannot check one at a time, before any
// time is spent running commands.
func checkUsage(rest []string, spec harness.Spec, targets []target, rssCaps []rssTarget, mdFile, section string) error {
	switch {
	case len(rest) > 0:
		return fmt.Errorf("unexpected argument %q; commands go in -cmd", rest[0])
	case len(spec.Commands) == 0:
		return errors.New("no -cmd given")
	case spec.Runs < 1 || spec.Warmup < 0:
		return errors.New("-runs must be at least 1 and -warmup at least 0")
	case (mdFile == "") != (section == ""):
		return errors.New("-md and -section go together")
	}
	for _, t := range targets {
		for _, name := range []string{t.a, t.b} {
			if !hasCommand(spec.Commands, name) {
				return fmt.Errorf("-max-ratio names %q, which no -cmd defines", name)
			}
		}
	}
	for _, t := range rssCaps {
		if !hasCommand(spec.Commands, t.name) {
			return fmt.Errorf("-max-rss names %q, which no -cmd defines", t.name)
		}
	}
	return nil
}

func hasCommand(cmds []harness.Command, name string) bool {
	return slices.ContainsFunc(cmds, func(c harness.Command) bool { return c.Name == name })
}

func parseCommand(v string) (harness.Command, error) {
	name, line, ok := strings.Cut(v, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return harness.Command{}, errors.New("want NAME=COMMAND LINE")
	}
	// A slash would make -max-ratio A/B ambiguous.
	if strings.ContainsAny(name, "/ \t|") {
		return harness.Command{}, fmt.Errorf("command name %q may not hold a slash, blank or |", name)
	}
	argv, err := splitWords(line)
	if err == nil && len(argv) == 0 {
		err = fmt.Errorf("command %s is empty", name)
	}
	return harness.Command{Name: name, Argv: argv}, err
}

func parseCodes(v string) ([]int, error) {
	var codes []int
	for f := range strings.SplitSeq(v, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("exit code %q is not a number", f)
		}
		codes = append(codes, c)
	}
	return codes, nil
}

// target is a -max-ratio check: Ratio(a, b) <= max.
type target struct {
	a, b string
	max  float64
}

func parseTarget(v string) (target, error) {
	pair, x, ok1 := strings.Cut(v, "<=")
	a, b, ok2 := strings.Cut(pair, "/")
	t := target{a: strings.TrimSpace(a), b: strings.TrimSpace(b)}
	maxv, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
	if !ok1 || !ok2 || t.a == "" || t.b == "" || err != nil || !(maxv > 0) {
		return t, errors.New("want A/B<=X with X a positive number")
	}
	t.max = maxv
	return t, nil
}

// rssTarget is a -max-rss check: the peak RSS of command name, over all its
// measured runs, is at most maxMiB.
type rssTarget struct {
	name   string
	maxMiB float64
}

func parseRSSTarget(v string) (rssTarget, error) {
	name, x, ok := strings.Cut(v, "<=")
	t := rssTarget{name: strings.TrimSpace(name)}
	maxv, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
	if !ok || t.name == "" || err != nil || !(maxv > 0) || math.IsInf(maxv, 1) {
		return t, errors.New("want NAME<=MiB with MiB a positive number")
	}
	t.maxMiB = maxv
	return t, nil
}

// check returns the report line for t and whether it passed. A peak the
// platform does not report fails: a memory target nobody measured is not met.
func (t rssTarget) check(r *harness.Report) (string, bool) {
	limit := strconv.FormatFloat(t.maxMiB, 'g', -1, 64)
	i := slices.IndexFunc(r.Stats, func(s harness.Stats) bool { return s.Command.Name == t.name })
	if i < 0 || r.Stats[i].PeakRSS <= 0 {
		return fmt.Sprintf("- target %s peak RSS <= %s MiB: FAIL (not reported)\n", t.name, limit), false
	}
	mib := float64(r.Stats[i].PeakRSS) / (1 << 20)
	verdict, ok := "PASS", mib <= t.maxMiB
	if !ok {
		verdict = "FAIL"
	}
	return fmt.Sprintf("- target %s peak RSS <= %s MiB: %s (%.1f MiB)\n", t.name, limit, verdict, mib), ok
}

// writeSection puts md into the named section of file, creating the file if
// it does not exist yet.
func writeSection(file, section, md string) error { return harness.WriteSection(file, section, md) }
