package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/portkit/portkit/forward"
	"github.com/portkit/portkit/forward/config"
	"github.com/portkit/portkit/sockets"
)

// forwardFlags are the command line's settings: the one rule's options and
// the process-wide ones a config file may also set.
type forwardFlags struct {
	configPath string
	rule       forward.Rule
	balance    string
	proxy      string
	allow      []string
	deny       []string
	trusted    []string

	metrics      string
	logFormat    string
	drainTimeout time.Duration
}

func newForward(e *env) *cobra.Command {
	var ff forwardFlags
	cmd := &cobra.Command{
		Use:   "forward [flags] [PROTO/]LISTEN TARGET... | --config FILE",
		Short: "Forward a TCP or UDP port to other addresses",
		Long: `Relay connections arriving on LISTEN to the first TARGET that answers
(--balance first, the default: failover) or to each in turn (round-robin).
PROTO is tcp (default) or udp; LISTEN is [host]:port or a bare port (every
address); TARGET is host:port. TCP bytes move with splice(2) on Linux.

Many rules come from a TOML file with --config FILE (see docs/FORWARD.md);
nothing starts when any rule is wrong, and the error names the file, the
line and the key. SIGHUP reloads the file: changed rules take effect for
new connections, unchanged listeners keep their connections, removed ones
drain. SIGTERM or SIGINT stops accepting and drains open connections for up
to --drain-timeout (a second signal closes them at once).

One log line per connection or UDP session end on stderr (text, or JSON
with --log-format json or --json): client, target, bytes each way,
duration_ms, how it ended. --metrics ADDR serves Prometheus metrics.

Defaults that hold under abuse, as HAProxy's and nginx's are configured:
a TCP connection quiet both ways for 10m is closed (--idle-timeout; nginx's
proxy_timeout), and one client address may hold at most 256 connections, or
a quarter of --max-conns when that is lower (--max-conns-per-source). Give
0 to switch either off. Behind a load balancer or NAT, every client has the
balancer's address: use --accept-proxy-protocol, or
--max-conns-per-source 0.

A connection is passed on as it ends: a FIN as a FIN (half-close), a reset
as a reset. A target that resets, a failed dial, a refusal and a drain that
runs out of time reach the client as a reset (ECONNRESET), never as a clean
end that would make a cut-off download look complete. A rule whose target
is its own listen address (or leads back to it through other rules) is
refused (exit 2); one of portkit's own connections that comes back to it
at run time is reset and logged.

Exit status: 0 after a stop by SIGTERM or SIGINT (drained, or cut short by
a second signal or --drain-timeout: a stop on purpose), 2 on a bad flag,
rule or file, 1 when a port cannot be bound (the message names the process
holding it).`,
		Example: `  portkit forward :8080 10.1.2.3:80
  portkit forward udp/127.0.0.1:5353 [::1]:53
  portkit forward :443 10.0.0.1:443 10.0.0.2:443 --balance round-robin --proxy-protocol v2
  portkit forward :5432 db1:5432 db2:5432 --allow 10.0.0.0/8 --deny 10.9.0.0/16 --max-conns-per-source 20
  portkit forward :8443 10.0.0.5:443 --accept-proxy-protocol --trusted-proxies 10.0.0.2,10.0.0.3
  portkit forward :22 10.0.0.9:22 --connect-timeout 2s --idle-timeout 30m --max-conns 100
  portkit forward :8080 10.1.2.3:80 --idle-timeout 0 --max-conns-per-source 0   # no idle or per-source bound
  portkit forward udp/:53 10.0.0.53:53 --idle-timeout 10s --max-sessions 50000
  portkit forward --config /etc/portkit/forward.toml --metrics 127.0.0.1:9100 --drain-timeout 10s
  portkit forward --log-format json :8080 10.1.2.3:80`,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return runForward(cmd.Context(), e, cmd.Flags(), &ff, args)
		}),
	}
	f := cmd.Flags()
	f.StringVarP(&ff.configPath, "config", "c", "", "read the rules from this TOML `FILE` (SIGHUP reloads it)")
	f.StringVar(&ff.balance, "balance", "first", "how to pick a target: first (failover) or round-robin")
	durationVarP(f, &ff.rule.ConnectTimeout, "connect-timeout", "", forward.DefaultConnectTimeout, "give up dialling one target after this long")
	durationVarP(f, &ff.rule.IdleTimeout, "idle-timeout", "", 0, "close a connection quiet this long both ways (default 10m for TCP, 60s for UDP; 0: never)")
	f.IntVar(&ff.rule.MaxConns, "max-conns", 0, "at most this many TCP connections at once (0: no bound)")
	f.IntVar(&ff.rule.MaxConnsPerSource, "max-conns-per-source", 0, "at most this many TCP connections per client address (default 256, or max-conns/4 if lower; 0: no bound)")
	f.IntVar(&ff.rule.MaxSessions, "max-sessions", forward.DefaultMaxSessions, "at most this many UDP sessions; the longest idle makes room")
	f.StringSliceVar(&ff.allow, "allow", nil, "accept clients only from these `CIDR`s (repeat or comma-separate)")
	f.StringSliceVar(&ff.deny, "deny", nil, "refuse clients from these `CIDR`s, checked before --allow")
	f.StringVar(&ff.proxy, "proxy-protocol", "", "send the client's address to the target in a PROXY header: v1 or v2")
	f.BoolVar(&ff.rule.AcceptProxyProtocol, "accept-proxy-protocol", false, "read a PROXY header (v1 or v2) from --trusted-proxies and use its client address")
	f.StringSliceVar(&ff.trusted, "trusted-proxies", nil, "load balancers (`CIDR`s) whose PROXY headers are believed (with --accept-proxy-protocol)")
	f.StringVar(&ff.metrics, "metrics", "", "serve Prometheus metrics on this `ADDR` (host:port) at /metrics")
	f.StringVar(&ff.logFormat, "log-format", "text", "log lines as text or json")
	durationVarP(f, &ff.drainTimeout, "drain-timeout", "", 30*time.Second, "on stop or rule removal, let connections finish for this long")
	return cmd
}

