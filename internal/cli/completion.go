package cli

import (
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/portkit/portkit/forward"
	"github.com/portkit/portkit/registry"
	"github.com/portkit/portkit/scan"
	"github.com/portkit/portkit/scan/report"
)

// enumFlag is a flag that takes one of a few words, and where the words
// come from. Each values function reads the list the command checks its
// value against, where the code has one to read.
type enumFlag struct {
	path   string // the command's path: "portkit scan"
	flag   string
	values func() []string
}

// enumFlags is every flag of the command tree that takes one of a few words.
func enumFlags() []enumFlag {
	return []enumFlag{
		{"portkit scan", "output", report.Formats},
		{"portkit report", "output", reportFormats},
		{"portkit scan", "timing", timingChoices},
		{"portkit lookup", "protocol", protocolChoices},
		{"portkit kill", "signal", signalChoices},
		// The lists forward.ParseBalance, forward.ParseProxyVersion and
		// newLogger check their values against.
		{"portkit forward", "balance", balanceChoices},
		{"portkit forward", "proxy-protocol", forward.ProxyVersions},
		{"portkit forward", "log-format", forward.LogFormats},
		{"portkit knockd", "log-format", forward.LogFormats},
	}
}

// registerCompletions makes the shell complete the values of every enum
// flag. It runs once the tree is built; an entry whose command or flag is
// not in the tree is left out (TestEnumFlagsExist keeps the table true).
func registerCompletions(root *cobra.Command) {
	for _, ef := range enumFlags() {
		cmd := findCommand(root, ef.path)
		if cmd == nil || cmd.Flags().Lookup(ef.flag) == nil {
			continue
		}
		values := ef.values
		_ = cmd.RegisterFlagCompletionFunc(ef.flag, func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			var out []string
			for _, v := range values() {
				if strings.HasPrefix(strings.ToLower(v), strings.ToLower(toComplete)) {
					out = append(out, v)
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		})
	}
}

// findCommand is the command at path ("portkit scan"), or nil.
func findCommand(root *cobra.Command, path string) *cobra.Command {
	names := strings.Fields(path)
	if len(names) == 0 || names[0] != root.Name() {
		return nil
	}
	cmd := root
next:
	for _, n := range names[1:] {
		for _, c := range cmd.Commands() {
			if c.Name() == n {
				cmd = c
				continue next
			}
		}
		return nil
	}
	return cmd
}

// timingChoices are the timing templates parseTiming reads, by level and
// by name: 0 to 5, then paranoid to insane.
func timingChoices() []string {
	var levels, names []string
	for _, t := range scan.Timings() {
		levels = append(levels, strconv.Itoa(t.Level))
		names = append(names, t.Name)
	}
	return append(levels, names...)
}

// balanceChoices are forward's balances by name.
func balanceChoices() []string {
	var names []string
	for _, b := range forward.Balances() {
		names = append(names, string(b))
	}
	return names
}

// protocolChoices are the protocols registry.ParseProto reads, in its order:
// every registry.Proto whose name parses back to it.
func protocolChoices() []string {
	var names []string
	for i := range 256 {
		p := registry.Proto(i)
		if q, err := registry.ParseProto(p.String()); err == nil && q == p {
			names = append(names, p.String())
		}
	}
	return names
}

// signalChoices are the signals parseSignal reads by name, by number order.
func signalChoices() []string {
	var names []string
	for n := 1; n < 65; n++ {
		name := signalName(syscall.Signal(n))
		if _, err := strconv.Atoi(name); err == nil {
			continue // a signal with no name
		}
		if sig, err := parseSignal(name); err == nil && sig == syscall.Signal(n) {
			names = append(names, name)
		}
	}
	return names
}
