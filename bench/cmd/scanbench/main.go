// Command scanbench times `portkit scan` and its peers, nmap and masscan,
// side by side, and scores every run's output against the truth: which ports
// the fixture (bench/cmd/scanfixture) listens on. It is run by bench/scan.sh
// inside the scanner's network namespace, so no timed command pays for
// `ip netns exec`.
//
//	scanbench full  -plan FILE [-runs N -warmup N] [-adapter IF -adapter-ip IP -router-mac MAC] [-md FILE -section NAME]
//	scanbench loss  -plan FILE [-quick] [-slow-runs N -slow-timeout D] ...
//	scanbench sweep -plan FILE -rate PPS ...
//	scanbench shard -plan FILE -rate PPS -seed N [-shards 4] ...
//	scanbench rss   -plan FILE -rate PPS [-rss-prefix 198.19.0.0/16 -rss-top 100] ...
//	scanbench udp   -target-ns NS -udp-fixture BIN [-udp-host 198.18.0.2 -source-addrs 198.18.0.16/28] ...
//
// full and loss scan every port of the plan's host; portkit SYN against
// `nmap -sS` and masscan, portkit connect against `nmap -sT`. sweep scans the
// plan's sweep on portkit's top ports, every tool at one rate. shard checks
// that --shard I/N with one --seed splits the sweep into disjoint parts whose
// union is the unsharded scan. Every run's accuracy is reported next to its
// time: open ports found of those open, closed ports reported closed of those
// closed (masscan reports no closed ports). rss scans a whole prefix where
// nothing listens (a /16 × the top 100 ports: 6.5 million probes) through
// the CLI for portkit's peak resident set size. udp runs `portkit scan -U`
// and `nmap -sU` against bench/cmd/udpfixture, which it starts in the
// target namespace for each row (ICMP limits lifted or not, every UDP
// packet dropped or not, port 161 silent or closed), and compares every
// port's state with the truth; it needs no -plan.
//
// The section is written whatever the targets say. Exit codes: 0 every
// target met, 1 a target missed, 2 bad usage or a fixture that is not as
// the mode needs it, 130 interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/portkit/portkit/bench/harness"
	"github.com/portkit/portkit/bench/internal/scanplan"
)

const usage = `usage: scanbench full|loss|sweep|shard|rss -plan FILE [flags]
       scanbench udp -target-ns NS -udp-fixture BIN [flags]`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if ctx.Err() != nil {
		code = 130
	}
	stop()
	os.Exit(code)
}

var modes = map[string]func(context.Context, *config) (*report, error){
	"full": full, "loss": loss, "sweep": sweep, "shard": shard, "rss": rss, "udp": udp,
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, err := parseArgs(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "scanbench: %v\n%s\n", err, usage)
		return 2
	case c.targetNS != "":
		if err := checkLossRule(ctx, c.targetNS, c.mode == "loss"); err != nil {
			fmt.Fprintf(stderr, "scanbench: %v\n", err)
			return 2
		}
	}
	c.tmp, err = os.MkdirTemp("", "scanbench-")
	if err != nil {
		fmt.Fprintf(stderr, "scanbench: %v\n", err)
		return 1
	}
	defer os.RemoveAll(c.tmp)

	r, err := modes[c.mode](ctx, c)
	if err != nil {
		fmt.Fprintf(stderr, "scanbench: %v\n", err)
		if ctx.Err() == nil {
			if rerr := harness.RecordFailure(c.md, c.section, "scanbench "+c.mode, err); rerr != nil {
				fmt.Fprintf(stderr, "scanbench: %v\n", rerr)
			}
		}
		return 1
	}
	var md string
	switch c.mode {
	case "shard":
		md = r.shardMarkdown()
	case "rss":
		md = r.rssMarkdown()
	case "udp":
		md = r.udpMD
	default:
		md = r.markdown()
	}
	fmt.Fprint(stdout, "\n"+md)
	if c.md != "" {
		if err := harness.WriteSection(c.md, c.section, md); err != nil {
			fmt.Fprintf(stderr, "scanbench: %v\n", err)
			return 1
		}
	}
	if !r.pass {
		return 1
	}
	return 0
}