func runForward(ctx context.Context, e *env, flags *pflag.FlagSet, ff *forwardFlags, args []string) error {
	var (
		rules []forward.Rule
		file  *config.File
		err   error
	)
	if err := checkDaemonFlags(e, flags, ff.metrics, ff.logFormat); err != nil {
		return err
	}
	if ff.configPath != "" {
		if len(args) > 0 {
			return usagef("--config and rules on the command line: the rules come from one; give one")
		}
		// The rule flags would be silently ignored with a file: refuse them.
		for _, name := range []string{"balance", "connect-timeout", "idle-timeout", "max-conns", "max-conns-per-source",
			"max-sessions", "allow", "deny", "proxy-protocol", "accept-proxy-protocol", "trusted-proxies"} {
			if flags.Changed(name) {
				return usagef("forward: --%s is a rule setting; with --config put it in the file", name)
			}
		}
		if file, err = loadRules(ff.configPath); err != nil {
			return err
		}
		rules = file.Rules
		if !flags.Changed("metrics") {
			ff.metrics = file.Metrics
		}
		if !flags.Changed("log-format") && file.LogFormat != "" {
			ff.logFormat = file.LogFormat
		}
		if !flags.Changed("drain-timeout") && file.DrainTimeout != nil {
			ff.drainTimeout = *file.DrainTimeout
		}
	} else {
		r, err := ff.commandLineRule(flags, args)
		if err != nil {
			return err
		}
		rules = []forward.Rule{r}
	}
	if e.json {
		ff.logFormat = "json"
	}
	log, err := newLogger(e.Err, ff.logFormat)
	if err != nil {
		return err
	}

	metrics := forward.NewMetrics()
	fw := forward.New(forward.Options{Logger: log, Metrics: metrics, DrainTimeout: ff.drainTimeout, PortHolder: portHolder})
	// Signals are caught before the first listener opens, so none is lost.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, append(reloadSignals(), os.Interrupt, syscall.SIGTERM)...)
	defer signal.Stop(sigs)

	// The metrics address first: a failure then leaves nothing to undo.
	if ff.metrics != "" {
		srv, err := serveMetrics(ff.metrics, metrics, log)
		if err != nil {
			return &exitError{code: ExitNegative, err: fmt.Errorf("forward: --metrics %s: %w", ff.metrics, err)}
		}
		defer srv.Close()
	}
	if err := fw.Reload(rules); err != nil {
		return forwardStartError(err)
	}

	for {
		var sig os.Signal
		select {
		case sig = <-sigs:
		case <-ctx.Done():
			sig = stopSignal(sigs)
		}
		if sig != nil && isReload(sig) {
			reload(fw, ff.configPath, log)
			continue
		}
		log.Info("stopping", stopAttrs(sig, "drain_timeout_ms", ff.drainTimeout.Milliseconds())...)
		dctx, cancel := context.WithTimeout(context.Background(), ff.drainTimeout)
		go func() { // a second stop signal ends the drain at once
			for {
				select {
				case s := <-sigs:
					if isReload(s) {
						continue
					}
					cancel()
				case <-dctx.Done():
				}
				return
			}
		}()
		fw.Shutdown(dctx)
		cancel()
		log.Info("stopped")
		return nil
	}
}

