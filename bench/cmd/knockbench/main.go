// Command knockbench measures `portkit knockd` against fwknopd (single
// packet authorization) and knockd (knock sequences), side by side in one
// run. It is run by bench/knock.sh inside the client's network namespace,
// joined by veth pairs to three target namespaces the script made, one per
// server (see fixture.go for the addresses):
//
//	knockbench open  [-trials 100] [-limit 2s]     from the client's send to the first connect to the opened port
//	knockbench flood [-seconds 10] [-valid 100]    junk flood: valid SPA packets counted, CPU and RSS sampled
//	knockbench replay [-digests 1000000]           a replay cache file loaded: time, RSS, look-up
//	knockbench about                               the introduction of the knock sections
//
// Common flags: -ns-portkit NS -ns-fwknopd NS -ns-knockd NS (the target
// namespaces; each one's veth end has its name), -portkit PATH
// (bin/portkit), -target PATH (bin/fwdtarget, the listener on the
// protected port), -md FILE -section NAME (write the report into that
// section of a markdown file), -command TEXT (the command line named in
// the report).
//
// Each mode starts the servers afresh in their namespaces and stops them on
// the way out; every process started here runs in a process group of its
// own. Every loop is bounded in count and in time, and every packet goes to
// 198.18.0.0/15.
//
// Exit codes: 0 every target met, 1 a target missed or a run failed, 2 bad
// usage, 130 interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/portkit/portkit/bench/harness"
	"github.com/portkit/portkit/bench/internal/benchmd"
)

const usage = `usage: knockbench open|flood|replay|about -ns-portkit NS -ns-fwknopd NS -ns-knockd NS [-portkit PATH] [-target PATH] [-md FILE -section NAME] [-command TEXT] [mode flags]`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if ctx.Err() != nil {
		code = 130
	}
	stop()
	os.Exit(code)
}

// config holds the flags of every mode; each mode reads its own.
type config struct {
	mode      string
	portkit   string
	target    string
	nsPortkit string
	nsFwknopd string
	nsKnockd  string
	md        string
	section   string
	command   string
	tmp       string
	stderr    io.Writer

	trials     int           // open: trials per server
	limit      time.Duration // open: how long a trial waits for the port
	seconds    int           // flood: length of the flood
	valid      int           // flood: valid SPA packets sent during it
	maxPackets int           // flood: junk packets at most
	digests    int           // replay: digests in the cache
}

type mode func(context.Context, *config) (*benchmd.Section, error)

var modes = map[string]mode{"open": openMode, "flood": floodMode, "replay": replayMode, "about": aboutMode}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, err := parseArgs(args, stdout, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "knockbench: %v\n%s\n", err, usage)
		return 2
	}
	c.tmp, err = os.MkdirTemp("", "knockbench-")
	if err != nil {
		fmt.Fprintf(stderr, "knockbench: %v\n", err)
		return 1
	}
	defer os.RemoveAll(c.tmp)

	s, err := modes[c.mode](ctx, c)
	var body string
	if err == nil {
		body = s.Markdown(c.command)
	}
	return harness.Finish(ctx, stdout, stderr, "knockbench", c.md, c.section, c.command, body, err == nil && s.Pass, err)
}

// shown is argv as a command line for the reports, in backquotes, with the
// run's temporary directory written $TMP.
func (c *config) shown(argv []string) string {
	line := harness.Command{Argv: argv}.String()
	if c.tmp != "" {
		line = strings.ReplaceAll(line, c.tmp, "$TMP")
	}
	return harness.CodeSpan(line)
}

func parseArgs(args []string, stdout, stderr io.Writer) (*config, error) {
	if len(args) == 0 || modes[args[0]] == nil {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fmt.Fprintln(stdout, usage)
			return nil, flag.ErrHelp
		}
		return nil, errors.New("the first argument names the mode: open, flood, replay or about")
	}
	c := &config{mode: args[0], stderr: stderr}
	fl := flag.NewFlagSet("knockbench "+c.mode, flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fl.PrintDefaults()
	}
	fl.StringVar(&c.portkit, "portkit", "bin/portkit", "portkit binary `PATH`")
	fl.StringVar(&c.target, "target", "bin/fwdtarget", "fwdtarget binary `PATH` (the listener on the protected port)")
	fl.StringVar(&c.nsPortkit, "ns-portkit", "", "network namespace `NS` of portkit knockd")
	fl.StringVar(&c.nsFwknopd, "ns-fwknopd", "", "network namespace `NS` of fwknopd")
	fl.StringVar(&c.nsKnockd, "ns-knockd", "", "network namespace `NS` of knockd")
	fl.StringVar(&c.md, "md", "", "markdown `FILE` whose section receives the report")
	fl.StringVar(&c.section, "section", "", "`NAME` of the section in -md FILE")
	fl.StringVar(&c.command, "command", "", "the command line that produced the report, named in it")
	fl.IntVar(&c.trials, "trials", 100, "open: `trials` per server and client")
	fl.DurationVar(&c.limit, "limit", 2*time.Second, "open: how long one trial waits for the port to open")
	fl.IntVar(&c.seconds, "seconds", 10, "flood: `seconds` of junk")
	fl.IntVar(&c.valid, "valid", 100, "flood: valid SPA packets sent during the flood, to each SPA server")
	fl.IntVar(&c.maxPackets, "max-packets", 50_000_000, "flood: junk packets at most, whatever the time")
	fl.IntVar(&c.digests, "digests", 1_000_000, "replay: `digests` in the cache file loaded")
	if err := fl.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, errors.New("bad flags")
	}
	switch {
	case fl.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q", fl.Arg(0))
	case (c.md == "") != (c.section == ""):
		return nil, errors.New("-md and -section go together")
	case c.mode != "about" && c.mode != "replay" && (c.nsPortkit == "" || c.nsFwknopd == "" || c.nsKnockd == ""):
		return nil, errors.New("-ns-portkit, -ns-fwknopd and -ns-knockd are needed")
	case c.trials < 1 || c.seconds < 1 || c.valid < 1 || c.maxPackets < 1 || c.digests < 1:
		return nil, errors.New("-trials, -seconds, -valid, -max-packets and -digests must be at least 1")
	case c.valid > 250:
		return nil, errors.New("-valid is at most 250 (one address of 198.19.0.0/24 each)")
	case c.limit <= 0:
		return nil, errors.New("-limit must be positive")
	}
	return c, nil
}
