package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portkit/portkit/firewall"
	"github.com/portkit/portkit/internal/output"
	"github.com/portkit/portkit/portspec"
	"github.com/portkit/portkit/registry"
)

// maxFirewallPorts bounds the ports one command changes: each is a
// transaction of its own.
const maxFirewallPorts = 1024

// firewallFlags are the options the firewall subcommands share.
type firewallFlags struct {
	table string
	from  string
	dur   time.Duration
}

func (f *firewallFlags) tbl() firewall.Table { return firewall.Table{Name: f.table} }

func newFirewall(e *env) *cobra.Command {
	f := &firewallFlags{}
	cmd := &cobra.Command{
		Use:   "firewall",
		Short: "Keep ports closed, and open them for one source for a time (nftables)",
		Long: `Keep ports closed to the network, and open them for one source address for
a time, in portkit's own nftables table (inet portkit; --table names
another). Nothing outside that table is changed, ever; 'flush' removes it.

A protected port drops new connections from the network, except from a
source with an opening; the kernel expires openings by itself, and
connections made while a port was open stay up after it closes. Local
processes (the loopback interface) always reach protected ports.

nftables runs every table's input chain: an opening accepts in portkit's
table only, and another table's chain that drops the packet still drops it.
'status' names such chains.

PORT is a number, a service name, a range or a list, with /tcp, /udp, /sctp
or /dccp (tcp when none is given; T: and U: in a list as for scan): 22/tcp,
ssh, 53/udp, 8000-8010, T:22,U:53.

Needs CAP_NET_ADMIN (root). Linux only.`,
		Example: `  portkit firewall protect 22/tcp
  portkit firewall open ssh --from 198.18.0.1 --for 10m
  portkit firewall ls
  portkit firewall status
  portkit firewall flush`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if !validTableName(f.table) {
				return usagef("--table %q: not an nftables table name (a letter or _, then letters, digits, _ . -; at most 64)", f.table)
			}
			return nil
		},
	}
	cmd.PersistentFlags().StringVar(&f.table, "table", firewall.DefaultTable, "portkit's nftables `TABLE` (family inet)")
	cmd.AddCommand(
		newFirewallPorts(e, f, "protect", "Drop new connections to PORT from the network, except opened sources",
			`Protect each PORT: new connections to it from the network are dropped
unless their source has an opening ('portkit firewall open'). Protecting a
protected port changes nothing.`,
			`  portkit firewall protect 22/tcp
  portkit firewall protect ssh 53/udp`,
			func(ctx context.Context, p firewall.Port) (string, error) {
				return fmt.Sprintf("protected %s", p), f.tbl().Protect(ctx, p.Number, p.Proto)
			}),
		newFirewallPorts(e, f, "unprotect", "Stop protecting PORT",
			`Stop protecting each PORT. Its openings stay until they expire, and do
nothing while it is not protected.

Exit status: 1 when no PORT was protected, 3 when some were.`,
			`  portkit firewall unprotect 22/tcp`,
			func(ctx context.Context, p firewall.Port) (string, error) {
				return fmt.Sprintf("unprotected %s", p), f.tbl().Unprotect(ctx, p.Number, p.Proto)
			}),
		newFirewallOpen(e, f),
		newFirewallClose(e, f),
		newFirewallBlock(e, f),
		newFirewallUnblock(e, f),
		newFirewallLs(e, f),
		newFirewallStatus(e, f),
		newFirewallFlush(e, f),
	)
	return cmd
}

// validTableName: nft's identifiers, which every table name portkit makes
// can be written as in nft's own syntax.
func validTableName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, r := range s {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_'
		if !letter && (i == 0 || !(r >= '0' && r <= '9' || r == '.' || r == '-')) {
			return false
		}
	}
	return true
}

