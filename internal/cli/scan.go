package cli

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/portkit/portkit/internal/output"
	"github.com/portkit/portkit/portspec"
	"github.com/portkit/portkit/registry"
	"github.com/portkit/portkit/scan"
	"github.com/portkit/portkit/scan/report"
)

// scanFlags are portkit scan's options.
type scanFlags struct {
	ports, portsFile, targetFile string
	top                          int
	exclude                      []string
	excludeFile                  string
	v4, v6                       bool
	syn, connect, udp, tcp       bool
	rate, minRate, maxRate       float64
	timing                       string
	retries                      int
	initialRTT, maxRTT           time.Duration
	hostTimeout                  time.Duration
	seed                         string
	shard                        string
	resume, resumeOut            string
	format, out                  string
	open                         bool
	noProgress                   bool
	verbose                      int
	save                         []string
	sourceAddrs                  []string
	nSources                     int      // the addresses --source-addrs named, once read
	unsupported                  []string // nmap options portkit lacks (nmapArgs)
	service                      serviceFlags
}

func newScan(e *env) *cobra.Command {
	var f scanFlags
	cmd := &cobra.Command{
		Use:   "scan TARGET...",
		Short: "Scan hosts for open TCP and UDP ports",
		Long: `Scan TARGETs for open ports. TARGET is an address, a CIDR block
(198.18.0.0/24, 2001:db8::/120), a range (198.18.0.1-20, 198.18.0-3.1) or a
host name (every address; -4/-6 to pick). Probes go in a seeded random order
across every target and port, paced by the timing template or --rate,
retransmitted with timeouts from measured round trips, so random loss costs
retries, not rate.

Engines: SYN (raw packets, the default with root or CAP_NET_RAW on Linux),
connect (every OS, no privileges), and UDP (--udp; payloads for common
services, ICMP port unreachable means closed, silence open|filtered).
A UDP port's silence is timed by its host's round trip and retried as its
loss says, once the host has answered anything (one extra probe to a port
outside the scan asks it); a host that answers nothing gets one retry.
Hosts limit the ICMP errors they send to each peer (Linux: one a second),
so a UDP scan of closed ports is paced to the limit; --source-addrs spreads
the probes over several addresses of this host, each with its own budget.
--udp with --syn or --connect (nmap's -sS -sU) scans TCP and UDP at once.
--syn without root or CAP_NET_RAW is refused (exit 2), naming the
capability; the default then falls back to connect.

Ports: -p 22,80,443 | 1-1024 | - (all) | T:80,U:53 | ssh,https; --top N
from portkit's own list (default: --top 1000; it ranks 1,224 TCP ports, and
a larger N scans those, saying so); --ports-file FILE.

Speed: -T0 to -T5 (or their names) pick a timing template; -T3 is the
default. Rates count probes a second, retransmissions included:
  -T0 paranoid    a probe every 5 minutes, one at a time
  -T1 sneaky      a probe every 15 seconds, one at a time
  -T2 polite      2.5 probes a second
  -T3 normal      starts at 1,000/s, grows to at most 10,000/s while
                  answers keep coming, backs off on loss
  -T4 aggressive  starts at 5,000/s, grows to at most 100,000/s; timeouts
                  0.5s at first, 1.25s at most
  -T5 insane      no rate bound (as fast as the engine goes); timeouts
                  0.25s, 0.3s at most; 2 retries
The others retransmit 6 times, with timeouts from 1s down to what the round
trips show, 10s at most. Flags given override the template: --rate N
starts at N and never exceeds it (lower only on congestion; --rate 0: no
bound), --max-rate N is the template's growth to at most N, --min-rate N
the least it falls to on loss; --retries, --initial-rtt, --max-rtt.

Output: a table of open ports on a terminal, JSON Lines when piped
(-o jsonl|json|xml|grep|csv|table); XML is nmap's format. JSON Lines begin
with a "scan" line (seed, shard, ports) and end with a "summary" line;
result lines have no "type". --open shows open ports only (the table's
default). --out FILE writes there instead.
--save FORMAT=FILE also writes the report to FILE, whole, at the end.
-v says the rates and timeouts, each open port as found, and the pace.

nmap's options work as nmap users expect: -sS (--syn), -sT (--connect),
-sU (--udp), -sV (--service), -oX FILE, -oG FILE, -oN FILE (--save xml|grep|table=FILE;
-oX - is XML on stdout), -oA BASE (BASE.xml, BASE.gnmap, BASE.nmap),
-iL FILE (-i), -F (--top 100), --top-ports N (--top), -T4, -p-, -v,
--min-rate, --max-rate, --max-retries, --initial-rtt-timeout,
--max-rtt-timeout, --excludefile. -Pn and -n are accepted and change
nothing: portkit sends no ping before scanning (every target is scanned;
a host is up when it answers a probe) and looks up no names of the
addresses it scans. Other nmap options (-sX, -O, -A, --script, …) are
refused: "portkit does not support -sX yet", exit 2.

Contradictions are refused, naming both flags: --syn with --connect,
--json with another -o, --rate with --max-rate, a --min-rate above the
bound, two reports to one file, -p with --top.

Large scans: --shard I/N with the same --seed on N machines (or N jobs of a
CI matrix or a Kubernetes Indexed Job) splits the scan into disjoint parts
whose union is the whole; portkit report merges their JSON Lines and checks
that every shard is there once. Ctrl-C writes a resume file; --resume FILE
continues exactly where it stopped, saving into FILE again, and marks FILE
done when the scan completes (resuming it again is refused). A resume file
names an --out or --save file only beside itself; confirm another by giving
it. An XML or JSON --out and --save files cannot be continued: the command
Ctrl-C prints names NAME.rest.EXT for the rest of each. XML lists at
most 25 ports of a closed or filtered state per host, the rest counted in
<extraports>.

Exit status: 0 when an open port was found, 1 when none was, 2 on bad
input (a bad or contradictory flag, a missing privilege, a resume file that
does not fit, or done), 74 when the output or the resume file could not be
written (results not written are kept in the resume file), 130 when
interrupted (the resume file written).`,
		Example: `  portkit scan 198.18.0.2
  portkit scan 198.18.0.0/24 --top 100 -T4
  portkit scan -sS -sU -p T:22,80,U:53 198.18.0.2
  portkit scan -U -p 1-1000 --source-addrs 198.18.0.16/28 198.18.0.2
  portkit scan -sT -Pn -n -T4 --top-ports 100 -oA scan 198.18.0.0/24
  portkit scan -iL targets.txt --max-rate 2000 -oX scan.xml -v
  portkit scan -p- 198.18.0.2 -o xml --out scan.xml
  portkit scan 198.18.0.0/16 --top 100 --seed 42 --shard 3/8 -o jsonl
  portkit scan --resume portkit-scan.resume`,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if len(f.unsupported) > 0 {
				return unsupportedError(f.unsupported)
			}
			return nil
		},
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return runScan(cmd.Context(), e, cmd, &f, args)
		}),
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.ports, "ports", "p", "", "ports to scan: `SPEC` such as 22,80,1-1024,T:80,U:53,ssh or - for all")
	fl.IntVar(&f.top, "top", 0, "scan the `N` most commonly open ports (default 1000 without -p)")
	fl.StringVar(&f.portsFile, "ports-file", "", "read ports from `FILE`")
	fl.StringVarP(&f.targetFile, "input-list", "i", "", "read targets from `FILE` (nmap's -iL)")
	fl.StringSliceVar(&f.exclude, "exclude", nil, "leave out these `TARGETS`")
	fl.StringVar(&f.excludeFile, "exclude-file", "", "leave out the targets in `FILE`")
	fl.BoolVarP(&f.v4, "ipv4", "4", false, "IPv4 addresses of host names only")
	fl.BoolVarP(&f.v6, "ipv6", "6", false, "IPv6 addresses of host names only")
	fl.BoolVar(&f.syn, "syn", false, "SYN scan (raw packets; root or CAP_NET_RAW)")
	fl.BoolVar(&f.connect, "connect", false, "connect scan (no privileges needed)")
	fl.BoolVarP(&f.udp, "udp", "U", false, "scan UDP ports (ports without T:/U: become UDP; add --tcp for both)")
	fl.BoolVar(&f.tcp, "tcp", false, "with --udp, scan TCP ports too")
	fl.StringVarP(&f.timing, "timing", "T", "", "timing template `0-5` or its name: paranoid, sneaky, polite, normal (the default), aggressive, insane")
	fl.Float64Var(&f.rate, "rate", 0, "`PPS` probes a second, retransmissions included: start there, never above, lower on congestion (0: no bound)")
	fl.Float64Var(&f.maxRate, "max-rate", 0, "at most `PPS` probes a second, grown to from the template's initial rate")
	fl.Float64Var(&f.minRate, "min-rate", 0, "at least `PPS` probes a second, even on loss")
	fl.IntVar(&f.retries, "retries", 0, "retransmissions of an unanswered probe (default: the template's, 6 at -T3; for UDP the most, fewer as the host's loss says)")
	durationVarP(fl, &f.initialRTT, "initial-rtt", "", 0, "timeout before the first answer (default: the template's, 1s at -T3)")
	durationVarP(fl, &f.maxRTT, "max-rtt", "", 0, "largest retransmission timeout (default: the template's, 10s at -T3)")
	durationVarP(fl, &f.hostTimeout, "host-timeout", "", 0, "give up a host this long after its first probe")
	fl.StringVar(&f.seed, "seed", "", "`N` keys the probe order (random when not given; shards must share one)")
	fl.StringVar(&f.shard, "shard", "", "scan part `I/N` of the whole (1 ≤ I ≤ N), with a shared --seed")
	fl.StringVar(&f.resume, "resume", "", "continue the interrupted scan saved in `FILE`")
	fl.StringVar(&f.resumeOut, "resume-file", "portkit-scan.resume", "where Ctrl-C saves the scan to resume it")
	fl.StringVarP(&f.format, "output", "o", "", "output `FORMAT`: "+strings.Join(report.Formats(), ", ")+" (default table on a terminal, jsonl piped)")
	fl.StringVar(&f.out, "out", "", "write results to `FILE` instead of stdout")
	fl.StringSliceVar(&f.sourceAddrs, "source-addrs", nil, "send UDP probes from these `ADDRS` of this host in turn (addresses, prefixes such as 198.18.0.16/28, or auto: every address of the interface the targets are reached by): each gets its own ICMP error budget")
	fl.StringArrayVar(&f.save, "save", nil, "also write the results as `FORMAT=FILE` (repeatable; nmap's -oX, -oG, -oN, -oA)")
	fl.BoolVar(&f.open, "open", false, "show open ports only (the table's default)")
	fl.BoolVar(&f.noProgress, "no-progress", false, "no progress line on stderr")
	fl.CountVarP(&f.verbose, "verbose", "v", "say more on stderr: the rates and timeouts used, each open port as found, the pace reached")
	fl.StringArrayVar(&f.unsupported, unsupportedFlag, nil, "")
	fl.MarkHidden(unsupportedFlag)
	f.service.add(fl)
	return cmd
}

