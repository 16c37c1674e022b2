// Command scanfixture is the target of the scanner benchmarks
// (bench/scan.sh): it draws from a seed which TCP ports to open (see
// bench/internal/scanplan), listens on them, accepting and closing every
// connection, and once all are listening writes the plan, the benchmark's
// ground truth, to a file.
//
//	scanfixture -seed N -host 198.18.0.2 [-sweep 198.18.4.0/22 -sweep-top 100] [-beacon 198.18.0.1:9] -ready FILE [-max-lifetime 30m]
//
// The host listens on 25 to 30 ports from all of 1–65535 (-min-ports,
// -max-ports); each address of the sweep, with an even chance, on one to
// three of portkit's top -sweep-top ports. Every listener is bound to its own
// address, so nothing else is open. The addresses must be local already:
// run it in the benchmark's target namespace, which has them.
//
// With -beacon ADDR:PORT it also sends a one-byte UDP datagram there every
// -beacon-every (100 ms), so that the scanner's link is never quite silent,
// as no real network is: masscan's receive thread (libpcap) only notices
// that its final wait is over when a packet arrives, and on a silent link it
// went on for up to several minutes after its scan was done.
//
// It holds the listeners until SIGTERM or SIGINT, or until -max-lifetime has
// passed, then removes FILE and exits.
//
// Exit codes: 0 stopped by a signal or by -max-lifetime, 1 failure, 2 bad
// usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/portkit/portkit/bench/internal/scanplan"
)

const usage = `usage: scanfixture -seed N -host ADDR [-min-ports N -max-ports N] [-sweep PREFIX -sweep-top N] [-beacon ADDR:PORT] -ready FILE [-max-lifetime D]`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type config struct {
	plan        scanplan.Options
	ready       string
	maxLifetime time.Duration
	beacon      netip.AddrPort // invalid for none
	beaconEvery time.Duration
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseArgs(args, stderr)
	var plan *scanplan.Plan
	if err == nil {
		plan, err = scanplan.New(cfg.plan)
	}
	if err != nil {
		return usageError(err, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.maxLifetime)
	defer cancel()
	if cfg.beacon.IsValid() {
		go beacon(ctx, cfg.beacon, cfg.beaconEvery, stderr)
	}
	if err := serve(ctx, plan, cfg.ready, stdout); err != nil {
		fmt.Fprintf(stderr, "scanfixture: %v\n", err)
		return 1
	}
	return 0
}

// usageError reports a bad command line and returns the exit code: 0 for
// -h, which the flag package has answered already.
func usageError(err error, stderr io.Writer) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "scanfixture: %v\n%s\n", err, usage)
	return 2
}

func parseArgs(args []string, stderr io.Writer) (config, error) {
	var (
		cfg                 config
		host, sweep, beacon string
	)
	fl := flag.NewFlagSet("scanfixture", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fl.PrintDefaults()
	}
	fl.Uint64Var(&cfg.plan.Seed, "seed", 0, "`N` seeds the choice of ports")
	fl.StringVar(&host, "host", "", "the `ADDR` of the full-range scans")
	fl.IntVar(&cfg.plan.MinPorts, "min-ports", 25, "the host listens on at least `N` ports")
	fl.IntVar(&cfg.plan.MaxPorts, "max-ports", 30, "and on at most `N`")
	fl.StringVar(&sweep, "sweep", "", "`PREFIX` of the sweep's addresses (none if empty)")
	fl.IntVar(&cfg.plan.SweepTop, "sweep-top", 100, "the sweep's ports: portkit's top `N`")
	fl.StringVar(&cfg.ready, "ready", "", "`FILE` receiving the plan (JSON) once every listener is up")
	fl.DurationVar(&cfg.maxLifetime, "max-lifetime", 30*time.Minute, "stop by itself after this `duration`")
	fl.StringVar(&beacon, "beacon", "", "send a UDP datagram to `ADDR:PORT` every -beacon-every (none if empty)")
	fl.DurationVar(&cfg.beaconEvery, "beacon-every", 100*time.Millisecond, "the beacon's `interval`")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, errors.New("bad flags")
	}
	var err error
	switch {
	case fl.NArg() > 0:
		return cfg, fmt.Errorf("unexpected argument %q", fl.Arg(0))
	case cfg.ready == "":
		return cfg, errors.New("-ready FILE is required")
	case cfg.maxLifetime <= 0 || cfg.beaconEvery < time.Millisecond:
		return cfg, errors.New("-max-lifetime must be positive and -beacon-every at least 1ms")
	}
	if cfg.plan.Host, err = netip.ParseAddr(host); err != nil {
		return cfg, fmt.Errorf("-host: %v", err)
	}
	if beacon != "" {
		if cfg.beacon, err = netip.ParseAddrPort(beacon); err != nil {
			return cfg, fmt.Errorf("-beacon: %v", err)
		}
	}
	if sweep != "" {
		if cfg.plan.Sweep, err = netip.ParsePrefix(sweep); err != nil {
			return cfg, fmt.Errorf("-sweep: %v", err)
		}
	}
	return cfg, nil
}

// serve listens on every port of the plan, publishes the plan to ready and
// accepts until ctx ends.
func serve(ctx context.Context, plan *scanplan.Plan, ready string, stdout io.Writer) error {
	// A file left by a run killed outright must not announce this one.
	if err := os.Remove(ready); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	addrs := plan.Listeners()
	listeners := make([]*net.TCPListener, 0, len(addrs))
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for _, ap := range addrs {
		l, err := net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(ap))
		if err != nil {
			return fmt.Errorf("%w (is this the target namespace, with the sweep's addresses local?)", err)
		}
		listeners = append(listeners, l)
		go acceptAll(l)
	}
	if err := plan.Write(ready); err != nil {
		return err
	}
	defer os.Remove(ready)
	fmt.Fprint(stdout, describe(plan))
	<-ctx.Done()
	return nil
}

// beacon sends a byte to dst every interval until ctx ends. Errors (such
// as the ICMP port unreachable it draws, reported on a later send) are
// ignored after the first, which is logged.
func beacon(ctx context.Context, dst netip.AddrPort, every time.Duration, stderr io.Writer) {
	conn, err := net.ListenUDP("udp", nil)
	if err != nil {
		fmt.Fprintf(stderr, "scanfixture: beacon: %v\n", err)
		return
	}
	defer conn.Close()
	tick := time.NewTicker(every)
	defer tick.Stop()
	logged := false
	for {
		if _, err := conn.WriteToUDPAddrPort([]byte{0}, dst); err != nil && !logged {
			fmt.Fprintf(stderr, "scanfixture: beacon: %v (not said again)\n", err)
			logged = true
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// describe says what the fixture listens on, for the benchmark's log.
func describe(p *scanplan.Plan) string {
	ports := make([]string, len(p.Ports))
	for i, port := range p.Ports {
		ports[i] = strconv.Itoa(int(port))
	}
	s := fmt.Sprintf("scanfixture: seed %d: %v listens on %d TCP ports: %s\n", p.Seed, p.Host, len(ports), strings.Join(ports, " "))
	if p.Sweep != nil {
		pairs := len(p.Listeners()) - len(p.Ports)
		s += fmt.Sprintf("scanfixture: sweep %v: %d addresses listen on %d (address, port) pairs among the top %d ports\n",
			p.Sweep.Prefix, len(p.Sweep.Open), pairs, len(p.Sweep.Ports))
	}
	return s
}

// acceptAll closes every connection made to l, so that connect scans never
// fill its queue, until l is closed.
func acceptAll(l *net.TCPListener) {
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: let the queue hold it for a moment.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		c.Close()
	}
}