// commandLineRule builds the one rule of `portkit forward [PROTO/]LISTEN
// TARGET...` from the arguments and the rule flags.
func (ff *forwardFlags) commandLineRule(flags *pflag.FlagSet, args []string) (forward.Rule, error) {
	if len(args) < 2 {
		return forward.Rule{}, usagef("forward: need LISTEN and at least one TARGET (or --config FILE)")
	}
	r := ff.rule
	var err error
	if r.Protocol, r.Listen, err = forward.ParseProtoListen(args[0]); err != nil {
		return r, err
	}
	if err := ff.checkFlags(flags, r.Protocol); err != nil {
		return r, err
	}
	// 0 on the command line switches a default off.
	if flags.Changed("idle-timeout") && r.IdleTimeout == 0 {
		r.IdleTimeout = forward.NoLimit
	}
	if flags.Changed("max-conns-per-source") && r.MaxConnsPerSource == 0 {
		r.MaxConnsPerSource = forward.NoLimit
	}
	r.Targets = args[1:]
	r.Balance = forward.Balance(ff.balance)
	if ff.proxy != "" {
		if r.ProxyProtocol, err = forward.ParseProxyVersion(ff.proxy); err != nil {
			return r, usagef("--proxy-protocol: %w", err)
		}
	}
	for _, l := range []struct {
		flag string
		in   []string
		out  *[]netip.Prefix
	}{{"--allow", ff.allow, &r.Allow}, {"--deny", ff.deny, &r.Deny}, {"--trusted-proxies", ff.trusted, &r.TrustedProxies}} {
		for _, s := range l.in {
			p, err := forward.ParsePrefix(s)
			if err != nil {
				return r, usagef("%s: %w", l.flag, err)
			}
			*l.out = append(*l.out, p)
		}
	}
	if r.Protocol == forward.UDP {
		if !flags.Changed("max-sessions") {
			r.MaxSessions = 0 // the default applies
		}
	} else {
		r.MaxSessions = 0
	}
	if err := r.Validate(); err != nil {
		return r, err
	}
	return r.WithDefaults(), nil
}

// checkFlags refuses the rule flags' bad values and combinations, naming
// the flag and the value, before the rule is built: Validate would name
// the config key instead.
func (ff *forwardFlags) checkFlags(flags *pflag.FlagSet, proto forward.Protocol) error {
	if _, err := forward.ParseBalance(ff.balance); err != nil {
		return usagef("--balance %q: %v", ff.balance, err)
	}
	for _, n := range []struct {
		flag string
		v    int
	}{{"max-conns", ff.rule.MaxConns}, {"max-conns-per-source", ff.rule.MaxConnsPerSource}, {"max-sessions", ff.rule.MaxSessions}} {
		if n.v < 0 {
			return usagef("--%s %d: must not be negative", n.flag, n.v)
		}
	}
	if proto == forward.UDP {
		for _, name := range []string{"max-conns", "max-conns-per-source", "proxy-protocol", "accept-proxy-protocol", "trusted-proxies"} {
			if flags.Changed(name) {
				return usagef("forward: --%s is for TCP rules, not udp/ ones", name)
			}
		}
	} else if flags.Changed("max-sessions") {
		return usagef("forward: --max-sessions is for udp/ rules")
	}
	// The PROXY header flags only mean something together.
	if flags.Changed("trusted-proxies") && !ff.rule.AcceptProxyProtocol {
		return usagef("forward: --trusted-proxies needs --accept-proxy-protocol: the list says whose PROXY headers to believe, and only that flag reads them")
	}
	if ff.rule.AcceptProxyProtocol && len(ff.trusted) == 0 {
		return usagef("forward: --accept-proxy-protocol needs --trusted-proxies: the load balancers whose PROXY headers are believed")
	}
	return nil
}

