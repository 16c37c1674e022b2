package cli

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portkit/portkit/evict"
	"github.com/portkit/portkit/internal/output"
	"github.com/portkit/portkit/sockets"
)

// killRow is one port's eviction as --json writes it.
type killRow struct {
	Port       uint16       `json:"port"`
	PortEnd    uint16       `json:"port_end,omitempty"` // a range's last port
	Service    string       `json:"service,omitempty"`  // the name the ports were given by
	Protocol   string       `json:"protocol"`
	HeldPorts  []uint16     `json:"held_ports"` // the ports listened on when kill began`
	Holders    []procRow    `json:"holders"`
	HiddenUIDs []uint32     `json:"hidden_uids,omitempty"`
	Orphans    int          `json:"sockets_without_process,omitempty"`
	Actions    []actionRow  `json:"actions"`
	WasFree    bool         `json:"was_free"`
	Free       bool         `json:"free"`
	DryRun     bool         `json:"dry_run,omitempty"`
	report     evict.Report `json:"-"`
}

type actionRow struct {
	PID    int    `json:"pid"`
	Name   string `json:"name"`
	Signal string `json:"signal"`
	Sent   bool   `json:"sent"`
	Error  string `json:"error,omitempty"`
	// Refused: portkit never signals this process (init, itself, a
	// service manager), whatever the signal.
	Refused bool `json:"refused,omitempty"`
}

// maxKillRange is the widest range kill signals in without --yes: a slip
// (1-65535 for 1-6553) would stop every server on the machine.
const maxKillRange = 1024

func newKill(e *env) *cobra.Command {
	var (
		sigName            string
		timeout            time.Duration
		force, dryRun, yes bool
	)
	cmd := &cobra.Command{
		Use:   "kill PORT[/PROTO]...",
		Short: "Free a port: signal the processes listening on it, then check it is free",
		Long: `Signal every process holding each PORT's listening socket (TCP) or bound
socket (UDP) — a pre-forking server's master and each of its workers, never
the clients connected to it — wait until the port is free, and say whether
it is. With --force, holders still there after --timeout get SIGKILL.

PORT is a port (3000, or :3000), a range (8000-8005: every holder of any of
its ports is signalled at once) or a service name from the IANA registry
(postgresql: its TCP and UDP ports). /PROTO (tcp or udp) narrows it. A
range of more than 1024 ports needs --yes, unless --dry-run. Port 0 is
refused. --dry-run lists the same processes that who shows.

A process is signalled only if it is still the one that was found: its
start time is checked again, and on Linux the signal goes through a pidfd,
so a reused PID is never hit. PID 1, service managers (socket activation)
and portkit itself are never signalled, with --force or without, and kill
says so.

Exit status: 0 when every PORT is free afterwards (or, with --dry-run, has
holders to signal), 1 when none is, 3 for a mix.`,
		Example: `  portkit kill 3000
  portkit kill 8080 8443 --force
  portkit kill 53/udp --signal HUP --timeout 2s
  portkit kill 8000-8005 -n
  portkit kill postgresql/tcp
  portkit kill 3000 --dry-run --json`,
		Args: needArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			sig, err := parseSignal(sigName)
			if err != nil {
				return err
			}
			if timeout <= 0 {
				return usagef("--timeout %v: must be positive", timeout)
			}
			ports, err := parsePortArgs(args, newSocketView().reg)
			if err != nil {
				return err
			}
			for _, pa := range ports {
				for _, span := range pa.spans {
					if n := span.size(); n > maxKillRange && !yes && !dryRun {
						return badArg(pa.input, "%d ports: kill signals every process listening on any of them; "+
							"add --yes to mean it, or --dry-run to see them first (more than %d ports need --yes)", n, maxKillRange)
					}
				}
			}
			var rows []killRow
			var answered tally
			for _, pa := range ports {
				ok := true
				for _, span := range pa.spans {
					t := evict.Target{Port: span.lo, Proto: span.proto}
					if span.hi != span.lo {
						t.PortEnd = span.hi
					}
					rep, err := evict.Port(cmd.Context(), t, evict.Options{Signal: sig, Timeout: timeout, Force: force, DryRun: dryRun})
					if errors.Is(err, errors.ErrUnsupported) {
						return &exitError{code: ExitNegative, err: err}
					}
					if err != nil {
						// What was done so far is said before why it stopped
						// (an interrupt, say): signals may have been sent.
						if len(rep.Holders) > 0 || len(rep.Actions) > 0 {
							rows = append(rows, newKillRow(rep, pa.name, dryRun))
						}
						printKill(e, rows)
						return fmt.Errorf("%s: %w", pa.input, err)
					}
					rows = append(rows, newKillRow(rep, pa.name, dryRun))
					ok = ok && (rep.Free || dryRun && signalable(rep) && len(rep.HiddenUIDs) == 0 && rep.Orphans == 0)
				}
				answered.add(ok)
			}
			if err := printKill(e, rows); err != nil {
				return err
			}
			return answered.err()
		}),
	}
	cmd.Flags().StringVarP(&sigName, "signal", "s", "TERM", "the first `SIGNAL` to send")
	durationVarP(cmd.Flags(), &timeout, "timeout", "t", 5*time.Second, "how long to wait for the port to be free")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "send KILL to holders still there after --timeout")
	cmd.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "show what would be signalled, signal nothing")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, fmt.Sprintf("signal in a range of more than %d ports", maxKillRange))
	return cmd
}

// signalable reports whether rep found holders and none that kill refuses.
func signalable(rep evict.Report) bool {
	for _, h := range rep.Holders {
		if evict.Refusal(h) != nil {
			return false
		}
	}
	return len(rep.Holders) > 0
}