func runScan(ctx context.Context, e *env, cmd *cobra.Command, f *scanFlags, args []string) error {
	files, args, err := loadResume(cmd, f, args)
	if err != nil {
		return err
	}
	if len(args) == 0 && f.targetFile == "" {
		return usagef("scan: give a TARGET, -i FILE or --resume FILE")
	}
	if err := checkScanFlags(cmd.Flags(), f); err != nil {
		return &exitError{code: ExitUsage, err: err}
	}
	if err := f.service.check(cmd.Flags()); err != nil {
		return &exitError{code: ExitUsage, err: err}
	}

	targets, err := scanTargets(ctx, e, f, args)
	if err != nil {
		return err
	}
	reg, _ := registry.Open(registry.Options{Services: registry.ServicesFile})
	ports, err := scanPorts(f, reg)
	if err != nil {
		return err
	}
	for _, w := range topShort(f, ports) {
		e.warnf("%s", w)
	}
	s := &scan.Scanner{Targets: targets, Ports: portSet{ports}, HostTimeout: f.hostTimeout}
	if files.resumed != nil {
		s.Resume = files.resumed.Cursor
	}
	timing := scanTiming(cmd.Flags(), f, s)
	if s.Seed, err = scanSeed(f.seed, f.shard); err != nil {
		return err
	}
	if f.shard != "" {
		if s.Shard, s.Shards, err = parseShard(f.shard); err != nil {
			return err
		}
	}
	tcpType, err := chooseEngines(e, f, s, ports)
	if err != nil {
		return err
	}

	format := f.format
	switch {
	case format != "":
	case e.json:
		format = "json"
	case f.out == "" && e.printer().TTY():
		format = "table"
	default:
		format = "jsonl"
	}
	out, continued, err := files.open(e, f, format, targets, ports)
	if err != nil {
		return err
	}
	defer files.closeOut()
	if files.replayOnly { // the scan had completed; its output is now whole
		return files.finish(e, cmd, nil, targets, ports, scan.Stats{}, nil, nil)
	}
	w, err := report.New(format, out, report.Options{All: !f.open && format != "table", Registry: reg, Getenv: e.Getenv, Service: f.service.on})
	if err != nil {
		return usagef("-o: %w", err)
	}
	saved, err := openSaved(f.save, files.resumed != nil, report.Options{All: !f.open, Registry: reg, Getenv: e.Getenv})
	if err != nil {
		return err
	}
	defer saved.discard()
	if len(saved) > 0 {
		w = teeReport(append([]report.Writer{w}, saved.writers()...))
	}
	if w, err = f.service.wrap(ctx, w, s.Rate); err != nil {
		return err
	}
	start := time.Now()
	info := report.ScanInfo{Start: start, Args: append([]string{"portkit", "scan"}, os.Args[min(2, len(os.Args)):]...),
		Version: buildVersion().Version, Targets: int(targets.Len()), Continued: continued}
	var engines []string
	for _, proto := range []registry.Proto{registry.TCP, registry.UDP} {
		if n := len(ports.Ports(proto)); n > 0 {
			typ, p := tcpType, scan.TCP
			if proto == registry.UDP {
				typ, p = "udp", scan.UDP
			}
			info.Protocols = append(info.Protocols, report.Protocol{Proto: p, Type: typ, Ports: ports.ProtoString(proto), NumPorts: n})
			engines = append(engines, typ)
		}
	}
	seed, shard, shards := s.Seed, s.Shard, s.Shards
	if s.Resume != nil { // the order and part resumed are the saved ones
		seed, shard, shards = s.Resume.Seed, s.Resume.Shard, s.Resume.Shards
	}
	info.Seed, info.Shard, info.Shards, info.Resumed = seed, shard+1, max(shards, 1), s.Resume != nil
	if err := w.Begin(info); err != nil {
		return err
	}
	engine := strings.Join(engines, " and ") + " engine"
	if len(engines) > 1 {
		engine += "s"
	}
	e.warnf("scanning %d address(es) × %d port(s) with the %s, seed %d", targets.Len(), ports.Len(), engine, seed)
	if f.verbose > 0 {
		e.warnf("%s", timing)
	}

	prog := newProgress(e, f.noProgress)
	// Progress comes about four times a second on the Sink's goroutine:
	// the time to let buffered results out, even while the scan is idle.
	s.Progress = func(st scan.Stats) {
		prog.update(st)
		w.Flush()
	}
	// A host is up once it answered at all, open or closed; the set grows
	// with the hosts that answer, not with the scan.
	up := map[netip.Addr]struct{}{}
	sink := scan.SinkFunc(func(r scan.Result) error {
		if r.State == scan.Open || r.State == scan.Closed {
			up[r.IP] = struct{}{}
		}
		if f.verbose > 0 && r.State == scan.Open {
			e.warnf("open %d/%v on %v", r.Port, r.Proto, r.IP)
		}
		return w.Result(r)
	})
	// The scan's goroutines (the Scanner; the raw engines' senders and
	// receiver, or the connect engine's workers, one per P) spend most of
	// their time in system calls, in short ones for the connect workers. A P
	// per CPU leaves the Scanner waiting for a P that a worker holds through
	// its syscalls, and the workers waiting for probes: two more Ps than
	// CPUs made both full-range scans of the benchmark 5–10% faster. The
	// kernel still shares the CPUs; GOMAXPROCS, if set, is left alone.
	if e.Getenv("GOMAXPROCS") == "" {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + 2))
	}
	stats, runErr := s.Run(ctx, sink)
	prog.clear()

	summary := report.Summary{End: time.Now(), Elapsed: time.Since(start), HostsTotal: int(targets.Len()),
		HostsUp: len(up), HostsDown: int(targets.Len()) - len(up),
		Open: int(stats.Open), Closed: int(stats.Closed), Filtered: int(stats.Filtered), OpenFiltered: int(stats.OpenFiltered),
		Exit: report.Success}
	switch {
	case stats.Cursor != nil:
		summary.Exit = report.Interrupted
	case runErr != nil:
		summary.Exit, summary.Error = report.Failed, runErr.Error()
	}
	endErr := w.End(summary)
	for _, l := range stats.ICMPLimits {
		e.warnf("%v", l)
	}
	switch {
	case stats.HostPaceLimited && f.nSources > 0:
		e.warnf("targets' ICMP rate limits, not the network, held the UDP scan back (each limit is per peer; the probes went from %d source addresses)", f.nSources)
	case stats.HostPaceLimited:
		e.warnf("targets' ICMP rate limits, not the network, held the UDP scan back; each limit is per peer: --source-addrs spreads the probes over more addresses of this host")
	}
	if stats.InFlightLimited {
		e.warnf("the open-file limit (%s), not the network, held the scan back; raise it (ulimit -n) to scan faster", stats.InFlightLimitBy)
	}
	e.warnf("%d probes in %v (%.0f/s, %d retransmitted): %d open, %d closed, %d filtered, %d open|filtered",
		stats.Done, stats.Elapsed.Round(time.Millisecond), stats.Rate, stats.Retransmitted,
		stats.Open, stats.Closed, stats.Filtered, stats.OpenFiltered)
	if n := stats.SilentAnswering + stats.SilentMute; n > 0 {
		e.warnf("%d UDP port(s) stayed silent, no reply and no ICMP error, so open|filtered (a service that ignored the probe, or a firewall): "+
			"%d on hosts that answered other probes, asked as long and as often as their round trip and loss said; %d on hosts that answered nothing, asked twice",
			n, stats.SilentAnswering, stats.SilentMute)
	}
	if f.verbose > 0 && stats.Pace > 0 {
		e.warnf("paced at %.0f probes/s at the end", stats.Pace)
	}
	if err := files.finish(e, cmd, w, targets, ports, stats, runErr, endErr); err != nil {
		return err
	}
	if endErr != nil {
		return endErr
	}
	// The --save files are whole once the report has ended, interrupted
	// or not; only then do they replace what their names held.
	if err := saved.commit(); err != nil {
		return &exitError{code: ExitIO, err: err}
	}
	if stats.Cursor != nil && errors.Is(runErr, context.Canceled) {
		return &exitError{code: ExitInterrupted} // said above, with how to resume
	}
	if runErr != nil {
		return runErr
	}
	if stats.Open == 0 {
		return &exitError{code: ExitNegative}
	}
	return nil
}