func parseArgs(args []string, stderr io.Writer) (*config, error) {
	if len(args) == 0 || modes[args[0]] == nil {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			fmt.Fprintln(stderr, usage)
			return nil, flag.ErrHelp
		}
		return nil, errors.New("the first argument must be a mode: full, loss, sweep, shard, rss or udp")
	}
	c := &config{mode: args[0], log: stderr}
	var planFile string
	quick := false
	fl := flag.NewFlagSet("scanbench "+c.mode, flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fl.PrintDefaults()
	}
	fl.StringVar(&planFile, "plan", "", "the fixture's plan `FILE` (scanfixture -ready)")
	fl.StringVar(&c.portkit, "portkit", "bin/portkit", "the portkit `binary`")
	fl.StringVar(&c.floor, "floor", "", "full: the synfloor `binary` (scan/internal/synfloor), timed beside the scanners as the fixture's floor")
	fl.IntVar(&c.runs, "runs", 5, "measured `rounds`; each runs every command once")
	fl.IntVar(&c.warmup, "warmup", 1, "unrecorded `rounds` run first")
	fl.DurationVar(&c.timeout, "timeout", 2*time.Minute, "limit of each run")
	fl.DurationVar(&c.slowTimeout, "slow-timeout", 10*time.Minute, "loss: limit of each run of nmap")
	fl.IntVar(&c.slowRuns, "slow-runs", 1, "loss: `runs` of nmap (minutes each)")
	fl.BoolVar(&c.slowTogether, "slow-together", false, "loss: run nmap -sS and -sT at the same time, not one after the other (faster; may slow -sT)")
	fl.BoolVar(&quick, "quick", false, "loss: portkit only, no peers")
	fl.StringVar(&c.adapter, "adapter", "", "masscan's --adapter: the scanner's `interface` (masscan is left out without it)")
	fl.StringVar(&c.adapterIP, "adapter-ip", "198.18.0.1", "masscan's --adapter-ip")
	fl.StringVar(&c.routerMAC, "router-mac", "", "masscan's --router-mac: the target's `MAC`")
	fl.IntVar(&c.rate, "rate", 20000, "sweep, shard, rss: probes a second, the same for every tool")
	c.rssPrefix = netip.MustParsePrefix("198.19.0.0/16")
	fl.TextVar(&c.rssPrefix, "rss-prefix", c.rssPrefix, "rss: the `PREFIX` to scan, routed to the target, where nothing listens")
	fl.IntVar(&c.rssTop, "rss-top", 100, "rss: scan portkit's top `N` ports")
	fl.Uint64Var(&c.seed, "seed", 1, "shard: portkit's --seed")
	fl.IntVar(&c.shards, "shards", 4, "shard: how many shards")
	fl.StringVar(&c.targetNS, "target-ns", "", "the target's network `namespace`: check that the loss rule is loaded for loss only")
	fl.StringVar(&c.udpFixture, "udp-fixture", "", "udp: the udpfixture `binary` (bench/cmd/udpfixture), run in -target-ns")
	fl.StringVar(&c.udpHost, "udp-host", "198.18.0.2", "udp: the target's `address`")
	fl.StringVar(&c.udpSources, "source-addrs", "198.18.0.16/28", "udp: portkit's --source-addrs in the spreading row: `ADDRS` of the scanner's interface")
	fl.StringVar(&c.command, "command", "scanbench", "the command that produced the section, for its notes")
	fl.StringVar(&c.md, "md", "", "markdown `FILE` whose section receives the report")
	fl.StringVar(&c.section, "section", "", "`NAME` of the section in -md FILE")
	if err := fl.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, errors.New("bad flags")
	}
	c.peers = !quick
	switch {
	case fl.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q", fl.Arg(0))
	case c.mode == "udp":
		if c.targetNS == "" || c.udpFixture == "" {
			return nil, errors.New("udp needs -target-ns and -udp-fixture")
		}
		return c, nil
	case planFile == "":
		return nil, errors.New("-plan FILE is required")
	case c.runs < 1 || c.warmup < 0 || c.slowRuns < 1:
		return nil, errors.New("-runs and -slow-runs must be at least 1, -warmup at least 0")
	case c.timeout <= 0 || c.slowTimeout <= 0:
		return nil, errors.New("timeouts must be positive")
	case c.rate < 1 || c.shards < 2:
		return nil, errors.New("-rate must be at least 1 and -shards at least 2")
	case c.rssTop < 1 || !c.rssPrefix.IsValid() || c.rssPrefix.Addr().BitLen()-c.rssPrefix.Bits() > 24:
		return nil, errors.New("-rss-top must be at least 1 and -rss-prefix a prefix of at most 2^24 addresses")
	case (c.md == "") != (c.section == ""):
		return nil, errors.New("-md and -section go together")
	case c.adapter != "" && c.routerMAC == "":
		return nil, errors.New("-adapter needs -router-mac")
	}
	plan, err := scanplan.Read(planFile)
	if err != nil {
		return nil, err
	}
	if (c.mode == "sweep" || c.mode == "shard") && plan.Sweep == nil {
		return nil, fmt.Errorf("%s: the plan has no sweep (scanfixture -sweep)", planFile)
	}
	c.plan = plan
	return c, nil
}
