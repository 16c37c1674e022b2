package cli

import (
	"errors"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/portkit/portkit/internal/output"
	"github.com/portkit/portkit/sockets"
)

func newWho(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "who PORT[/PROTO]...",
		Short: "Show the processes holding a port",
		Long: `Show who holds each PORT: every process with a listening TCP socket or a
bound UDP socket on it, one row per process, with pid, user, command line,
start time and container. A pre-forking server (nginx, gunicorn) shows its
master first, then each worker, as ss -tlnp does.

PORT is a port (3000, or :3000 as ss and lsof write it), a range
(3000-3010) or a service name from the IANA registry (postgresql: its TCP
and UDP ports, as the registry gives them). /PROTO (tcp or udp) narrows
the search. Port 0 is refused: nothing listens there.

A socket whose process cannot be seen without root is still shown, with
its owner, and the message says so: never an empty answer when the
kernel says the port is taken.

Exit status: 0 when every PORT is held (a range or a name: any of its
ports), 1 when every one is free, 3 for a mix.`,
		Example: `  portkit who 3000
  portkit who :8080
  portkit who 53/udp 5432/tcp
  portkit who postgresql
  portkit who 3000-3010
  portkit who 8080 --json`,
		Args: needArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			v := newSocketView()
			ports, err := parsePortArgs(args, v.reg)
			if err != nil {
				return err
			}
			var (
				rows     []socketRow
				all      []sockets.Entry
				answered tally
			)
			for _, pa := range ports {
				held := false
				for _, span := range pa.spans {
					entries, err := sockets.List(cmd.Context(), sockets.Query{
						Protos: span.proto, Port: span.lo, PortEnd: span.hi, WithProcesses: true, // the sockets that hold the ports
					})
					if errors.Is(err, errors.ErrUnsupported) {
						return &exitError{code: ExitNegative, err: err}
					}
					if err != nil {
						return err
					}
					held = held || len(entries) > 0
					for _, en := range entries {
						rows = append(rows, v.row(en))
					}
					all = append(all, entries...)
				}
				if !held {
					e.warnf("%s: free, %s", pa.label(), freeWhy(pa))
				}
				answered.add(held)
			}
			hiddenNote(e, v, all)
			if err := printWho(e, rows); err != nil {
				return err
			}
			return answered.err()
		}),
	}
	return cmd
}

// freeWhy words a free argument: "nothing listens on it", or on any of a
// range's ports.
func freeWhy(pa portArg) string {
	if len(pa.spans) > 1 || pa.spans[0].size() > 1 {
		return "nothing listens on any of its ports"
	}
	return "nothing listens on it"
}

func printWho(e *env, rows []socketRow) error {
	p := e.printer()
	if p.Format() == output.JSON {
		if rows == nil {
			rows = []socketRow{}
		}
		return p.JSON(rows)
	}
	if len(rows) == 0 {
		return nil
	}
	t := p.Table("PROTO", "LOCAL", "PID", "USER", "PROCESS", "STARTED", "CONTAINER", "COMMAND")
	for _, r := range rows {
		if len(r.Processes) == 0 {
			_, names := pidsText(r)
			t.StyledRow(output.Cell{Text: r.Protocol}, output.Cell{Text: r.Local, Style: output.Bold},
				output.Cell{Text: "-"}, output.Cell{Text: r.User}, output.Cell{Text: names, Style: output.Dim},
				output.Cell{Text: "-"}, output.Cell{Text: "-"}, output.Cell{Text: "-"})
			continue
		}
		for _, pr := range r.Processes {
			container := "-"
			if pr.Container != "" {
				container = pr.Container[:min(12, len(pr.Container))]
			}
			t.StyledRow(output.Cell{Text: r.Protocol}, output.Cell{Text: r.Local, Style: output.Bold},
				output.Cell{Text: strconv.Itoa(pr.PID)}, output.Cell{Text: pr.User}, output.Cell{Text: pr.Name, Style: output.Bold},
				output.Cell{Text: pr.Started.Local().Format("2006-01-02 15:04:05")}, output.Cell{Text: container},
				output.Cell{Text: orDash(strings.Join(pr.Cmdline, " "))})
		}
	}
	return t.Flush()
}