func scanTargets(ctx context.Context, e *env, f *scanFlags, args []string) (*portspec.Targets, error) {
	specs := args
	if f.targetFile != "" {
		more, err := readSpecFile("-i", f.targetFile)
		if err != nil {
			return nil, err
		}
		specs = append(specs, more...)
	}
	opts := portspec.TargetOptions{Exclude: f.exclude}
	if f.excludeFile != "" {
		more, err := readSpecFile("--exclude-file", f.excludeFile)
		if err != nil {
			return nil, err
		}
		opts.Exclude = append(opts.Exclude, more...)
	}
	switch {
	case f.v4 && f.v6:
	case f.v4:
		opts.Family = portspec.IPv4
	case f.v6:
		opts.Family = portspec.IPv6
	}
	// As nmap does: a name that does not resolve is said and skipped.
	opts.Unresolved = func(re *portspec.ResolveError) error {
		e.warnf("warning: %v; skipped", re)
		return nil
	}
	targets, err := portspec.ParseTargets(ctx, specs, opts)
	var pe *portspec.Error
	if errors.As(err, &pe) && pe.File == "" && slices.Contains(f.exclude, pe.Input) {
		return nil, flagValueError("--exclude", pe.Input, err)
	}
	if err != nil {
		return nil, err
	}
	if targets.Len() == 0 {
		return nil, usagef("scan: no address left to scan")
	}
	return targets, nil
}

