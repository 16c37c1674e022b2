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
	return &cobra.Command{
		Use:   "who PORT[/PROTO]...",
		Short: "Show the processes holding a port",
		Long: `Show who holds each PORT: the processes with a listening TCP socket or a
bound UDP socket on it, with pid, user, command line, start time and
container. PROTO (tcp or udp) narrows the search.

A socket whose process cannot be seen without root is still shown, with
its owner, and the message says so: never an empty answer when the
kernel says the port is taken.

Exit status: 0 when every PORT is held, 1 when every one is free, 3 for a
mix.`,
		Example: `  portkit who 3000
  portkit who 53/udp 5432/tcp
  portkit who 8080 --json`,
		Args: cobra.MinimumNArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			ports, err := parsePortArgs(args)
			if err != nil {
				return err
			}
			var (
				rows []socketRow
				all  []sockets.Entry
			)
			v := newSocketView()
			var answered tally
			for _, pa := range ports {
				entries, err := sockets.List(cmd.Context(), sockets.Query{
					Protos: pa.proto, Port: pa.port, WithProcesses: true, // the sockets that hold the port
				})
				if errors.Is(err, errors.ErrUnsupported) {
					return &exitError{code: ExitNegative, err: err}
				}
				if err != nil {
					return err
				}
				if len(entries) == 0 {
					e.warnf("%s: free, nothing listens on it", pa.input)
				}
				answered.add(len(entries) > 0)
				for _, en := range entries {
					rows = append(rows, v.row(en))
				}
				all = append(all, entries...)
			}
			hiddenNote(e, v, all)
			if err := printWho(e, rows); err != nil {
				return err
			}
			return answered.err()
		}),
	}
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