// parseFirewallPorts reads PORT arguments: "22/tcp", "ssh", "53/udp",
// "8000-8010/tcp", "22,80". Every argument is read before any is acted on.
func parseFirewallPorts(e *env, args []string) ([]firewall.Port, error) {
	var (
		out []firewall.Port
		reg *registry.Registry
	)
	for _, a := range args {
		spec, protoText := a, ""
		if i := strings.LastIndexByte(a, '/'); i >= 0 {
			spec, protoText = a[:i], a[i+1:]
		}
		proto := registry.TCP
		if protoText != "" {
			p, err := registry.ParseProto(protoText)
			if err != nil || p == registry.AnyProto {
				return nil, usagef("port %q: unknown protocol %q (want tcp, udp, sctp or dccp)", a, protoText)
			}
			proto = p
		}
		var ports []firewall.Port
		switch proto {
		case registry.TCP, registry.UDP:
			if reg == nil {
				reg = firewallRegistry(e)
			}
			// PROTO is the default; T: and U: prefixes in the list say otherwise.
			l, err := portspec.ParsePorts(spec, portspec.PortOptions{Protos: []registry.Proto{proto}, Registry: reg})
			if err != nil {
				return nil, err
			}
			for n, pr := range l.All() {
				ports = append(ports, firewall.Port{Number: n, Proto: pr})
			}
		default:
			// Service names are for TCP and UDP; SCTP and DCCP ports by number.
			r, err := portspec.ParseRange(spec)
			if err != nil {
				return nil, err
			}
			for n := int(r.Lo); n <= int(r.Hi); n++ {
				ports = append(ports, firewall.Port{Number: uint16(n), Proto: proto})
			}
		}
		for _, p := range ports {
			if p.Number == 0 {
				return nil, usagef("port %q: port 0 is not a port a connection is made to", a)
			}
			if len(out) == maxFirewallPorts {
				return nil, usagef("port %q: more than %d ports at once", a, maxFirewallPorts)
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// firewallRegistry is IANA's registry with the local services overlay, as
// lookup reads it; without an overlay, IANA alone.
func firewallRegistry(e *env) *registry.Registry {
	services := registry.ServicesFile
	if v, ok := e.LookupEnv(servicesEnv); ok {
		services = v
	}
	reg, err := registry.Open(registry.Options{Services: services})
	if err != nil {
		return registry.New()
	}
	return reg
}

// parseFrom reads --from.
func parseFrom(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, usagef("--from: say which source address (e.g. --from 198.18.0.1)")
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, usagef("--from %q: not an IP address without a zone", s)
	}
	return a.Unmap(), nil
}

// checkFor checks --for: positive (or 0 where zeroOK), at most a year.
func checkFor(cmd *cobra.Command, d time.Duration, zeroOK bool) error {
	switch {
	case !cmd.Flags().Changed("for") && !zeroOK:
		return usagef("--for: say how long (e.g. --for 30s)")
	case d < 0 || d == 0 && !zeroOK:
		return usagef("--for %v: must be positive", d)
	case d > 365*24*time.Hour:
		return usagef("--for %v: at most a year (8760h)", d)
	}
	return nil
}

// firewallErr says what a library error means to a user: the capability
// missing, an interrupt, or the error itself.
func firewallErr(e *env, err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		e.warnf("interrupted")
		return &exitError{code: ExitInterrupted}
	case errors.Is(err, fs.ErrPermission):
		// A privilege the command needs is the user's to give, as for
		// scan --syn: exit 2.
		return &exitError{code: ExitUsage, err: err}
	case errors.Is(err, firewall.ErrForeignTable):
		return fmt.Errorf("%w (name another with --table)", err)
	}
	return err
}

// applyEach runs do for every item, saying what was done on stderr; an
// item that is not there (ErrNotFound) is a negative answer, any other
// error stops the command.
func applyEach[T any](e *env, items []T, name func(T) string, notThere string, do func(T) (string, error)) error {
	var answered tally
	for _, it := range items {
		done, err := do(it)
		switch {
		case errors.Is(err, firewall.ErrNotFound):
			e.warnf("%s: %s", name(it), notThere)
			answered.add(false)
		case err != nil:
			return firewallErr(e, err)
		default:
			e.warnf("%s", done)
			answered.add(true)
		}
	}
	return answered.err()
}

func newFirewallPorts(e *env, f *firewallFlags, use, short, long, example string, do func(context.Context, firewall.Port) (string, error)) *cobra.Command {
	notThere := "was not protected"
	return &cobra.Command{
		Use:     use + " PORT...",
		Short:   short,
		Long:    long,
		Example: example,
		Args:    needArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			ports, err := parseFirewallPorts(e, args)
			if err != nil {
				return err
			}
			return applyEach(e, ports, firewall.Port.String, notThere, func(p firewall.Port) (string, error) {
				return do(cmd.Context(), p)
			})
		}),
	}
}