// readSpecFile reads the targets in the file named by flag.
func readSpecFile(flag, name string) ([]string, error) {
	file, err := os.Open(name)
	if err != nil {
		return nil, usagef("%s %s: %w", flag, name, unwrapPath(err))
	}
	defer file.Close()
	specs, err := portspec.ReadTargetFile(file, name)
	if err != nil {
		return nil, usagef("%s: %w", flag, err)
	}
	return specs, nil
}

func scanPorts(f *scanFlags, reg *registry.Registry) (*portspec.PortList, error) {
	opts := portspec.PortOptions{Registry: reg}
	switch {
	case f.udp && (f.tcp || f.syn || f.connect):
		// A TCP engine named beside --udp (nmap's -sS -sU) asks for both.
		opts.Protos = []registry.Proto{registry.TCP, registry.UDP}
	case f.udp:
		opts.Protos = []registry.Proto{registry.UDP}
	}
	var given []string
	for _, g := range []struct {
		set  bool
		flag string
	}{{f.ports != "", "-p " + f.ports}, {f.top > 0, "--top " + strconv.Itoa(f.top)}, {f.portsFile != "", "--ports-file " + f.portsFile}} {
		if g.set {
			given = append(given, g.flag)
		}
	}
	if len(given) > 1 {
		return nil, usagef("%s: give one of -p, --top and --ports-file", strings.Join(given, " and "))
	}
	switch {
	case f.ports != "":
		l, err := portspec.ParsePorts(f.ports, opts)
		if err != nil {
			return nil, flagValueError("-p", f.ports, err)
		}
		return l, nil
	case f.portsFile != "":
		file, err := os.Open(f.portsFile)
		if err != nil {
			return nil, usagef("--ports-file %s: %w", f.portsFile, unwrapPath(err))
		}
		defer file.Close()
		l, err := portspec.ReadPortsFile(file, f.portsFile, opts)
		if err != nil {
			return nil, usagef("--ports-file: %w", err)
		}
		return l, nil
	}
	n := f.top
	if n == 0 {
		n = 1000
	}
	return portspec.TopPorts(n, opts)
}

