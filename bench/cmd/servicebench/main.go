//go:build linux

// Command servicebench times `portkit scan --service` and `nmap -sV` side
// by side and scores every run against the truth (issue 14). It is run by
// bench/service.sh inside the scanner's network namespace.
//
//	servicebench fixture -target-ns NS -target 198.18.0.2 [-runs N] [-odd 47101] [-portkit bin/portkit] [-md FILE -section NAME -command LINE]
//	servicebench sweep -plan FILE [-runs N] [-nmap-timeout D] ...
//
// fixture starts the real servers of internal/servicefixture in the target
// namespace, each on its default port and on a port nothing suggests (-odd
// and up), and scans all those ports, TCP and UDP, with both tools. Every
// port is scored for each tool: the service named right, the product right
// (where the server reveals it), the version right (where it reveals it:
// the upstream part of the Debian package's version, from dpkg-query).
//
// sweep scans the plan's sweep (bench/cmd/scanfixture's listeners, which
// accept and close every connection) on portkit's top 100 ports, with and
// without --service, for the cost of identification per open port; nmap -sV
// once, capped at -nmap-timeout (0: skipped).
//
// The section is written whatever the targets say. Exit codes: 0 every
// target met, 1 a target missed, 2 bad usage or a fixture that did not
// start, 130 interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/portkit/portkit/bench/harness"
)

const usage = "usage: servicebench fixture|sweep [flags]"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	if ctx.Err() != nil {
		code = 130
	}
	stop()
	os.Exit(code)
}

type config struct {
	mode        string
	portkit     string
	nmap        string
	runs        int
	targetNS    string
	target      string
	odd         uint
	plan        string
	nmapTimeout time.Duration
	md          string
	section     string
	command     string
	tmp         string
	log         io.Writer
}

// errUsage is a fixture or flags the benchmark cannot work with.
var errUsage = errors.New("bad usage")

func run(ctx context.Context, args []string, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "fixture" && args[0] != "sweep") {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	cfg := config{mode: args[0], log: stderr}
	fs := flag.NewFlagSet("servicebench "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.portkit, "portkit", "bin/portkit", "the portkit binary")
	fs.StringVar(&cfg.nmap, "nmap", "nmap", "the nmap binary")
	fs.IntVar(&cfg.runs, "runs", 3, "measured runs of each tool")
	fs.StringVar(&cfg.targetNS, "target-ns", "", "fixture: the target's network namespace")
	fs.StringVar(&cfg.target, "target", "198.18.0.2", "fixture: the target's address")
	fs.UintVar(&cfg.odd, "odd", 47101, "fixture: the first of the non-standard ports")
	fs.StringVar(&cfg.plan, "plan", "", "sweep: the plan scanfixture wrote")
	fs.DurationVar(&cfg.nmapTimeout, "nmap-timeout", 5*time.Minute, "sweep: nmap -sV's one run is stopped after this (0: not run)")
	fs.StringVar(&cfg.md, "md", "", "markdown file whose section is replaced by the report")
	fs.StringVar(&cfg.section, "section", "", "the section's name")
	fs.StringVar(&cfg.command, "command", "", "the command line that produced the figures, for the report")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if cfg.runs < 1 || cfg.odd == 0 || cfg.odd > 65000 {
		fmt.Fprintln(stderr, "servicebench: -runs must be at least 1 and -odd a port below 65000")
		return 2
	}
	tmp, err := os.MkdirTemp("", "servicebench")
	if err != nil {
		fmt.Fprintln(stderr, "servicebench:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	cfg.tmp = tmp

	var body string
	var met bool
	if cfg.mode == "fixture" {
		body, met, err = fixture(ctx, &cfg)
	} else {
		body, met, err = sweep(ctx, &cfg)
	}
	code := harness.Finish(ctx, os.Stdout, stderr, "servicebench", cfg.md, cfg.section, cfg.command, body, met, err)
	if code == 1 && errors.Is(err, errUsage) {
		return 2
	}
	return code
}
