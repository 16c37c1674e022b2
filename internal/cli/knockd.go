package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/portkit/portkit/firewall"
	"github.com/portkit/portkit/knock"
	"github.com/portkit/portkit/knock/access"
	"github.com/portkit/portkit/knock/replay"
)

type knockdFlags struct {
	configPath   string
	fwknopAccess string
	spaPort      int
	iface        string
	stateDir     string
	table        string
	metrics      string
	logFormat    string
	check        bool
}

func newKnockd(e *env) *cobra.Command {
	var kf knockdFlags
	cmd := &cobra.Command{
		Use:   "knockd --config FILE | --fwknop-access FILE",
		Short: "Open ports to sources that knock the right sequence or send a valid SPA packet",
		Long: `Watch for port knocks and single packet authorization (SPA) packets, and
let their source in to the ports they earn, for a time, through the firewall.

knockd reads packets from an AF_PACKET socket with a kernel filter (no
socket is opened on the knock or SPA ports, so the firewall may drop them
all): UDP to the SPA port, TCP SYNs and UDP datagrams to the knock ports.
Linux only, as root (or CAP_NET_RAW and CAP_NET_ADMIN).

SPA packets are fwknop's (2.6, Rijndael with an HMAC): the stock fwknop
client works, and --fwknop-access reads fwknopd's access.conf as it is.
Access messages open the ports asked for, if the stanza allows them;
command and NAT messages are refused. A packet is refused when replayed
(the digests of accepted packets are kept under --state-dir, so across
restarts too), older than the stanza's max_age or dated in the future.

Knock sequences are knockd's (7000,8000:udp,9000 in order within
seq_timeout; a wrong knock starts over; a repeated knock is ignored), or
derived from a shared secret and the time (TOTP), or read from knockd's
one-time sequences file. See docs/KNOCK.md for the config file.

One log line per accepted or refused attempt, with the source and the
reason (--log-format json for JSON). Refusal lines are rate-limited, so
that a flood of junk costs parsing only: 20 at once per source, then one
every 3 s; 100 at once for all sources together, then twenty a second; a
source never seen before is logged while the overall budget lasts.
Refusals not logged are counted: in the "suppressed" of the next refusal
line, or in a line of their own within 10 s, and every refusal in the
metrics. Accepted attempts are always logged. SIGHUP reloads the config, all or
nothing; SIGTERM or SIGINT stops and leaves the firewall as it is (openings expire
by themselves). --check reads the config, says what it would watch, and
exits.

Exit status: 0 after a stop by SIGTERM or SIGINT (a service stopped on
purpose, as forward), 2 on a bad flag or config or without the privilege it
needs (root, or CAP_NET_RAW and CAP_NET_ADMIN; both checked at start), 1 when it cannot run
otherwise (a --metrics address in use).`,
		Example: `  portkit knockd --config /etc/portkit/knockd.toml
  portkit knockd --fwknop-access /etc/fwknop/access.conf --interface eth0
  portkit knockd --config knockd.toml --check
  portkit knockd --config knockd.toml --log-format json --metrics 127.0.0.1:9102`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return runKnockd(cmd.Context(), e, cmd, &kf)
		}),
	}
	f := cmd.Flags()
	f.StringVarP(&kf.configPath, "config", "c", "", "read SPA stanzas and knock sequences from this TOML `FILE` (SIGHUP reloads it)")
	f.StringVar(&kf.fwknopAccess, "fwknop-access", "", "read SPA stanzas from fwknopd's access.conf `FILE`")
	f.IntVar(&kf.spaPort, "spa-port", knock.DefaultSPAPort, "UDP `PORT` of SPA packets (overrides the config's spa_port)")
	f.StringVarP(&kf.iface, "interface", "i", "", "watch this interface `NAME` only (default: all)")
	f.StringVar(&kf.stateDir, "state-dir", "/var/lib/portkit", "keep the replay cache in this `DIR`")
	f.StringVar(&kf.table, "table", "portkit", "the firewall's nftables table `NAME`")
	f.StringVar(&kf.metrics, "metrics", "", "serve Prometheus metrics on this `ADDR` (host:port) at /metrics")
	f.StringVar(&kf.logFormat, "log-format", "text", "log lines as text or json")
	f.BoolVar(&kf.check, "check", false, "read the config, print what would be watched, and exit")
	return cmd
}