func newFirewallOpen(e *env, f *firewallFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "open PORT... --from ADDR --for DURATION",
		Short: "Let one source reach PORT for a time",
		Long: `Let ADDR make new connections to each PORT for DURATION, from now; opening
an open port again starts its time anew. The kernel closes the opening when
the time is up; connections made meanwhile stay up. An opening lets a
source through only where PORT is protected.`,
		Example: `  portkit firewall open 22/tcp --from 198.18.0.1 --for 30s
  portkit firewall open ssh --from 2001:2::1 --for 10m`,
		Args: needArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			src, err := parseFrom(f.from)
			if err != nil {
				return err
			}
			if err := checkFor(cmd, f.dur, false); err != nil {
				return err
			}
			ports, err := parseFirewallPorts(e, args)
			if err != nil {
				return err
			}
			return applyEach(e, ports, firewall.Port.String, "", func(p firewall.Port) (string, error) {
				return fmt.Sprintf("opened %s to %s for %v", p, src, f.dur),
					f.tbl().Open(cmd.Context(), src, p.Number, p.Proto, f.dur)
			})
		}),
	}
	cmd.Flags().StringVar(&f.from, "from", "", "the source `ADDR` let in")
	durationVarP(cmd.Flags(), &f.dur, "for", "", 0, "how long the port stays open (e.g. 30s, 10m)")
	return cmd
}

func newFirewallClose(e *env, f *firewallFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "close PORT... --from ADDR",
		Short: "End a source's opening of PORT now",
		Long: `End ADDR's opening of each PORT now; connections already made stay up.

Exit status: 1 when no PORT was open to ADDR, 3 when some were.`,
		Example: `  portkit firewall close 22/tcp --from 198.18.0.1`,
		Args:    needArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			src, err := parseFrom(f.from)
			if err != nil {
				return err
			}
			ports, err := parseFirewallPorts(e, args)
			if err != nil {
				return err
			}
			name := func(p firewall.Port) string { return p.String() + " from " + src.String() }
			return applyEach(e, ports, name, "was not open", func(p firewall.Port) (string, error) {
				return fmt.Sprintf("closed %s to %s", p, src), f.tbl().Close(cmd.Context(), src, p.Number, p.Proto)
			})
		}),
	}
	cmd.Flags().StringVar(&f.from, "from", "", "the source `ADDR` whose opening ends")
	return cmd
}

// parseAddrs reads ADDR arguments.
func parseAddrs(args []string) ([]netip.Addr, error) {
	out := make([]netip.Addr, 0, len(args))
	for _, a := range args {
		ip, err := netip.ParseAddr(a)
		if err != nil || ip.Zone() != "" {
			return nil, usagef("address %q: not an IP address without a zone", a)
		}
		out = append(out, ip.Unmap())
	}
	return out, nil
}

