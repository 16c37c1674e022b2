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
	"strconv"
	"strings"
	"sync"
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
	rate                         float64
	retries                      int
	initialRTT, maxRTT           time.Duration
	hostTimeout                  time.Duration
	seed                         string
	shard                        string
	resume, resumeOut            string
	format, out                  string
	open                         bool
	noProgress                   bool
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
across every target and port, as fast as --rate allows, retransmitted with
timeouts from measured round trips, so random loss costs retries, not rate.

Engines: SYN (raw packets, the default with root or CAP_NET_RAW on Linux),
connect (every OS, no privileges), and UDP (--udp; payloads for common
services, ICMP port unreachable means closed, silence open|filtered).

Ports: -p 22,80,443 | 1-1024 | - (all) | T:80,U:53 | ssh,https; --top N
from portkit's own list (default: --top 1000); --ports-file FILE.

Output: a table of open ports on a terminal, JSON Lines when piped
(-o jsonl|json|xml|grep|csv|table); XML is nmap's format. --open shows open
ports only (the table's default). --out FILE writes there instead.

Large scans: --shard I/N with the same --seed on N machines (or N jobs of a
CI matrix or a Kubernetes Indexed Job) splits the scan into disjoint parts
whose union is the whole. Ctrl-C writes a resume file; --resume FILE
continues exactly where it stopped, saving into FILE again, and marks FILE
done when the scan completes (resuming it again is refused). A resume file
names an --out only beside itself; confirm another with --out. XML lists at
most 25 ports of a closed or filtered state per host, the rest counted in
<extraports>.

Exit status: 0 when an open port was found, 1 when none was, 2 on bad
input (a resume file that does not fit, or done), 74 when the output or the
resume file could not be written (results not written are kept in the resume
file), 130 when interrupted (the resume file written).`,
		Example: `  portkit scan 198.18.0.2
  portkit scan 198.18.0.0/24 --top 100 --rate 5000
  portkit scan -p- 198.18.0.2 -o xml --out scan.xml
  portkit scan -p T:22,80,U:53,161 --udp 198.18.0.2
  portkit scan 198.18.0.0/16 --top 100 --seed 42 --shard 3/8 -o jsonl
  portkit scan --resume portkit-scan.resume`,
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
	fl.Float64Var(&f.rate, "rate", 0, "at most `PPS` probes a second, retransmissions included (0: as fast as the engine goes)")
	fl.IntVar(&f.retries, "retries", scan.DefaultRetries, "retransmissions of an unanswered probe")
	fl.DurationVar(&f.initialRTT, "initial-rtt", 0, "timeout before the first answer (default 1s)")
	fl.DurationVar(&f.maxRTT, "max-rtt", 0, "largest retransmission timeout (default 10s)")
	fl.DurationVar(&f.hostTimeout, "host-timeout", 0, "give up a host this long after its first probe")
	fl.StringVar(&f.seed, "seed", "", "`N` keys the probe order (random when not given; shards must share one)")
	fl.StringVar(&f.shard, "shard", "", "scan part `I/N` of the whole (1 ≤ I ≤ N), with a shared --seed")
	fl.StringVar(&f.resume, "resume", "", "continue the interrupted scan saved in `FILE`")
	fl.StringVar(&f.resumeOut, "resume-file", "portkit-scan.resume", "where Ctrl-C saves the scan to resume it")
	fl.StringVarP(&f.format, "output", "o", "", "output `FORMAT`: "+strings.Join(report.Formats(), ", ")+" (default table on a terminal, jsonl piped)")
	fl.StringVar(&f.out, "out", "", "write results to `FILE` instead of stdout")
	fl.BoolVar(&f.open, "open", false, "show open ports only (the table's default)")
	fl.BoolVar(&f.noProgress, "no-progress", false, "no progress line on stderr")
	f.service.add(fl)
	return cmd
}

func runScan(ctx context.Context, e *env, cmd *cobra.Command, f *scanFlags, args []string) error {
	files, args, err := loadResume(cmd, f, args)
	if err != nil {
		return err
	}
	if len(args) == 0 && f.targetFile == "" {
		return &exitError{code: ExitUsage, err: errors.New("scan: give a TARGET, -i FILE or --resume FILE")}
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
	s := &scan.Scanner{
		Targets: targets, Ports: portSet{ports},
		Rate: f.rate, Retries: cmp.Or(f.retries, -1), InitialRTT: f.initialRTT, MaxRTT: f.maxRTT, HostTimeout: f.hostTimeout,
	}
	if files.resumed != nil {
		s.Resume = files.resumed.Cursor
	}
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
		return &exitError{code: ExitUsage, err: fmt.Errorf("-o: %w", err)}
	}
	if w, err = f.service.wrap(ctx, w, f.rate); err != nil {
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
	if err := w.Begin(info); err != nil {
		return err
	}
	engine := strings.Join(engines, " and ") + " engine"
	if len(engines) > 1 {
		engine += "s"
	}
	seed := s.Seed
	if s.Resume != nil {
		seed = s.Resume.Seed // the order resumed is the saved one
	}
	e.warnf("scanning %d address(es) × %d port(s) with the %s, seed %d", targets.Len(), ports.Len(), engine, seed)

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
	if stats.HostPaceLimited {
		e.warnf("targets' ICMP rate limits, not the network, held the UDP scan back")
	}
	if stats.InFlightLimited {
		e.warnf("the open-file limit (%s), not the network, held the scan back; raise it (ulimit -n) to scan faster", stats.InFlightLimitBy)
	}
	e.warnf("%d probes in %v (%.0f/s, %d retransmitted): %d open, %d closed, %d filtered, %d open|filtered",
		stats.Done, stats.Elapsed.Round(time.Millisecond), stats.Rate, stats.Retransmitted,
		stats.Open, stats.Closed, stats.Filtered, stats.OpenFiltered)
	if err := files.finish(e, cmd, w, targets, ports, stats, runErr, endErr); err != nil {
		return err
	}
	if endErr != nil {
		return endErr
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
		more, err := readSpecFile(f.targetFile)
		if err != nil {
			return nil, err
		}
		specs = append(specs, more...)
	}
	opts := portspec.TargetOptions{Exclude: f.exclude}
	if f.excludeFile != "" {
		more, err := readSpecFile(f.excludeFile)
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
	if err != nil {
		return nil, err
	}
	if targets.Len() == 0 {
		return nil, &exitError{code: ExitUsage, err: errors.New("scan: no address left to scan")}
	}
	return targets, nil
}

func readSpecFile(name string) ([]string, error) {
	file, err := os.Open(name)
	if err != nil {
		return nil, &exitError{code: ExitUsage, err: err}
	}
	defer file.Close()
	return portspec.ReadTargetFile(file, name)
}

func scanPorts(f *scanFlags, reg *registry.Registry) (*portspec.PortList, error) {
	opts := portspec.PortOptions{Registry: reg}
	switch {
	case f.udp && f.tcp:
		opts.Protos = []registry.Proto{registry.TCP, registry.UDP}
	case f.udp:
		opts.Protos = []registry.Proto{registry.UDP}
	}
	given := 0
	for _, set := range []bool{f.ports != "", f.top > 0, f.portsFile != ""} {
		if set {
			given++
		}
	}
	if given > 1 {
		return nil, &exitError{code: ExitUsage, err: errors.New("scan: give one of -p, --top and --ports-file")}
	}
	switch {
	case f.ports != "":
		return portspec.ParsePorts(f.ports, opts)
	case f.portsFile != "":
		file, err := os.Open(f.portsFile)
		if err != nil {
			return nil, &exitError{code: ExitUsage, err: err}
		}
		defer file.Close()
		return portspec.ReadPortsFile(file, f.portsFile, opts)
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
			return 0, &exitError{code: ExitUsage, err: errors.New("--shard needs --seed: every shard must share one seed")}
		}
		var b [8]byte
		rand.Read(b[:])
		return binary.LittleEndian.Uint64(b[:]), nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, &exitError{code: ExitUsage, err: fmt.Errorf("--seed %q: want a number from 0 to 2^64-1", s)}
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
		return 0, 0, &exitError{code: ExitUsage, err: fmt.Errorf("--shard %q: want I/N with 1 ≤ I ≤ N", s)}
	}
	return i - 1, n, nil
}

// chooseEngines sets the scanner's engines: SYN when asked, or by default
// where raw sockets can be opened; connect otherwise. It returns the TCP
// scan's type for the report.
func chooseEngines(e *env, f *scanFlags, s *scan.Scanner, ports *portspec.PortList) (string, error) {
	if f.syn && f.connect {
		return "", &exitError{code: ExitUsage, err: errors.New("scan: --syn or --connect, not both")}
	}
	if len(ports.Ports(registry.UDP)) > 0 {
		udp, err := scan.NewUDP(scan.UDPOptions{OnLimit: func(l scan.ICMPLimit) { e.warnf("%v", l) }})
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
// a default: an empty -p, --top 0, a negative rate, retry count or time.
func checkScanFlags(fs *pflag.FlagSet, f *scanFlags) error {
	switch {
	case fs.Changed("ports") && strings.TrimSpace(f.ports) == "":
		return errors.New("-p: empty port list")
	case fs.Changed("top") && f.top < 1:
		return fmt.Errorf("--top %d: want at least 1", f.top)
	case !(f.rate >= 0) || math.IsInf(f.rate, 0):
		return fmt.Errorf("--rate %v: want probes a second, 0 or more (0 is as fast as the engine goes)", f.rate)
	case f.retries < 0 || f.retries > scan.MaxRetries:
		return fmt.Errorf("--retries %d: want 0 to %d", f.retries, scan.MaxRetries)
	case f.hostTimeout < 0:
		return fmt.Errorf("--host-timeout %v: must not be negative", f.hostTimeout)
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
