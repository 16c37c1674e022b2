package cli

import (
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestCommandNamesAreTheTree: the names newRootFor makes one command for
// are exactly the whole tree's subcommands, so that no command is reachable
// one way and not the other.
func TestCommandNamesAreTheTree(t *testing.T) {
	root := newRoot(&env{Streams: OSStreams()})
	var tree []string
	for _, c := range root.Commands() {
		if c.Name() != "completion" && c.Name() != "help" {
			tree = append(tree, c.Name())
		}
	}
	names := commandNames()
	slices.Sort(tree)
	slices.Sort(names[:])
	if !slices.Equal(tree, names[:]) {
		t.Errorf("tree's commands %q, commandNames %q", tree, names)
	}
	if newCommand(&env{}, "no-such-command") != nil {
		t.Error("newCommand made a command for an unknown name")
	}
}

// TestNewRootForMakesOneCommand: a subcommand named in args, after root's
// flags or not, is made alone under the root, with the same flags as in
// the whole tree; help, completion, an unknown command or none get the
// whole tree.
func TestNewRootForMakesOneCommand(t *testing.T) {
	full := newRoot(&env{Streams: OSStreams()})
	for _, name := range commandNames() {
		for _, args := range [][]string{{name}, {"--json", name, "x"}, {"-h", name}} {
			root := newRootFor(&env{Streams: OSStreams()}, args)
			var made []string
			for _, c := range root.Commands() {
				made = append(made, c.Name())
			}
			if !slices.Equal(made, []string{name}) {
				t.Errorf("args %q: commands %q, want only %s", args, made, name)
				continue
			}
			want := findCommand(full, "portkit "+name)
			if got, want := flagNames(root.Commands()[0]), flagNames(want); !slices.Equal(got, want) {
				t.Errorf("args %q: flags %q, in the whole tree %q", args, got, want)
			}
		}
	}
	for _, args := range [][]string{nil, {"--help"}, {"help", "lookup"}, {"completion", "bash"}, {"__complete", "lo"}, {"lokup", "5432"}, {"--", "lookup"}} {
		root := newRootFor(&env{Streams: OSStreams()}, args)
		if n := len(root.Commands()); n < len(commandNames()) {
			t.Errorf("args %q: %d commands, want the whole tree", args, n)
		}
	}
}

// flagNames lists every flag of cmd and of its subcommands, by path.
func flagNames(cmd *cobra.Command) []string {
	var out []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			out = append(out, strings.TrimPrefix(c.CommandPath(), "portkit ")+" --"+f.Name)
		})
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(cmd)
	slices.Sort(out)
	return out
}