// portSet adapts a port list to the scanner's interface.
type portSet struct{ l *portspec.PortList }

func (p portSet) Len() uint64 { return uint64(p.l.Len()) }
func (p portSet) At(i uint64) (uint16, scan.Proto) {
	port, proto := p.l.At(int(i))
	if proto == registry.UDP {
		return port, scan.UDP
	}
	return port, scan.TCP
}

func scanSeed(s, shard string) (uint64, error) {
	if s == "" {
		if shard != "" {
			return 0, usagef("--shard needs --seed: every shard must share one seed")
		}
		var b [8]byte
		rand.Read(b[:])
		return binary.LittleEndian.Uint64(b[:]), nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, usagef("--seed %q: want a number from 0 to 2^64-1", s)
	}
	return n, nil
}

// parseShard reads "I/N", 1 ≤ I ≤ N, as masscan takes it, into the
// scanner's 0-based shard.
func parseShard(s string) (shard, shards int, err error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 1 || i > n {
		return 0, 0, usagef("--shard %q: want I/N with 1 ≤ I ≤ N", s)
	}
	return i - 1, n, nil
}

// chooseEngines sets the scanner's engines: SYN when asked, or by default
// where raw sockets can be opened; connect otherwise. It returns the TCP
// scan's type for the report.
func chooseEngines(e *env, f *scanFlags, s *scan.Scanner, ports *portspec.PortList) (string, error) {
	sources, err := sourceAddrs(f.sourceAddrs, s.Targets)
	if err != nil {
		return "", err
	}
	f.nSources = len(sources)
	if len(sources) > 0 && len(ports.Ports(registry.UDP)) == 0 {
		return "", &exitError{code: ExitUsage, err: errors.New("--source-addrs spreads UDP probes: scan UDP ports too (-U, or U:PORT)")}
	}
	if len(ports.Ports(registry.UDP)) > 0 {
		udp, err := scan.NewUDP(scan.UDPOptions{Sources: sources, OnLimit: func(l scan.ICMPLimit) { e.warnf("%v", l) }})
		if err != nil {
			return "", err
		}
		s.UDPEngine = udp
	}
	typ := "connect"
	if len(ports.Ports(registry.TCP)) > 0 && !f.connect {
		syn, err := scan.NewSYN(scan.SYNOptions{})
		var pe *scan.PrivilegeError
		switch {
		case err == nil:
			s.Engine, typ = syn, "syn"
		case f.syn && errors.As(err, &pe):
			// A permission the user can grant, or a flag to change: the
			// command line is what is wrong here, as with any usage error.
			said := pe.Err
			var errno syscall.Errno
			if errors.As(said, &errno) {
				said = errno // the system's word, without the socket call's
			}
			return "", usagef("--syn: the SYN scan sends raw packets, which needs root or the capability CAP_NET_RAW (%v): run it as root, grant it with `setcap cap_net_raw+ep $(command -v portkit)`, or scan with --connect (-sT)", said)
		case f.syn:
			return "", err
		case errors.As(err, &pe) || errors.Is(err, errors.ErrUnsupported):
			// The default falls back to connect where raw sockets are not ours.
		default:
			return "", err
		}
	}
	return typ, nil
}

