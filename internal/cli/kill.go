package cli

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/portkit/portkit/evict"
	"github.com/portkit/portkit/internal/output"
)

// killRow is one port's eviction as --json writes it.
type killRow struct {
	Port       uint16       `json:"port"`
	Protocol   string       `json:"protocol"`
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
}

func newKill(e *env) *cobra.Command {
	var (
		sigName       string
		timeout       time.Duration
		force, dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "kill PORT[/PROTO]...",
		Short: "Free a port: signal the processes listening on it, then check it is free",
		Long: `Signal the processes holding each PORT's listening socket (TCP) or bound
socket (UDP) — never the clients connected to it — wait until the port is
free, and say whether it is. With --force, holders still there after
--timeout get SIGKILL.

A process is signalled only if it is still the one that was found: its
start time is checked again, and on Linux the signal goes through a pidfd,
so a reused PID is never hit. PID 1 and portkit itself are refused.

Exit status: 0 when every PORT is free afterwards (or, with --dry-run, has
holders to signal), 1 when none is, 3 for a mix.`,
		Example: `  portkit kill 3000
  portkit kill 8080 8443 --force
  portkit kill 53/udp --signal HUP --timeout 2s
  portkit kill 3000 --dry-run --json`,
		Args: cobra.MinimumNArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			sig, err := parseSignal(sigName)
			if err != nil {
				return err
			}
			if timeout <= 0 {
				return &exitError{code: ExitUsage, err: fmt.Errorf("--timeout %v: must be positive", timeout)}
			}
			ports, err := parsePortArgs(args)
			if err != nil {
				return err
			}
			var rows []killRow
			var answered tally
			for _, pa := range ports {
				t := evict.Target{Port: pa.port, Proto: pa.proto}
				rep, err := evict.Port(cmd.Context(), t, evict.Options{Signal: sig, Timeout: timeout, Force: force, DryRun: dryRun})
				if errors.Is(err, errors.ErrUnsupported) {
					return &exitError{code: ExitNegative, err: err}
				}
				if err != nil {
					// What was done so far is said before why it stopped
					// (an interrupt, say): signals may have been sent.
					if len(rep.Holders) > 0 || len(rep.Actions) > 0 {
						rows = append(rows, newKillRow(rep, dryRun))
					}
					printKill(e, rows)
					return fmt.Errorf("%s: %w", pa.input, err)
				}
				row := newKillRow(rep, dryRun)
				rows = append(rows, row)
				answered.add(rep.Free || dryRun && len(rep.Holders) > 0 && len(rep.HiddenUIDs) == 0 && rep.Orphans == 0)
			}
			if err := printKill(e, rows); err != nil {
				return err
			}
			return answered.err()
		}),
	}
	cmd.Flags().StringVarP(&sigName, "signal", "s", "TERM", "the first `SIGNAL` to send")
	cmd.Flags().DurationVarP(&timeout, "timeout", "t", 5*time.Second, "how long to wait for the port to be free")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "send KILL to holders still there after --timeout")
	cmd.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "show what would be signalled, signal nothing")
	return cmd
}

func newKillRow(rep evict.Report, dryRun bool) killRow {
	r := killRow{Port: rep.Target.Port, Protocol: "tcp+udp", Holders: []procRow{}, Actions: []actionRow{},
		HiddenUIDs: rep.HiddenUIDs, Orphans: rep.Orphans, WasFree: rep.WasFree, Free: rep.Free, DryRun: dryRun, report: rep}
	if rep.Target.Proto != 0 {
		r.Protocol = rep.Target.Proto.String()
	}
	for _, p := range rep.Holders {
		r.Holders = append(r.Holders, newProcRow(p))
	}
	for _, a := range rep.Actions {
		ar := actionRow{PID: a.Process.PID, Name: a.Process.Name, Signal: signalName(a.Signal), Sent: a.Err == nil}
		if a.Err != nil {
			ar.Error = a.Err.Error()
		}
		r.Actions = append(r.Actions, ar)
	}
	return r
}

func printKill(e *env, rows []killRow) error {
	p := e.printer()
	if p.Format() == output.JSON {
		return p.JSON(rows)
	}
	t := p.Table("PORT", "PID", "USER", "PROCESS", "SIGNAL", "RESULT")
	n := 0
	for _, r := range rows {
		port := strconv.Itoa(int(r.Port)) + "/" + r.Protocol
		if r.DryRun {
			for _, h := range r.Holders {
				t.Row(port, strconv.Itoa(h.PID), h.User, h.Name, "-", "would be signalled")
				n++
			}
		}
		for _, a := range r.Actions {
			result, style := "sent", output.Green
			if !a.Sent {
				result, style = a.Error, output.Red
			}
			t.StyledRow(output.Cell{Text: port}, output.Cell{Text: strconv.Itoa(a.PID)},
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
		port := strconv.Itoa(int(r.Port)) + "/" + r.Protocol
		var line string
		switch {
		case r.WasFree:
			line = port + ": already free, nothing listens on it"
		case r.DryRun:
			line = fmt.Sprintf("%s: held by %d process(es); nothing signalled (--dry-run)", port, len(r.Holders))
		case r.Free:
			line = port + ": free"
		case len(r.Holders) == 0:
			line = port + ": still held; nothing signalled"
		default:
			line = port + ": still held"
			if !hasKill(r) {
				line += "; --force sends KILL"
			}
		}
		for _, uid := range r.HiddenUIDs {
			line += fmt.Sprintf("; a holder owned by uid %d is hidden%s", uid, hiddenWhy())
		}
		if r.Orphans > 0 {
			line += fmt.Sprintf("; %d socket(s) held by no process (the kernel's own, or in flight between processes)", r.Orphans)
		}
		if _, err := fmt.Fprintln(e.Out, line); err != nil {
			return err
		}
	}
	return nil
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