func loadRules(path string) (*config.File, error) {
	file, err := config.Load(path)
	var pe *os.PathError
	if errors.As(err, &pe) {
		return nil, usagef("forward: --config %s: %w", path, pe.Err)
	}
	return file, err
}

// reload re-reads the rules file on SIGHUP; a bad file leaves the running
// rules as they are.
func reload(fw *forward.Forwarder, path string, log *slog.Logger) {
	if path == "" {
		log.Warn("reload: nothing to reload, the rule is on the command line")
		return
	}
	file, err := loadRules(path)
	if err == nil {
		err = fw.Reload(file.Rules)
	}
	if err != nil {
		log.Error("reload failed, the running rules stay", "config", path, "err", err.Error())
		return
	}
	log.Info("reloaded", "config", path, "rules", len(file.Rules))
}

// forwardStartError gives a bind failure its exit code: the input was fine,
// the port is taken (1); rule errors are bad input (2).
func forwardStartError(err error) error {
	var le *forward.ListenError
	if errors.As(err, &le) {
		return &exitError{code: ExitNegative, err: err}
	}
	return err
}

// checkDaemonFlags checks the flags the two services, forward and knockd,
// share, before anything starts: --metrics is an address (a bad one is bad
// input, exit 2, not a failure to listen found later), and --json, which
// means JSON log lines, does not contradict --log-format.
func checkDaemonFlags(e *env, flags *pflag.FlagSet, metrics, logFormat string) error {
	if flags.Changed("metrics") {
		if err := config.CheckMetrics(metrics); err != nil {
			return usagef("--metrics %q: %w", metrics, err)
		}
	}
	if e.json && flags.Changed("log-format") && logFormat != "json" {
		return usagef("--json and --log-format %s: --json writes JSON log lines; give one", logFormat)
	}
	return nil
}

// newLogger makes the logger of --log-format (forward.LogFormats).
func newLogger(w io.Writer, format string) (*slog.Logger, error) {
	if format == "" {
		format = forward.LogFormats()[0]
	}
	handlers := map[string]func() slog.Handler{
		"text": func() slog.Handler { return slog.NewTextHandler(w, nil) },
		"json": func() slog.Handler { return slog.NewJSONHandler(w, nil) },
	}
	if h, ok := handlers[format]; ok && slices.Contains(forward.LogFormats(), format) {
		return slog.New(h()), nil
	}
	return nil, usagef("--log-format %q: want %s", format, strings.Join(forward.LogFormats(), " or "))
}

// serveMetrics serves m at /metrics on addr, for forward and knockd. An
// address in use is said as a rule's listen address is: with the process
// that holds it.
func serveMetrics(addr string, m http.Handler, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			err = errno
		}
		if errors.Is(err, syscall.EADDRINUSE) {
			if who := portHolder(forward.TCP, addr); who != "" {
				err = fmt.Errorf("%w (held by %s)", err, who)
			}
		}
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Info("metrics", "addr", ln.Addr().String(), "path", "/metrics")
	go srv.Serve(ln)
	return srv, nil
}

// portHolder names the processes holding a port that could not be bound.
func portHolder(p forward.Protocol, listen string) string {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return ""
	}
	proto := sockets.TCP
	if p == forward.UDP {
		proto = sockets.UDP
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	entries, err := sockets.List(ctx, sockets.Query{Protos: proto, Port: uint16(n),
		WithProcesses: true})
	if err != nil {
		return ""
	}
	var who []string
	for _, en := range entries {
		for _, pr := range en.Processes {
			who = append(who, fmt.Sprintf("%s pid %d user %s", pr.Name, pr.PID, pr.User))
		}
		if len(en.Processes) == 0 && en.Hidden {
			who = append(who, fmt.Sprintf("a process of uid %d, hidden%s", en.UID, hiddenWhy()))
		}
	}
	slices.Sort(who) // a process holding both the IPv4 and IPv6 socket is named once
	return strings.Join(slices.Compact(who), ", ")
}
