package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/portkit/portkit/firewall"
	"github.com/portkit/portkit/guard"
)

// guardFlags are the command line's settings of `portkit guard`.
type guardFlags struct {
	configPath   string
	interfaces   []string
	includeLo    bool
	allow        []string
	maxSources   int
	table        string
	logAll       bool
	block        time.Duration
	out          string
	syslog       bool
	syslogSocket string
	metrics      string
	logFormat    string
	replay       string
	local        []string
}

func newGuard(e *env) *cobra.Command {
	var gf guardFlags
	cmd := &cobra.Command{
		Use:   "guard [flags]",
		Short: "Log refused connection attempts and detect port scans",
		Long: `Watch every inbound TCP, UDP and ICMP packet (AF_PACKET with a BPF filter, so
packets a firewall drops are seen too) and this host's resets and ICMP
unreachables, and report:

  attempts  each connection attempt this host refuses, one JSON line: source,
            destination, protocol, flags, TTL and the answer (rst, icmp,
            dropped: a SYN neither refused nor accepted within answer_wait);
            rate-limited per source. --log-all logs accepted ones too.
  scans     one alert per scan (start, updates at most every update_every,
            an end summary after end_after of quiet): the source(s), the
            type (SYN, connect, FIN, NULL, Xmas, ACK/Window, Maimon, UDP),
            the tool where the packets show it (a guess), the ports, the
            count, the duration and the rate.

A source is a scan when its distinct refused or unanswered ports weigh 21
(a port below 1024 weighs 3, others 1) with less than 3s between probes, as
scanlogd decides; or, for slow scans, 30 distinct ports within 10 minutes;
a sweep probes one port on 8 of this host's addresses; a distributed scan
is many sources each probing a slice of the ports, reported as one alert
naming them all. Accepted connections never make a scan. Thresholds and
windows live in the TOML file of --config (see docs/GUARD.md); SIGHUP
reloads it, all or nothing. Allowed sources (--allow, and this host's own
addresses) never alert and are never blocked.

Live capture needs Linux and root (or CAP_NET_RAW). --replay FILE runs the
same detection over a pcap or pcapng capture, anywhere.`,
		Example: `  portkit guard
  portkit guard -i eth0 --out /var/log/portkit-guard.jsonl --syslog
  portkit guard --config /etc/portkit/guard.toml --metrics 127.0.0.1:9102
  portkit guard --allow 10.0.0.0/24 --block 1h
  portkit guard --replay capture.pcapng --local 198.18.0.2`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return runGuard(cmd.Context(), e, cmd.Flags(), &gf)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&gf.configPath, "config", "", "read thresholds, windows, allowlist and interfaces from this TOML `FILE`")
	f.StringArrayVarP(&gf.interfaces, "interface", "i", nil, "watch this `IFACE` (repeatable; default: all but lo)")
	f.BoolVar(&gf.includeLo, "include-lo", false, "watch lo too")
	f.StringArrayVar(&gf.allow, "allow", nil, "never alert on or block this `CIDR` (repeatable)")
	f.IntVar(&gf.maxSources, "max-sources", 0, "track at most `N` sources, the oldest let go first (default 65536)")
	f.BoolVar(&gf.logAll, "log-all", false, "log accepted connection attempts too")
	durationVarP(f, &gf.block, "block", "", 0, "block each scan's sources for `DURATION` in nftables (portkit's table; see portkit firewall ls)")
	f.StringVar(&gf.table, "table", "portkit", "with --block, the firewall's nftables table `NAME`")
	f.StringVar(&gf.out, "out", "", "append JSON Lines to `FILE` instead of stdout (synced after each alert)")
	f.BoolVar(&gf.syslog, "syslog", false, "also send events to syslog, one line each, scanlogd-style")
	f.StringVar(&gf.syslogSocket, "syslog-socket", "/dev/log", "the syslog unix datagram socket `PATH`")
	f.StringVar(&gf.metrics, "metrics", "", "serve Prometheus metrics on this `ADDR` (host:port) at /metrics")
	f.StringVar(&gf.logFormat, "log-format", "text", "diagnostics on stderr as text or json")
	f.StringVar(&gf.replay, "replay", "", "run the detection over this pcap or pcapng `FILE` and exit")
	f.StringArrayVar(&gf.local, "local", nil, "with --replay: this host's addresses, `CIDR` (for captures that do not record direction)")
	return cmd
}

// guardSettings is what a configuration file and the flags make together.
type guardSettings struct {
	engine     guard.Config
	interfaces []string
	includeLo  bool
	allowLocal bool
	block      time.Duration
}

