package cli

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/portkit/portkit/freeport"
	"github.com/portkit/portkit/internal/output"
	"github.com/portkit/portkit/portspec"
)

func newFree(e *env) *cobra.Command {
	var (
		n                 int
		tcp, udp, both    bool
		rangeSpec, nearIn string
	)
	cmd := &cobra.Command{
		Use:   "free",
		Short: "Print ports that can be bound right now on every local address",
		Long: `Print ports that are free right now for TCP (or UDP, or both) on every
local address: 0.0.0.0, [::] and loopback. By default they are chosen at
random outside this host's ephemeral range, where the kernel hands out
ports to outgoing connections at any moment.

A port printed here is free when checked; another process may take it
before you bind it. Programs that bind the port themselves should ask for
port 0, or use the freeport library's Listen functions.

Exit status: 0 when N ports were found, 1 when the range holds too few.`,
		Example: `  portkit free
  PORT=$(portkit free) ./server
  portkit free -n 3 --both
  portkit free --range 8000-8100 --near 8080 --json`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			var f freeport.Finder
			switch {
			case both || tcp && udp:
				f.Protocols = freeport.TCP | freeport.UDP
			case udp:
				f.Protocols = freeport.UDP
			default:
				f.Protocols = freeport.TCP
			}
			if rangeSpec != "" {
				r, err := portspec.ParseRange(rangeSpec)
				if err != nil {
					return flagValueError("--range", rangeSpec, err)
				}
				if r.Lo == 0 {
					return usagef("--range %q: port 0 is not a port to listen on (binding it asks for any)", rangeSpec)
				}
				f.Range = freeport.Range{Lo: r.Lo, Hi: r.Hi}
			}
			if nearIn != "" {
				p, err := portspec.ParsePort(nearIn)
				if err != nil {
					return flagValueError("--near", nearIn, err)
				}
				if p == 0 {
					return usagef("--near %q: port 0 is not a port to listen on", nearIn)
				}
				f.Near = p
			}
			if n < 1 {
				return usagef("--count %d: ask for at least one port", n)
			}
			ports, err := f.Find(cmd.Context(), n)
			var (
				fe *freeport.Error
				ie *freeport.InputError
			)
			if errors.As(err, &fe) && errors.As(err, &ie) {
				// --range was checked above: what is left to blame is the count.
				return usagef("--count %d (range %v): %s", n, fe.Range, ie.Reason)
			}
			if errors.Is(err, freeport.ErrNoFreePort) {
				if e.json {
					printFree(e, []uint16{}, f.Protocols) // an empty list, for a JSON reader
				}
				return &exitError{code: ExitNegative, err: err}
			}
			if err != nil {
				return err
			}
			return printFree(e, ports, f.Protocols)
		}),
	}
	cmd.Flags().IntVarP(&n, "count", "n", 1, "how many distinct ports")
	cmd.Flags().BoolVar(&tcp, "tcp", false, "free for TCP (the default; with --udp: both, as --both)")
	cmd.Flags().BoolVar(&udp, "udp", false, "free for UDP (with --tcp: both, as --both)")
	cmd.Flags().BoolVar(&both, "both", false, "free for TCP and UDP")
	cmd.Flags().StringVar(&rangeSpec, "range", "", "search `A-B` (default: 1024-65535 less the ephemeral range)")
	cmd.Flags().StringVar(&nearIn, "near", "", "prefer ports nearest `PORT`")
	return cmd
}

func printFree(e *env, ports []uint16, protos freeport.Protocol) error {
	p := e.printer()
	if p.Format() == output.JSON {
		var names []string
		if protos&freeport.TCP != 0 {
			names = append(names, "tcp")
		}
		if protos&freeport.UDP != 0 {
			names = append(names, "udp")
		}
		return p.JSON(struct {
			Ports     []uint16 `json:"ports"`
			Protocols []string `json:"protocols"`
		}{ports, names})
	}
	// One port a line, header-less, so $(portkit free) is the port.
	for _, port := range ports {
		if _, err := fmt.Fprintln(e.Out, strconv.Itoa(int(port))); err != nil {
			return err
		}
	}
	return nil
}