func newFirewallBlock(e *env, f *firewallFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "block ADDR... [--for DURATION]",
		Short: "Drop every packet from a source, for a time",
		Long: `Drop every packet from each ADDR, its established connections' too, for
DURATION (without --for, until 'unblock' or 'flush'). Blocking again starts
the time anew.`,
		Example: `  portkit firewall block 198.18.0.9 --for 1h
  portkit firewall block 2001:2::9`,
		Args: needArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if err := checkFor(cmd, f.dur, true); err != nil {
				return err
			}
			addrs, err := parseAddrs(args)
			if err != nil {
				return err
			}
			return applyEach(e, addrs, netip.Addr.String, "", func(a netip.Addr) (string, error) {
				done := fmt.Sprintf("blocked %s", a)
				if f.dur > 0 {
					done += fmt.Sprintf(" for %v", f.dur)
				}
				return done, f.tbl().Block(cmd.Context(), a, f.dur)
			})
		}),
	}
	durationVarP(cmd.Flags(), &f.dur, "for", "", 0, "how long the block lasts (default: until unblocked)")
	return cmd
}

func newFirewallUnblock(e *env, f *firewallFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "unblock ADDR...",
		Short: "End a source's block",
		Long: `End each ADDR's block now.

Exit status: 1 when no ADDR was blocked, 3 when some were.`,
		Example: `  portkit firewall unblock 198.18.0.9`,
		Args:    needArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			addrs, err := parseAddrs(args)
			if err != nil {
				return err
			}
			return applyEach(e, addrs, netip.Addr.String, "was not blocked", func(a netip.Addr) (string, error) {
				return fmt.Sprintf("unblocked %s", a), f.tbl().Unblock(cmd.Context(), a)
			})
		}),
	}
}

// firewallPortRow is a port as --json writes it.
type firewallPortRow struct {
	Port     uint16 `json:"port"`
	Protocol string `json:"protocol"`
	Service  string `json:"service,omitempty"`
}

type openingRow struct {
	Source string `json:"source"`
	firewallPortRow
	LeftMS    int64 `json:"left_ms"`
	TimeoutMS int64 `json:"timeout_ms"`
}

type blockedRow struct {
	Source    string `json:"source"`
	LeftMS    int64  `json:"left_ms,omitempty"` // absent: no expiry
	TimeoutMS int64  `json:"timeout_ms,omitempty"`
}

type firewallLsRow struct {
	Table     string            `json:"table"`
	Present   bool              `json:"present"`
	Protected []firewallPortRow `json:"protected"`
	Openings  []openingRow      `json:"openings"`
	Blocked   []blockedRow      `json:"blocked"`
}

func newFirewallPortRow(reg *registry.Registry, p firewall.Port) firewallPortRow {
	return firewallPortRow{Port: p.Number, Protocol: p.Proto.String(), Service: reg.PortName(p.Number, p.Proto)}
}

func newFirewallLsRow(reg *registry.Registry, tbl firewall.Table, st firewall.State) firewallLsRow {
	row := firewallLsRow{Table: tbl.String(), Present: st.Present,
		Protected: []firewallPortRow{}, Openings: []openingRow{}, Blocked: []blockedRow{}}
	for _, p := range st.Protected {
		row.Protected = append(row.Protected, newFirewallPortRow(reg, p))
	}
	for _, o := range st.Openings {
		row.Openings = append(row.Openings, openingRow{Source: o.Source.String(), firewallPortRow: newFirewallPortRow(reg, o.Port),
			LeftMS: o.Left.Milliseconds(), TimeoutMS: o.Timeout.Milliseconds()})
	}
	for _, b := range st.Blocked {
		row.Blocked = append(row.Blocked, blockedRow{Source: b.Source.String(), LeftMS: b.Left.Milliseconds(), TimeoutMS: b.Timeout.Milliseconds()})
	}
	return row
}