// settings reads the file (if any) and lets the flags given override it.
func (gf *guardFlags) settings(flags *pflag.FlagSet) (*guardSettings, error) {
	s := &guardSettings{allowLocal: true}
	if gf.configPath != "" {
		file, err := guard.LoadFile(gf.configPath)
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, &exitError{code: ExitUsage, err: fmt.Errorf("guard: --config %s: %w", gf.configPath, pe.Err)}
		}
		if err != nil {
			return nil, &exitError{code: ExitUsage, err: fmt.Errorf("guard: --config %w", err)}
		}
		s.engine, s.interfaces, s.includeLo, s.allowLocal, s.block = file.Engine, file.Interfaces, file.IncludeLo, file.AllowLocal, file.Block
	}
	if flags.Changed("interface") {
		s.interfaces = gf.interfaces
	}
	if flags.Changed("include-lo") {
		s.includeLo = gf.includeLo
	}
	if flags.Changed("max-sources") {
		if gf.maxSources <= 0 || gf.maxSources > 1<<24 {
			return nil, &exitError{code: ExitUsage, err: fmt.Errorf("--max-sources %d: want 1 to %d", gf.maxSources, 1<<24)}
		}
		s.engine.MaxSources = gf.maxSources
	}
	if flags.Changed("log-all") {
		s.engine.LogAll = gf.logAll
	}
	if flags.Changed("block") {
		if gf.block <= 0 {
			return nil, &exitError{code: ExitUsage, err: fmt.Errorf("--block %v: want a positive duration such as 10m or 1h", gf.block)}
		}
		s.block = gf.block
	}
	for _, a := range gf.allow {
		p, err := guard.ParsePrefix(a)
		if err != nil {
			return nil, &exitError{code: ExitUsage, err: fmt.Errorf("--allow %w", err)}
		}
		s.engine.Allow = append(s.engine.Allow, p)
	}
	if lo, hi, ok := ephemeralRange(); ok {
		s.engine.EphemeralLow, s.engine.EphemeralHigh = lo, hi
	}
	return s, nil
}

// ephemeralRange is this host's range of ports for outgoing connections.
func ephemeralRange() (uint16, uint16, bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, false
	}
	lo, err1 := strconv.ParseUint(f[0], 10, 16)
	hi, err2 := strconv.ParseUint(f[1], 10, 16)
	if err1 != nil || err2 != nil || lo > hi {
		return 0, 0, false
	}
	return uint16(lo), uint16(hi), true
}

// localPrefixes are this host's own addresses.
func localPrefixes() []netip.Prefix {
	var out []netip.Prefix
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				ip = ip.Unmap()
				out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
			}
		}
	}
	return out
}

