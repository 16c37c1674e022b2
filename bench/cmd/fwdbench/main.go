// Command fwdbench measures `portkit forward` against socat and rinetd, and
// against no forwarder at all, side by side in one run. It is run by
// bench/forward.sh inside a network namespace of its own, where every server
// and forwarder it starts listens on 127.0.0.1 and nothing else is running.
//
//	fwdbench tcp   [-seconds 10] [-rounds 3]                    iperf3 throughput, 1 and 8 streams, and CPU per GB
//	fwdbench churn [-conns 20000] [-concurrency 50] [-rounds 3] short HTTP/1.0 connections: conns/s, latency
//	fwdbench idle  [-conns 10000]                               idle connections held through portkit: RSS, fds, goroutines
//	fwdbench udp   [-datagrams 200000] [-window 64] [-rounds 3] UDP echo through the forwarders: replies/s, loss
//
// Common flags: -portkit PATH (bin/portkit), -target PATH (bin/fwdtarget, the
// servers), -md FILE -section NAME (write the report into that section of a
// markdown file), -command TEXT (the command line named in the report).
//
// Every load loop is bounded in count and in time, and every process started
// here runs in a process group of its own that is killed on the way out.
// When bin/portkit has no forward command yet, its rows are left out, the
// report says so and the exit code is 1.
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
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/portkit/portkit/bench/harness"
	"github.com/portkit/portkit/bench/internal/benchmd"
)

const usage = `usage: fwdbench tcp|churn|idle|udp|about [-portkit PATH] [-target PATH] [-md FILE -section NAME] [-command TEXT] [mode flags]`

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
	mode    string
	portkit string
	target  string
	floor   string // tcp, churn: the splicefloor binary; "" leaves its row out
	md      string
	section string
	command string
	tmp     string
	stdout  io.Writer
	stderr  io.Writer

	// portkitOK tells whether the portkit binary has a forward command;
	// portkitWhy says why not.
	portkitOK  bool
	portkitWhy string

	seconds     int           // tcp: iperf3 run length
	rounds      int           // tcp, churn, udp
	conns       int           // churn, idle
	concurrency int           // churn, idle (dialling)
	slices      int           // churn: a round's connections per path in this many turns
	limit       time.Duration // churn, idle, udp: time bound of one run
	datagrams   int           // udp
	window      int           // udp
	sizes       string        // udp
	settle      time.Duration // idle: how long fds and goroutines may take to return
}

type mode func(context.Context, *config) (*benchmd.Section, error)

var modes = map[string]mode{"tcp": tcpMode, "churn": churnMode, "idle": idleMode, "udp": udpMode, "about": aboutMode}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, err := parseArgs(args, stdout, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "fwdbench: %v\n%s\n", err, usage)
		return 2
	}
	c.tmp, err = os.MkdirTemp("", "fwdbench-")
	if err != nil {
		fmt.Fprintf(stderr, "fwdbench: %v\n", err)
		return 1
	}
	defer os.RemoveAll(c.tmp)
	if c.mode != "about" {
		c.portkitOK, c.portkitWhy = hasForward(ctx, c.portkit)
		if !c.portkitOK {
			fmt.Fprintf(stderr, "fwdbench: portkit rows left out: %s\n", c.portkitWhy)
		}
	}

	s, err := modes[c.mode](ctx, c)
	var body string
	if err == nil {
		body = s.Markdown(c.command)
	}
	return harness.Finish(ctx, stdout, stderr, "fwdbench", c.md, c.section, c.command, body, err == nil && s.Pass, err)
}

func parseArgs(args []string, stdout, stderr io.Writer) (*config, error) {
	if len(args) == 0 || modes[args[0]] == nil {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fmt.Fprintln(stdout, usage)
			return nil, flag.ErrHelp
		}
		return nil, errors.New("the first argument names the mode: tcp, churn, idle, udp or about")
	}
	c := &config{mode: args[0], stdout: stdout, stderr: stderr}
	fl := flag.NewFlagSet("fwdbench "+c.mode, flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fl.PrintDefaults()
	}
	fl.StringVar(&c.portkit, "portkit", "bin/portkit", "portkit binary `PATH`")
	fl.StringVar(&c.target, "target", "bin/fwdtarget", "fwdtarget binary `PATH` (the servers)")
	fl.StringVar(&c.floor, "splicefloor", "", "splicefloor binary `PATH`: the floor of a splice forwarder, timed beside the others (tcp, churn)")
	fl.StringVar(&c.md, "md", "", "markdown `FILE` whose section receives the report")
	fl.StringVar(&c.section, "section", "", "`NAME` of the section in -md FILE")
	fl.StringVar(&c.command, "command", "", "the command line that produced the report, named in it")
	fl.IntVar(&c.seconds, "seconds", 10, "tcp: `seconds` of each iperf3 run")
	fl.IntVar(&c.rounds, "rounds", 3, "tcp, churn, udp: measured `rounds`, each running every path once in rotated order")
	defConns := 20000
	if c.mode == "idle" {
		defConns = 10000
	}
	fl.IntVar(&c.conns, "conns", defConns, "churn: short connections per run; idle: connections held open")
	fl.IntVar(&c.concurrency, "concurrency", 50, "churn: connections in flight at once")
	fl.IntVar(&c.slices, "slices", 10, "churn: `turns` in which the paths take a round's connections")
	fl.DurationVar(&c.limit, "limit", 60*time.Second, "churn, idle, udp: time bound of one run's load")
	fl.IntVar(&c.datagrams, "datagrams", 200000, "udp: datagrams sent per run")
	fl.IntVar(&c.window, "window", 64, "udp: datagrams outstanding at most")
	fl.StringVar(&c.sizes, "sizes", "64,1200", "udp: datagram payload `sizes` in bytes, comma-separated")
	fl.DurationVar(&c.settle, "settle", 30*time.Second, "idle: time allowed for fds and goroutines to return to baseline")
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
	case c.seconds < 1 || c.rounds < 1 || c.conns < 1 || c.concurrency < 1 || c.slices < 1 || c.datagrams < 1 || c.window < 1:
		return nil, errors.New("-seconds, -rounds, -conns, -concurrency, -slices, -datagrams and -window must be at least 1")
	case c.limit <= 0 || c.settle <= 0:
		return nil, errors.New("-limit and -settle must be positive")
	}
	if _, err := parseSizes(c.sizes); err != nil {
		return nil, err
	}
	return c, nil
}

// hasForward tells whether the portkit binary has the forward command,
// and if not, why, in a few words.
func hasForward(ctx context.Context, portkit string) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, portkit, "forward", "--help").CombinedOutput()
	if err != nil {
		first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return false, fmt.Sprintf("`%s forward --help` failed (%v): %s", portkit, err, first)
	}
	return true, ""
}