// progress draws one line on stderr, only on a terminal.
type progress struct {
	mu  sync.Mutex
	w   io.Writer
	on  bool
	len int
}

func newProgress(e *env, off bool) *progress {
	f, ok := e.Err.(*os.File)
	return &progress{w: e.Err, on: !off && ok && output.IsTerminal(f)}
}

func (p *progress) update(s scan.Stats) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	line := fmt.Sprintf("%d/%d probes · %.0f/s · %d open", s.Done, s.Probes, s.Rate, s.Open)
	if s.Done > 0 && s.Done < s.Probes && s.Elapsed > 0 {
		left := time.Duration(float64(s.Elapsed) * float64(s.Probes-s.Done) / float64(s.Done))
		line += " · ETA " + left.Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "\r%-*s", p.len, line)
	p.len = len(line)
}

func (p *progress) clear() {
	if p.on && p.len > 0 {
		fmt.Fprintf(p.w, "\r%*s\r", p.len, "")
	}
}

// checkScanFlags refuses values that would otherwise be read silently as
// a default (an empty -p, --top 0, a negative rate, retry count or time),
// and flags that contradict each other, naming both.
func checkScanFlags(fs *pflag.FlagSet, f *scanFlags) error {
	if _, err := parseTiming(f.timing); err != nil {
		return err
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"min-rate", f.minRate}, {"max-rate", f.maxRate}} {
		if fs.Changed(r.name) && (!(r.v > 0) || math.IsInf(r.v, 0)) {
			return fmt.Errorf("--%s %v: want probes a second, more than 0", r.name, r.v)
		}
	}
	outs := map[string]string{}
	if f.out != "" {
		outs[f.out] = "--out " + f.out
	}
	for _, v := range f.save {
		sp, err := parseSave(v)
		if err != nil {
			return err
		}
		if prev, ok := outs[sp.name]; ok {
			return fmt.Errorf("%s and --save %s: one file, two reports; give each its own", prev, v)
		}
		outs[sp.name] = "--save " + v
	}
	switch {
	case f.syn && f.connect:
		return errors.New("--syn (-sS) and --connect (-sT): a scan has one TCP engine; give one")
	case fs.Changed("json") && f.format != "" && f.format != "json":
		return fmt.Errorf("--json and -o %s: two formats for one output; give one", f.format)
	case fs.Changed("rate") && fs.Changed("max-rate"):
		return fmt.Errorf("--rate %v and --max-rate %v: both bound the rate; give one (--rate starts there, --max-rate grows to it)", f.rate, f.maxRate)
	case fs.Changed("min-rate") && fs.Changed("max-rate") && f.minRate > f.maxRate:
		return fmt.Errorf("--min-rate %v above --max-rate %v", f.minRate, f.maxRate)
	case fs.Changed("min-rate") && fs.Changed("rate") && f.rate > 0 && f.minRate > f.rate:
		return fmt.Errorf("--min-rate %v above --rate %v", f.minRate, f.rate)
	}
	switch {
	case fs.Changed("ports") && strings.TrimSpace(f.ports) == "":
		return errors.New("-p: empty port list")
	case fs.Changed("top") && f.top < 1:
		return fmt.Errorf("--top %d: want at least 1", f.top)
	case !(f.rate >= 0) || math.IsInf(f.rate, 0):
		return fmt.Errorf("--rate %v: want probes a second, 0 or more (0 is as fast as the engine goes)", f.rate)
	case f.retries < 0 || f.retries > scan.MaxRetries:
		return fmt.Errorf("--retries %d: want 0 to %d", f.retries, scan.MaxRetries)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"initial-rtt", f.initialRTT}, {"max-rtt", f.maxRTT}} {
		if fs.Changed(d.name) && d.v <= 0 {
			return fmt.Errorf("--%s %v: must be positive", d.name, d.v)
		}
	}
	return nil
}