// loadKnockdConfig reads the config the flags name: the TOML file, the
// access.conf, or both (the stanzas of both).
func (kf *knockdFlags) load(cmd *cobra.Command) (*knock.Config, error) {
	if kf.configPath == "" && kf.fwknopAccess == "" {
		return nil, usagef("knockd: need --config FILE or --fwknop-access FILE")
	}
	cfg := &knock.Config{SPAPort: knock.DefaultSPAPort}
	if kf.configPath != "" {
		c, err := knock.LoadConfig(kf.configPath)
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, usagef("knockd: --config %s: %w", kf.configPath, pe.Err)
		}
		if err != nil {
			return nil, err
		}
		cfg = c
	}
	if kf.fwknopAccess != "" {
		st, err := access.ParseFile(kf.fwknopAccess)
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, usagef("knockd: --fwknop-access %s: %w", kf.fwknopAccess, pe.Err)
		}
		if err != nil {
			return nil, &exitError{code: ExitUsage, err: err}
		}
		cfg.SPA = append(cfg.SPA, knock.SPARulesFromAccess(st)...)
	}
	if cmd.Flags().Changed("spa-port") {
		if kf.spaPort < 1 || kf.spaPort > 65535 {
			return nil, usagef("--spa-port %d: not 1-65535", kf.spaPort)
		}
		cfg.SPAPort = uint16(kf.spaPort)
	}
	if len(cfg.SPA) > 0 && cfg.SPAPort == 0 {
		return nil, usagef("knockd: SPA stanzas but spa_port = 0")
	}
	return cfg, nil
}

// replayWindow is the window the replay cache must cover: the longest
// max_age of the stanzas.
func replayWindow(cfg *knock.Config) replay.Window {
	w := replay.Window{MaxAge: replay.DefaultMaxAge}
	for _, r := range cfg.SPA {
		w.MaxAge = max(w.MaxAge, r.MaxAge)
	}
	return w
}

func runKnockd(ctx context.Context, e *env, cmd *cobra.Command, kf *knockdFlags) error {
	if err := checkDaemonFlags(e, cmd.Flags(), kf.metrics, kf.logFormat); err != nil {
		return err
	}
	if e.json {
		kf.logFormat = "json"
	}
	log, err := newLogger(e.Err, kf.logFormat)
	if err != nil {
		return err
	}
	cfg, err := kf.load(cmd)
	if err != nil {
		return err
	}
	if kf.check {
		return printKnockdCheck(e, cfg)
	}
	if runtime.GOOS != "linux" {
		return &exitError{code: ExitNegative, err: fmt.Errorf("knockd: not supported on %s (it reads packets through Linux's AF_PACKET)", runtime.GOOS)}
	}
	iface := 0
	if kf.iface != "" {
		ifi, err := net.InterfaceByName(kf.iface)
		if err != nil {
			return usagef("--interface %q: no such interface", kf.iface)
		}
		iface = ifi.Index
	}
	opener, err := newOpener(kf.table)
	if err != nil {
		return &exitError{code: ExitNegative, err: fmt.Errorf("knockd: %w", err)}
	}
	// The firewall is asked now, changing nothing, so that a missing
	// CAP_NET_ADMIN stops the start rather than the first opening, which
	// would be refused to a client who knocked right.
	if err := (firewall.Table{Name: kf.table}).Check(ctx); err != nil {
		switch {
		case errors.Is(err, fs.ErrPermission):
			return usagef("knockd: reading packets (AF_PACKET) and opening ports (nftables) needs root or the capabilities CAP_NET_RAW and CAP_NET_ADMIN; nftables refused this process, which lacks CAP_NET_ADMIN: run it as root, or from its systemd unit (docs/portkit-knockd.service)")
		case errors.Is(err, firewall.ErrForeignTable):
			return usagef("knockd: --table %s: %v", kf.table, err)
		}
		return &exitError{code: ExitNegative, err: fmt.Errorf("knockd: %w", err)}
	}
	if err := os.MkdirAll(kf.stateDir, 0o700); err != nil {
		return &exitError{code: ExitNegative, err: fmt.Errorf("knockd: --state-dir: %w", err)}
	}
	window := replayWindow(cfg)
	cache, err := replay.Open(filepath.Join(kf.stateDir, "knockd.replay"), replay.Options{Window: window})
	if err != nil {
		return &exitError{code: ExitNegative, err: fmt.Errorf("knockd: %w", err)}
	}
	defer cache.Close()

	metrics := knock.NewMetrics()
	srv, err := knock.NewServer(cfg, knock.Options{Opener: opener, Logger: log, Replay: cache, Metrics: metrics})
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, append(reloadSignals(), os.Interrupt, syscall.SIGTERM)...)
	defer signal.Stop(sigs)
	if kf.metrics != "" {
		hs, err := serveMetrics(kf.metrics, metrics, log)
		if err != nil {
			return &exitError{code: ExitNegative, err: fmt.Errorf("knockd: --metrics %s: %w", kf.metrics, err)}
		}
		defer hs.Close()
	}

	rctx, stop := context.WithCancel(ctx)
	defer stop()
	reload := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- srv.Run(rctx, knock.RunOptions{Interface: iface, Reload: reload, Started: func() {
			log.Info("listening", "spa_port", cfg.SPAPort, "spa_stanzas", len(cfg.SPA), "sequences", len(cfg.Doors), "interface", kf.iface)
		}})
	}()
	for {
		select {
		case err := <-done:
			var errno syscall.Errno
			if errors.Is(err, fs.ErrPermission) && errors.As(err, &errno) {
				// A privilege the command needs is the user's to give, as
				// for scan --syn and firewall: exit 2, naming it.
				return usagef("knockd: reading packets (AF_PACKET) and opening ports (nftables) needs root or the capabilities CAP_NET_RAW and CAP_NET_ADMIN (%v): run it as root, or from its systemd unit (docs/portkit-knockd.service)", errno)
			}
			if err != nil {
				return &exitError{code: ExitNegative, err: fmt.Errorf("knockd: %w", err)}
			}
			return nil
		case sig := <-sigs:
			if isReload(sig) {
				reloadKnockd(srv, kf, cmd, window, log)
				select {
				case reload <- struct{}{}:
				default:
				}
				continue
			}
			log.Info("stopping", "signal", sig.String())
			stop()
			<-done
			log.Info("stopped")
			return nil
		case <-ctx.Done():
			log.Info("stopping", stopAttrs(stopSignal(sigs))...)
			stop()
			<-done
			log.Info("stopped")
			return nil
		}
	}
}