func newFirewallLs(e *env, f *firewallFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "Show protected ports, openings and blocked sources, with the time they have left",
		Long: `Show what portkit's table holds: the protected ports, the openings (source,
port, time left of the time given) and the blocked sources.

Exit status: 0 when the table holds something, 1 when it is empty or absent.`,
		Example: `  portkit firewall ls
  portkit firewall ls --json`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			st, err := f.tbl().List(cmd.Context())
			if err != nil {
				return firewallErr(e, err)
			}
			row := newFirewallLsRow(firewallRegistry(e), f.tbl(), st)
			if err := printFirewallLs(e, row); err != nil {
				return err
			}
			if len(st.Protected)+len(st.Openings)+len(st.Blocked) == 0 {
				if !st.Present {
					e.warnf("no table %s: nothing protected, open or blocked", f.tbl())
				} else {
					e.warnf("table %s holds nothing", f.tbl())
				}
				return &exitError{code: ExitNegative}
			}
			return nil
		}),
	}
}

func printFirewallLs(e *env, row firewallLsRow) error {
	p := e.printer()
	if p.Format() == output.JSON {
		return p.JSON(row)
	}
	if len(row.Protected)+len(row.Openings)+len(row.Blocked) == 0 {
		return nil
	}
	t := p.Table("WHAT", "SOURCE", "PORT", "SERVICE", "LEFT")
	for _, r := range row.Protected {
		t.StyledRow(output.Cell{Text: "protected", Style: output.Bold}, output.Cell{Text: "-"},
			output.Cell{Text: portText(r)}, output.Cell{Text: orDash(r.Service)}, output.Cell{Text: "-"})
	}
	for _, r := range row.Openings {
		t.StyledRow(output.Cell{Text: "open", Style: output.Green}, output.Cell{Text: r.Source},
			output.Cell{Text: portText(r.firewallPortRow)}, output.Cell{Text: orDash(r.Service)},
			output.Cell{Text: leftText(r.LeftMS, r.TimeoutMS)})
	}
	for _, r := range row.Blocked {
		t.StyledRow(output.Cell{Text: "blocked", Style: output.Red}, output.Cell{Text: r.Source},
			output.Cell{Text: "-"}, output.Cell{Text: "-"}, output.Cell{Text: leftText(r.LeftMS, r.TimeoutMS)})
	}
	return t.Flush()
}

func portText(r firewallPortRow) string { return strconv.Itoa(int(r.Port)) + "/" + r.Protocol }

// leftText is "29s of 30s", or "no expiry".
func leftText(leftMS, timeoutMS int64) string {
	if timeoutMS == 0 {
		return "no expiry"
	}
	// Seconds once there are ten of them; tenths below.
	round := func(ms int64) time.Duration {
		d := time.Duration(ms) * time.Millisecond
		if d >= 10*time.Second {
			return d.Round(time.Second)
		}
		return d.Round(100 * time.Millisecond)
	}
	return fmt.Sprintf("%v of %v", round(leftMS), round(timeoutMS))
}

type conflictRow struct {
	Family   string   `json:"family"`
	Table    string   `json:"table"`
	Chain    string   `json:"chain"`
	Priority int32    `json:"priority"`
	Policy   string   `json:"policy"`
	Rule     uint64   `json:"rule_handle,omitempty"`
	Reason   string   `json:"reason"`
	Ports    []string `json:"ports"`
}

type firewallStatusRow struct {
	Table     string            `json:"table"`
	Present   bool              `json:"present"`
	Hook      string            `json:"hook"`
	Protected []firewallPortRow `json:"protected"`
	Openings  int               `json:"openings"`
	Blocked   int               `json:"blocked"`
	Conflicts []conflictRow     `json:"conflicts"`
}