func inPrefixes(ps []netip.Prefix) func(netip.Addr) bool {
	return func(a netip.Addr) bool {
		a = a.Unmap()
		for _, p := range ps {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
}

// interfaceIndexes resolves interface names.
func interfaceIndexes(names []string, flag string) ([]int, error) {
	var out []int
	for _, n := range names {
		i, err := net.InterfaceByName(n)
		if err != nil {
			return nil, &exitError{code: ExitUsage, err: fmt.Errorf("%s %s: no such interface", flag, n)}
		}
		out = append(out, i.Index)
	}
	return out, nil
}

// firewallBlocker is what --block hands scanners to: a blocked-sources
// set with timeouts in portkit's own nftables table, which the kernel
// expires by itself.
func firewallBlocker(table string) guard.Blocker { return firewall.Table{Name: table} }

func runGuard(ctx context.Context, e *env, flags *pflag.FlagSet, gf *guardFlags) error {
	set, err := gf.settings(flags)
	if err != nil {
		return err
	}
	if e.json {
		gf.logFormat = "json"
	}
	log, err := newLogger(e.Err, gf.logFormat)
	if err != nil {
		return err
	}
	if gf.replay != "" && gf.block > 0 {
		// The addresses of a recording are not scanning this host now.
		return &exitError{code: ExitUsage, err: errors.New("guard: --block and --replay conflict: --replay detects scans in a recording, whose sources --block would block now")}
	}
	if gf.replay == "" && len(gf.local) > 0 {
		return &exitError{code: ExitUsage, err: errors.New("guard: --local is for --replay; live capture knows which packets it sent")}
	}
	var localPs []netip.Prefix
	for _, l := range gf.local {
		p, err := guard.ParsePrefix(l)
		if err != nil {
			return &exitError{code: ExitUsage, err: fmt.Errorf("--local %w", err)}
		}
		localPs = append(localPs, p)
	}
	if gf.replay == "" {
		localPs = localPrefixes()
	}
	cfg := set.engine
	if set.allowLocal {
		cfg.Allow = append(cfg.Allow, localPs...)
	}
	if err := cfg.Validate(); err != nil {
		return &exitError{code: ExitUsage, err: fmt.Errorf("guard: %w", err)}
	}

	opts := guard.Options{Config: cfg, Logger: log, Local: inPrefixes(localPs), BlockFor: set.block}
	if set.block > 0 {
		opts.Blocker = firewallBlocker(gf.table)
	}
	// Outputs.
	if gf.out != "" {
		f, err := os.OpenFile(gf.out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return &exitError{code: ExitUsage, err: fmt.Errorf("guard: --out %s: %w", gf.out, unwrapPath(err))}
		}
		defer f.Close()
		opts.Sinks = append(opts.Sinks, guard.NewJSONLines(f, f.Sync))
	} else {
		opts.Sinks = append(opts.Sinks, guard.NewJSONLines(e.Out, nil))
	}
	if gf.syslog {
		sl, err := guard.DialSyslog(gf.syslogSocket, "portkit-guard", log)
		if err != nil {
			return &exitError{code: ExitNegative, err: fmt.Errorf("guard: --syslog: %s: %w", gf.syslogSocket, unwrapPath(err))}
		}
		defer sl.Close()
		opts.Sinks = append(opts.Sinks, sl)
	}
	g := guard.NewGuard(opts)

	if gf.replay != "" {
		f, err := os.Open(gf.replay)
		if err != nil {
			return &exitError{code: ExitUsage, err: fmt.Errorf("guard: --replay %s: %w", gf.replay, unwrapPath(err))}
		}
		defer f.Close()
		var local func(netip.Addr) bool
		if len(localPs) > 0 {
			local = inPrefixes(localPs)
		}
		err = g.Replay(ctx, f, local)
		return guardError(ctx, err, "--replay "+gf.replay)
	}

	ifFlag := "--interface"
	if !flags.Changed("interface") {
		ifFlag = gf.configPath + ": interfaces:"
	}
	ifaces, err := interfaceIndexes(set.interfaces, ifFlag)
	if err != nil {
		return err
	}
	// Signals are caught before the capture opens, so none is lost.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, reloadSignals()...)
	defer signal.Stop(sigs)
	sensor, err := g.Open(ifaces, set.includeLo)
	if err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			return &exitError{code: ExitNegative, err: fmt.Errorf("guard: %w (--replay works here)", err)}
		}
		return &exitError{code: ExitNegative, err: fmt.Errorf("guard: open the capture (needs root or CAP_NET_RAW): %w", err)}
	}
	defer sensor.Close()
	if gf.metrics != "" {
		ln, err := net.Listen("tcp", gf.metrics)
		if err != nil {
			return &exitError{code: ExitNegative, err: fmt.Errorf("guard: --metrics %s: %w", gf.metrics, err)}
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", g)
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		log.Info("metrics", "addr", ln.Addr().String(), "path", "/metrics")
	}
	log.Info("watching", "interfaces", strings.Join(set.interfaces, ","), "include_lo", set.includeLo, "block", set.block.String())

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sensor.Run(runCtx) }()
	for {
		select {
		case <-sigs:
			reloadGuard(g, sensor, gf, flags, log)
		case err := <-done:
			// Scans going on end with their summaries.
			g.Flush(time.Now())
			if err == nil {
				err = g.Err()
			}
			return guardError(ctx, err, "capture")
		}
	}
}

// reloadGuard re-reads the configuration on SIGHUP: all of it or, when
// anything in it is wrong, none.
func reloadGuard(g *guard.Guard, sensor *guard.Sensor, gf *guardFlags, flags *pflag.FlagSet, log *slog.Logger) {
	if gf.configPath == "" {
		log.Warn("reload: nothing to reload, no --config")
		return
	}
	set, err := gf.settings(flags)
	var ifaces []int
	if err == nil {
		ifaces, err = interfaceIndexes(set.interfaces, gf.configPath+": interfaces:")
	}
	if err == nil {
		cfg := set.engine
		if set.allowLocal {
			cfg.Allow = append(cfg.Allow, localPrefixes()...)
		}
		if err = cfg.Validate(); err == nil {
			g.Reload(cfg)
			sensor.SetInterfaces(ifaces, set.includeLo)
			log.Info("reloaded", "config", gf.configPath)
			return
		}
	}
	log.Error("reload failed, the running configuration stays", "config", gf.configPath, "err", err.Error())
}

// guardError gives the end of a run its exit code.
func guardError(ctx context.Context, err error, what string) error {
	var se *guard.SinkError
	var ce *guard.CaptureError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return &exitError{code: ExitIO, err: fmt.Errorf("guard: %w", err)}
	case errors.As(err, &ce):
		return &exitError{code: ExitUsage, err: fmt.Errorf("guard: %s: %w", what, err)}
	case ctx.Err() != nil:
		return nil
	}
	return &exitError{code: ExitNegative, err: fmt.Errorf("guard: %s: %w", what, err)}
}