// reloadKnockd re-reads the config on SIGHUP: all of it or nothing.
func reloadKnockd(srv *knock.Server, kf *knockdFlags, cmd *cobra.Command, window replay.Window, log *slog.Logger) {
	cfg, err := kf.load(cmd)
	if err == nil && replayWindow(cfg).MaxAge > window.MaxAge {
		err = fmt.Errorf("a max_age above %v needs a restart: the replay cache forgets digests after the window it started with", window.MaxAge)
	}
	if err == nil {
		err = srv.Reload(cfg)
	}
	if err != nil {
		log.Error("reload failed, the running config stays", "err", err.Error())
		return
	}
	log.Info("reloaded", "spa_stanzas", len(cfg.SPA), "sequences", len(cfg.Doors))
}

func printKnockdCheck(e *env, cfg *knock.Config) error {
	type door struct {
		Name     string        `json:"name"`
		Sequence string        `json:"sequence"`
		Open     []string      `json:"open"`
		Timeout  time.Duration `json:"access_timeout_ns"`
	}
	var doc struct {
		SPAPort    uint16 `json:"spa_port"`
		SPAStanzas int    `json:"spa_stanzas"`
		Sequences  []door `json:"sequences"`
	}
	doc.SPAPort, doc.SPAStanzas = cfg.SPAPort, len(cfg.SPA)
	doc.Sequences = []door{}
	for _, d := range cfg.Doors {
		dd := door{Name: d.Name, Timeout: d.AccessTimeout}
		switch {
		case d.TOTP != nil:
			t := d.TOTP.WithDefaults()
			dd.Sequence = fmt.Sprintf("totp: %d %s knocks in %d-%d, every %v", t.Length, t.Proto, t.Low, t.High, t.Step)
		case d.OneTime != nil:
			dd.Sequence = fmt.Sprintf("one-time: %d unused in %s", d.OneTime.Remaining(), d.OneTime.Path())
		default:
			dd.Sequence = knock.FormatSequence(d.Sequence)
		}
		for _, p := range d.OpenPorts {
			dd.Open = append(dd.Open, p.String())
		}
		doc.Sequences = append(doc.Sequences, dd)
	}
	if e.json {
		return e.printer().JSON(doc)
	}
	w := e.Out
	if doc.SPAStanzas > 0 {
		fmt.Fprintf(w, "spa: udp/%d, %d stanza(s)\n", doc.SPAPort, doc.SPAStanzas)
	}
	for _, d := range doc.Sequences {
		fmt.Fprintf(w, "sequence %s: %s opens %v for %v\n", d.Name, d.Sequence, d.Open, d.Timeout)
	}
	return nil
}
