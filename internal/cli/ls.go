package cli

import (
	"cmp"
	"errors"
	"slices"

	"github.com/spf13/cobra"

	"github.com/portkit/portkit/internal/output"
	"github.com/portkit/portkit/portspec"
	"github.com/portkit/portkit/sockets"
)

func newLs(e *env) *cobra.Command {
	var (
		all, listening, tcp, udp, v4, v6 bool
		procs, noProcs                   bool
		portIn                           string
	)
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List listening TCP and bound UDP sockets with their processes",
		Long: `List this machine's listening TCP sockets and bound UDP sockets, IPv4 and
IPv6, with every process holding each (pids, names, user) and the port's
service name. -a lists every state, established connections included.

The flags ss users type first work as in ss, alone or bundled (-tlnp,
-tulpn, -ulnp): -t TCP, -u UDP (both, or neither, mean both), -4 IPv4,
-6 IPv6 (both, or neither, mean both), -l listening sockets (the default;
-l with -a is refused), -a every state. -n and -p are accepted and change
nothing: addresses and ports are always shown as numbers (the SERVICE
column adds the name), and processes are always shown (--no-processes
leaves them out; with -p it is refused).

A socket shared by several processes (a pre-forking server's master and
workers) lists every pid, the master first. Without root, other users'
processes cannot be seen: their sockets are listed with their owner and
marked (hidden).`,
		Example: `  portkit ls
  portkit ls -tlnp
  portkit ls -tulpn
  portkit ls --tcp -4
  portkit ls -a --port 5432
  portkit ls --port 8000-8100
  portkit ls --json`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			switch {
			case all && listening:
				return usagef("-l/--listening and -a/--all: -l lists listening sockets only, -a every state; give one")
			case procs && noProcs:
				return usagef("-p/--processes and --no-processes: give one")
			}
			// Without -a, what ss -tuln shows: no connected UDP socket,
			// which a table without its peer would only puzzle.
			q := sockets.Query{WithProcesses: !noProcs, States: sockets.Listen | sockets.Close}
			if tcp {
				q.Protos |= sockets.TCP
			}
			if udp {
				q.Protos |= sockets.UDP
			}
			if v4 {
				q.Families |= sockets.IPv4
			}
			if v6 {
				q.Families |= sockets.IPv6
			}
			if all {
				q.States = sockets.AllStates
			}
			if cmd.Flags().Changed("port") {
				r, err := portspec.ParseRange(portIn)
				if err != nil {
					return flagValueError("--port", portIn, err)
				}
				if r.Lo == 0 {
					return usagef("--port %q: port 0 is not a port anything listens on", portIn)
				}
				q.Port, q.PortEnd = r.Lo, r.Hi
			}
			entries, err := sockets.List(cmd.Context(), q)
			if errors.Is(err, errors.ErrUnsupported) {
				return &exitError{code: ExitNegative, err: err}
			}
			if err != nil {
				return err
			}
			slices.SortStableFunc(entries, func(a, b sockets.Entry) int {
				return cmp.Or(cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Local.Port(), b.Local.Port()),
					a.Local.Addr().Compare(b.Local.Addr()), cmp.Compare(a.Remote.Port(), b.Remote.Port()))
			})
			return printLs(e, newSocketView(), entries, all)
		}),
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "every state, not only listening")
	f.BoolVarP(&listening, "listening", "l", false, "listening sockets only (the default), as ss -l")
	f.BoolVarP(&tcp, "tcp", "t", false, "TCP (with -u: both)")
	f.BoolVarP(&udp, "udp", "u", false, "UDP (with -t: both)")
	f.BoolVarP(&v4, "ipv4", "4", false, "IPv4 (with -6: both)")
	f.BoolVarP(&v6, "ipv6", "6", false, "IPv6 (with -4: both)")
	// ss's -n turns off name resolution, which ls never does.
	f.BoolP("numeric", "n", false, "accepted for ss users: addresses and ports are always numbers")
	f.BoolVarP(&procs, "processes", "p", false, "accepted for ss users: processes are always shown")
	f.StringVar(&portIn, "port", "", "only sockets on local `PORT` or range LO-HI")
	f.BoolVar(&noProcs, "no-processes", false, "do not look up processes (faster)")
	return cmd
}

// printLs turns each entry into a row as it prints it: a listing of every
// socket on a busy host is tens of thousands of rows, not worth holding twice.
func printLs(e *env, v *socketView, entries []sockets.Entry, all bool) error {
	hiddenNote(e, v, entries)
	p := e.printer()
	if p.Format() == output.JSON {
		return p.JSONArray(len(entries), func(i int) any { return v.row(entries[i]) })
	}
	head := []string{"PROTO", "LOCAL", "STATE", "SERVICE", "PID", "USER", "PROCESS"}
	if all {
		head = []string{"PROTO", "LOCAL", "REMOTE", "STATE", "SERVICE", "PID", "USER", "PROCESS"}
	}
	t := p.Table(head...)
	for _, en := range entries {
		r := v.row(en)
		pids, names := pidsText(r)
		cells := []output.Cell{{Text: r.Protocol}, {Text: r.Local, Style: output.Bold}}
		if all {
			cells = append(cells, output.Cell{Text: orDash(r.Remote)})
		}
		nameStyle := output.Plain
		if r.Hidden {
			nameStyle = output.Dim
		}
		cells = append(cells, output.Cell{Text: r.State}, output.Cell{Text: orDash(r.Service)},
			output.Cell{Text: pids}, output.Cell{Text: r.User}, output.Cell{Text: names, Style: nameStyle})
		t.StyledRow(cells...)
	}
	return t.Flush()
}