// parseTiming reads -T: a level 0 to 5 or its name; "" is the default.
func parseTiming(v string) (scan.Timing, error) {
	if v == "" {
		return scan.TimingByLevel(scan.DefaultTiming)
	}
	var names []string
	for _, t := range scan.Timings() {
		if v == strconv.Itoa(t.Level) || strings.EqualFold(v, t.Name) {
			return t, nil
		}
		names = append(names, t.Name)
	}
	return scan.Timing{}, fmt.Errorf("-T %q: want 0 to 5 or a name: %s", v, strings.Join(names, ", "))
}

// scanTiming sets the scanner's rates, timeouts and retries from the timing
// template, then from the flags given, which override it, and describes
// the result for -v.
func scanTiming(fs *pflag.FlagSet, f *scanFlags, s *scan.Scanner) string {
	t, _ := parseTiming(f.timing) // checked by checkScanFlags
	t.Apply(s)
	switch {
	case fs.Changed("rate"):
		s.Rate, s.InitialRate = f.rate, 0
	case fs.Changed("max-rate"):
		s.Rate = f.maxRate
		if s.InitialRate >= s.Rate {
			s.InitialRate = 0
		}
	}
	if fs.Changed("min-rate") && s.Rate > 0 {
		// A floor above the template's bound raises the bound to it.
		s.Rate = max(s.Rate, f.minRate)
		s.MinRate = f.minRate
		if s.InitialRate > 0 {
			s.InitialRate = max(s.InitialRate, f.minRate)
		}
	}
	if fs.Changed("retries") {
		s.Retries = cmp.Or(f.retries, -1)
	}
	if fs.Changed("initial-rtt") {
		s.InitialRTT = f.initialRTT
	}
	if fs.Changed("max-rtt") {
		s.MaxRTT = f.maxRTT
		s.MinRTT = min(s.MinRTT, f.maxRTT)
	}

	rate := "no rate bound"
	switch {
	case s.Rate > 0 && s.InitialRate > 0:
		rate = fmt.Sprintf("from %g probes/s growing to at most %g", s.InitialRate, s.Rate)
	case s.Rate > 0:
		rate = fmt.Sprintf("at most %g probes/s", s.Rate)
	}
	if s.MinRate > 0 {
		rate += fmt.Sprintf(", at least %g", s.MinRate)
	}
	retries := max(s.Retries, 0)
	if s.Retries == 0 {
		retries = scan.DefaultRetries
	}
	return fmt.Sprintf("timing -T%d %s: %s, first timeout %v, at most %v, %d retries", t.Level, t.Name, rate,
		cmp.Or(s.InitialRTT, scan.DefaultInitialRTT), cmp.Or(s.MaxRTT, scan.DefaultMaxRTT), retries)
}

// topShort says when --top asks for more ports than the ranking has of a
// protocol: the scan takes the ranking whole.
func topShort(f *scanFlags, ports *portspec.PortList) []string {
	if f.top == 0 {
		return nil
	}
	var out []string
	for _, proto := range []registry.Proto{registry.TCP, registry.UDP} {
		n := len(ports.Ports(proto))
		if n == 0 || n >= f.top {
			continue
		}
		what := "ports"
		if len(ports.Ports(registry.TCP)) > 0 && len(ports.Ports(registry.UDP)) > 0 {
			what = proto.String() + " ports"
		}
		out = append(out, fmt.Sprintf("--top %d: the ranking has %d %s; scanning those", f.top, n, what))
	}
	return out
}
