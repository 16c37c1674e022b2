package cli

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/portkit/portkit/internal/output"
	"github.com/portkit/portkit/service"
)

// identifyRow is one identified port as --json writes it.
type identifyRow struct {
	Target   string `json:"target"`
	Address  string `json:"address"`
	Protocol string `json:"protocol"`
	service.Result
}

// identifyTarget is one HOST:PORT[/udp] argument, resolved.
type identifyTarget struct {
	arg  string
	addr netip.AddrPort
	udp  bool
	name string // the host as given, for SNI and Host when it is a name
}

func newIdentify(e *env) *cobra.Command {
	var (
		timeout     time.Duration
		concurrency int
		snmp        bool
		udp         bool
		sni         string
	)
	cmd := &cobra.Command{
		Use:   "identify HOST:PORT...",
		Short: "Say what answers on a port: protocol, product, version, TLS certificate",
		Long: `Identify the service on each HOST:PORT: the protocol, and the product and
version where the protocol reveals them, and the TLS certificate of a port
that speaks TLS, directly or after STARTTLS (SMTP, IMAP, POP3, FTP,
PostgreSQL, LDAP, XMPP, RDP). It works on any port: the port number only
decides which probe goes first.

Each port gets, in turn: the probe its number suggests, a short wait for a
server that speaks first, a TLS handshake (and the same steps inside it),
then the other probes, each on its own connection, each with a deadline and
a byte cap. A port that answers but matches nothing is "unknown", with the
first bytes it sent.

HOST:PORT is an address or a name (its first address is asked, the name sent
in TLS SNI and HTTP Host); [v6]:port for IPv6. HOST:PORT/udp asks
the UDP service (DNS, NTP, memcached, STUN, SIP; SNMP only with --snmp,
which sends the community "public").

Exit status: 0 when every port was identified, 1 when none was, 3 when some
were, 2 on bad input, 130 when interrupted.`,
		Example: `  portkit identify 127.0.0.1:22
  portkit identify db.internal:5432 mail.internal:25 --json
  portkit identify 198.18.0.2:8443 198.18.0.2:53/udp
  portkit identify 198.18.0.2:161/udp --snmp`,
		Args: cobra.MinimumNArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if timeout <= 0 {
				return &exitError{code: ExitUsage, err: fmt.Errorf("--timeout %v: must be positive", timeout)}
			}
			if concurrency < 1 {
				return &exitError{code: ExitUsage, err: fmt.Errorf("--concurrency %d: want at least 1", concurrency)}
			}
			targets, err := parseIdentifyTargets(cmd.Context(), args, udp)
			if err != nil {
				return err
			}
			id := &service.Identifier{Options: service.Options{Timeout: timeout, SNMP: snmp, ServerName: sni}}
			return runIdentify(cmd.Context(), e, id, targets, concurrency)
		}),
	}
	fl := cmd.Flags()
	durationVarP(fl, &timeout, "timeout", "t", service.DefaultTimeout, "the most time spent on one port, every probe included")
	fl.IntVar(&concurrency, "concurrency", 16, "identify at most `N` ports at once")
	fl.BoolVar(&snmp, "snmp", false, `send SNMP's community "public" to UDP ports`)
	fl.BoolVarP(&udp, "udp", "U", false, "every target is a UDP port")
	fl.StringVar(&sni, "sni", "", "the `NAME` sent in TLS SNI and HTTP Host (default: the host given)")
	return cmd
}

// parseIdentifyTargets reads HOST:PORT[/udp|/tcp] arguments; a name is
// resolved to its first address.
func parseIdentifyTargets(ctx context.Context, args []string, udp bool) ([]identifyTarget, error) {
	out := make([]identifyTarget, 0, len(args))
	for _, a := range args {
		spec, proto, _ := strings.Cut(a, "/")
		t := identifyTarget{arg: a, udp: udp}
		switch strings.ToLower(proto) {
		case "":
		case "udp":
			t.udp = true
		case "tcp":
			t.udp = false
		default:
			return nil, &exitError{code: ExitUsage, err: fmt.Errorf("identify %q: protocol %q: want tcp or udp", a, proto)}
		}
		host, portStr, err := net.SplitHostPort(spec)
		if err != nil {
			return nil, &exitError{code: ExitUsage, err: fmt.Errorf("identify %q: want HOST:PORT ([v6]:PORT for IPv6)", a)}
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil || port == 0 {
			return nil, &exitError{code: ExitUsage, err: fmt.Errorf("identify %q: port %q: want 1-65535", a, portStr)}
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			addrs, lerr := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
			if lerr != nil || len(addrs) == 0 {
				return nil, &exitError{code: ExitUsage, err: fmt.Errorf("identify %q: cannot resolve %q", a, host)}
			}
			ip, t.name = addrs[0].Unmap(), host
		}
		t.addr = netip.AddrPortFrom(ip, uint16(port))
		out = append(out, t)
	}
	return out, nil
}

func runIdentify(ctx context.Context, e *env, id *service.Identifier, targets []identifyTarget, concurrency int) error {
	results := make([]service.Result, len(targets))
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			one := *id
			if one.ServerName == "" {
				one.ServerName = t.name
			}
			if t.udp {
				results[i] = one.UDP(ctx, t.addr)
			} else {
				results[i] = one.TCP(ctx, t.addr)
			}
		}()
	}
	wg.Wait()
	if e.interrupted() {
		return &exitError{code: ExitInterrupted}
	}
	known := 0
	rows := make([]identifyRow, len(targets))
	for i, t := range targets {
		proto := "tcp"
		if t.udp {
			proto = "udp"
		}
		rows[i] = identifyRow{Target: t.arg, Address: t.addr.String(), Protocol: proto, Result: results[i]}
		if results[i].Known() {
			known++
		}
	}
	if err := printIdentify(e, rows); err != nil {
		return err
	}
	switch {
	case known == len(rows):
		return nil
	case known == 0:
		return &exitError{code: ExitNegative}
	}
	return &exitError{code: ExitPartial}
}

func printIdentify(e *env, rows []identifyRow) error {
	p := e.printer()
	if p.Format() == output.JSON {
		return p.JSON(rows)
	}
	tb := p.Table("TARGET", "SERVICE", "PRODUCT", "VERSION", "TLS", "INFO")
	for _, r := range rows {
		info := r.Info
		if r.Banner != "" {
			info = "banner " + r.Banner
		}
		style := output.Green
		if !r.Known() {
			style = output.Yellow
		}
		tb.StyledRow(output.Cell{Text: r.Target}, output.Cell{Text: r.Service, Style: style},
			output.Cell{Text: r.Product}, output.Cell{Text: r.Version},
			output.Cell{Text: r.TLS.String()}, output.Cell{Text: info})
	}
	return tb.Flush()
}