func newKillRow(rep evict.Report, service string, dryRun bool) killRow {
	r := killRow{Port: rep.Target.Port, PortEnd: rep.Target.PortEnd, Service: service, Protocol: protoLabel(rep.Target.Proto),
		HeldPorts: []uint16{}, Holders: []procRow{}, Actions: []actionRow{},
		HiddenUIDs: rep.HiddenUIDs, Orphans: rep.Orphans, WasFree: rep.WasFree, Free: rep.Free, DryRun: dryRun, report: rep}
	for _, en := range rep.Sockets {
		if p := en.Local.Port(); !slices.Contains(r.HeldPorts, p) {
			r.HeldPorts = append(r.HeldPorts, p)
		}
	}
	slices.Sort(r.HeldPorts)
	for _, p := range rep.Holders {
		r.Holders = append(r.Holders, newProcRow(p))
	}
	for _, a := range rep.Actions {
		ar := actionRow{PID: a.Process.PID, Name: a.Process.Name, Signal: signalName(a.Signal), Sent: a.Err == nil}
		if a.Err != nil {
			ar.Error = a.Err.Error()
			var re *evict.RefusedError
			ar.Refused = errors.As(a.Err, &re)
		}
		r.Actions = append(r.Actions, ar)
	}
	return r
}

// label names the row's target: "3000/tcp+udp", "8000-8005/tcp",
// "postgresql (5432/tcp+udp)".
func (r killRow) label() string {
	s := portSpan{lo: r.Port, hi: max(r.Port, r.PortEnd), proto: r.report.Target.Proto}.String()
	if r.Service != "" {
		s = r.Service + " (" + s + ")"
	}
	return s
}

// portsOf is what the PORT column says of holder pid: the ports of the
// row's target that it held, "8001,8003/tcp+udp"; the target's where none.
func (r killRow) portsOf(pid int) string {
	var ports []uint16
	for _, en := range r.report.Sockets {
		p := en.Local.Port()
		if slices.ContainsFunc(en.Processes, func(pr sockets.Process) bool { return pr.PID == pid }) && !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	if len(ports) == 0 {
		return portSpan{lo: r.Port, hi: max(r.Port, r.PortEnd), proto: r.report.Target.Proto}.String()
	}
	slices.Sort(ports)
	var s []string
	for _, p := range ports {
		s = append(s, strconv.Itoa(int(p)))
	}
	return strings.Join(s, ",") + "/" + r.Protocol
}

func printKill(e *env, rows []killRow) error {
	p := e.printer()
	if p.Format() == output.JSON {
		return p.JSON(rows)
	}
	t := p.Table("PORT", "PID", "USER", "PROCESS", "SIGNAL", "RESULT")
	n := 0
	for _, r := range rows {
		if r.DryRun {
			for i, h := range r.Holders {
				result := "would be signalled"
				if re := evict.Refusal(r.report.Holders[i]); re != nil {
					result = re.Error()
				}
				t.Row(r.portsOf(h.PID), strconv.Itoa(h.PID), h.User, h.Name, "-", result)
				n++
			}
		}
		for _, a := range r.Actions {
			result, style := "sent", output.Green
			if !a.Sent {
				result, style = a.Error, output.Red
			}
			t.StyledRow(output.Cell{Text: r.portsOf(a.PID)}, output.Cell{Text: strconv.Itoa(a.PID)},
				output.Cell{Text: userOf(r, a.PID)}, output.Cell{Text: a.Name}, output.Cell{Text: a.Signal},
				output.Cell{Text: result, Style: style})
			n++
		}
	}
	if n > 0 {
		if err := t.Flush(); err != nil {
			return err
		}
	}
	for _, r := range rows {
		if _, err := fmt.Fprintln(e.Out, killSummary(r)); err != nil {
			return err
		}
	}
	return nil
}

// killSummary is the line that says how a row's target ended.
func killSummary(r killRow) string {
	label := r.label()
	var line string
	switch {
	case r.WasFree && (r.PortEnd > r.Port || r.Service != ""):
		line = label + ": already free, nothing listens on any of its ports"
	case r.WasFree:
		line = label + ": already free, nothing listens on it"
	case r.DryRun:
		line = fmt.Sprintf("%s: held by %d process(es); nothing signalled (--dry-run)", label, len(r.Holders))
	case r.Free:
		line = label + ": free"
	case len(r.Holders) == 0:
		line = label + ": still held; nothing signalled"
	default:
		line = label + ": still held"
		// Why: the refusals, each once (TERM and then KILL refuse alike).
		var said []int
		sent := false
		for _, a := range r.Actions {
			sent = sent || a.Sent
			if a.Refused && !slices.Contains(said, a.PID) {
				said = append(said, a.PID)
				line += "; " + a.Error
			}
		}
		// KILL is worth suggesting only for a holder that a signal
		// reached and that outlived it.
		if sent && !hasKill(r) {
			line += "; --force sends KILL"
		}
	}
	for _, uid := range r.HiddenUIDs {
		line += fmt.Sprintf("; a holder owned by uid %d is hidden%s", uid, hiddenWhy())
	}
	if r.Orphans > 0 {
		line += fmt.Sprintf("; %d socket(s) held by no process (the kernel's own, or in flight between processes)", r.Orphans)
	}
	return line
}

func userOf(r killRow, pid int) string {
	for _, h := range r.Holders {
		if h.PID == pid {
			return h.User
		}
	}
	return "-"
}

func hasKill(r killRow) bool {
	for _, a := range r.Actions {
		if a.Signal == "KILL" {
			return true
		}
	}
	return false
}