func newFirewallStatus(e *env, f *firewallFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Say whether portkit's table is in place, and name other tables' chains that undo it",
		Long: `Say whether portkit's table is in place and what it holds, and name the
other tables' input chains that would drop packets to a protected port
whatever portkit opens (nftables runs every table's chain: an accept in one
does not undo a drop in another). Other tables are read, never changed.

A chain is named when its policy is drop and no rule of it accepts the port
by port alone, or when one of its rules drops or rejects the port (or every
port) without matching addresses. Jumps are not followed; legacy iptables
is not read.

Exit status: 0 when nothing undoes portkit's table, 1 when a chain does.`,
		Example: `  portkit firewall status
  portkit firewall status --json`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			rep, err := f.tbl().Status(cmd.Context())
			if err != nil {
				return firewallErr(e, err)
			}
			reg := firewallRegistry(e)
			row := firewallStatusRow{Table: f.tbl().String(), Present: rep.Present, Hook: "input, priority filter - 1",
				Protected: []firewallPortRow{}, Openings: len(rep.Openings), Blocked: len(rep.Blocked), Conflicts: []conflictRow{}}
			for _, p := range rep.Protected {
				row.Protected = append(row.Protected, newFirewallPortRow(reg, p))
			}
			for _, c := range rep.Conflicts {
				cr := conflictRow{Family: c.Family, Table: c.Table, Chain: c.Chain, Priority: c.Priority, Policy: c.Policy,
					Rule: c.Rule, Reason: c.Reason, Ports: []string{}}
				for _, p := range c.Ports {
					cr.Ports = append(cr.Ports, p.String())
				}
				row.Conflicts = append(row.Conflicts, cr)
			}
			if err := printFirewallStatus(e, row); err != nil {
				return err
			}
			if len(rep.Conflicts) > 0 {
				return &exitError{code: ExitNegative}
			}
			return nil
		}),
	}
}

func printFirewallStatus(e *env, row firewallStatusRow) error {
	p := e.printer()
	if p.Format() == output.JSON {
		return p.JSON(row)
	}
	var b strings.Builder
	if row.Present {
		var ports []string
		for _, r := range row.Protected {
			ports = append(ports, portText(r))
		}
		fmt.Fprintf(&b, "table %s: in place (hook %s)\n", row.Table, row.Hook)
		fmt.Fprintf(&b, "protected: %s\n", orDash(strings.Join(ports, " ")))
		fmt.Fprintf(&b, "openings: %d, blocked sources: %d\n", row.Openings, row.Blocked)
	} else {
		fmt.Fprintf(&b, "table %s: absent (nothing protected, open or blocked)\n", row.Table)
	}
	if len(row.Conflicts) == 0 {
		b.WriteString("other tables: nothing on the input hook drops what portkit opens\n")
	}
	for _, c := range row.Conflicts {
		fmt.Fprintf(&b, "conflict: table %s %s chain %s (priority %d, policy %s)", c.Family, c.Table, c.Chain, c.Priority, c.Policy)
		if c.Rule != 0 {
			fmt.Fprintf(&b, " rule handle %d", c.Rule)
		}
		fmt.Fprintf(&b, ": %s", c.Reason)
		if len(c.Ports) > 0 {
			fmt.Fprintf(&b, "; drops %s whatever portkit opens", strings.Join(c.Ports, " "))
		} else {
			b.WriteString("; would drop any port portkit protects")
		}
		b.WriteString("\n")
	}
	_, err := fmt.Fprint(e.Out, output.Printable(b.String()))
	return err
}

func newFirewallFlush(e *env, f *firewallFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "flush",
		Short: "Remove portkit's table, and nothing else",
		Long: `Remove portkit's table: every protection, opening and block ends at once.
No other table is touched. A table of the name that portkit did not make is
left alone (an error). Without a table there is nothing to do (exit 0).`,
		Example: `  portkit firewall flush
  portkit firewall flush --table knock`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			removed, err := f.tbl().Flush(cmd.Context())
			if err != nil {
				return firewallErr(e, err)
			}
			if removed {
				e.warnf("removed table %s", f.tbl())
			} else {
				e.warnf("no table %s: nothing to remove", f.tbl())
			}
			return nil
		}),
	}
}
