// Package cli is portkit's command line: one file per subcommand, each a
// function of (ctx, args, streams) that parses flags and prints; the work is
// done by the library packages.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/portkit/portkit/internal/output"
)

// Streams are a command's standard streams and environment.
type Streams struct {
	In     io.Reader
	Out    io.Writer
	Err    io.Writer
	Getenv func(string) string
	// LookupEnv tells an unset variable from an empty one.
	LookupEnv func(string) (string, bool)
	// Exec replaces the process with the program at path (execve), for
	// `wait -- CMD`; nil where that cannot be done, and the command then
	// runs as a child.
	Exec func(path string, argv, env []string) error
}

// OSStreams returns the process's own streams and environment.
func OSStreams() Streams {
	return Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Getenv: os.Getenv, LookupEnv: os.LookupEnv, Exec: execProcess()}
}

// env is the shared state of one invocation: the streams and the global
// flags. It lives for one call of Main.
type env struct {
	Streams
	ctx  context.Context // the invocation's: cancelled by an interrupt
	json bool
}

// interrupted tells whether the invocation was interrupted (Ctrl-C,
// SIGTERM): its context is done.
func (e *env) interrupted() bool { return e.ctx != nil && e.ctx.Err() != nil }

// printer returns the stdout printer for the chosen format.
func (e *env) printer() *output.Printer {
	f := output.Human
	if e.json {
		f = output.JSON
	}
	return output.New(e.Out, f, e.Getenv)
}

// warnf writes a diagnostic to stderr, in the user's words: Go's names
// for an ended context become what happened.
func (e *env) warnf(format string, args ...any) {
	msg := fmt.Sprintf("portkit: "+format+"\n", args...)
	fmt.Fprint(e.Err, output.Printable(plainWords(msg, e.interrupted())))
}

// Main runs portkit with args (without the program name) and returns the
// exit code.
func Main(ctx context.Context, args []string, s Streams) int {
	e := &env{Streams: s, ctx: ctx}
	root := newRootFor(e, args)
	root.SetArgs(nmapArgs(root, args)) // nmap's -sS, -oX FILE, … for scan
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	cmd, err := root.ExecuteContextC(ctx)
	code := ExitCode(err)
	var ee *exitError
	interrupted := err != nil && ctx.Err() != nil && !(errors.As(err, &ee) && ee.child)
	if interrupted {
		code = ExitInterrupted
	}
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.err == nil:
		// Already reported by the command.
	case interrupted && errors.Is(err, context.Canceled):
		// The interrupt itself: Go's words for it mean nothing to a user.
		e.warnf("interrupted")
	case code == ExitUsage && !isCommandError(err):
		e.warnf("%v\nRun '%s --help' for usage.", err, cmd.CommandPath())
	default:
		e.warnf("%v", err)
	}
	return code
}

// commandNames are portkit's subcommands.
func commandNames() []string {
	return []string{"lookup", "ls", "who", "kill", "free", "check", "wait", "scan", "identify", "report", "forward", "firewall", "knock", "knockd", "guard", "version"}
}

// newCommand makes the subcommand name, or returns nil for a name that is
// none of commandNames.
func newCommand(e *env, name string) *cobra.Command {
	switch name {
	case "lookup":
		return newLookup(e)
	case "ls":
		return newLs(e)
	case "who":
		return newWho(e)
	case "kill":
		return newKill(e)
	case "free":
		return newFree(e)
	case "check":
		return newCheck(e)
	case "wait":
		return newWait(e)
	case "scan":
		return newScan(e)
	case "identify":
		return newIdentify(e)
	case "report":
		return newReport(e)
	case "forward":
		return newForward(e)
	case "firewall":
		return newFirewall(e)
	case "knock":
		return newKnock(e)
	case "knockd":
		return newKnockd(e)
	case "guard":
		return newGuard(e)
	case "version":
		return newVersion(e)
	}
	return nil
}

// newRootFor makes the command tree args need. Making every command's
// flags, help and completions is a good part of a short command's run
// (portkit lookup's start-up), so when args name a subcommand only that one
// is made under the root; help, completion, a misspelt command or none get
// the whole tree, as they list or search it.
func newRootFor(e *env, args []string) *cobra.Command {
	// The command's name is the first argument that is not a flag: root's
	// flags take no value.
	for _, a := range args {
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "-") {
			continue
		}
		cmd := newCommand(e, a)
		if cmd == nil {
			break
		}
		root := newBareRoot(e)
		// The completion command completes the whole tree: it is made only
		// with it.
		root.CompletionOptions.DisableDefaultCmd = true
		root.AddCommand(cmd)
		return root
	}
	return newRoot(e)
}

// newRoot makes the whole command tree.
func newRoot(e *env) *cobra.Command {
	root := newBareRoot(e)
	for _, name := range commandNames() {
		root.AddCommand(newCommand(e, name))
	}
	// cobra makes the completion command on first use; made here, once the
	// others are added (it is made only for a root with subcommands), it gets
	// examples like every other command.
	root.InitDefaultCompletionCmd()
	registerCompletions(root)
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Example = `  source <(portkit completion bash)
  portkit completion zsh > "${fpath[1]}/_portkit"
  portkit completion fish > ~/.config/fish/completions/portkit.fish`
			// Without a shell, or with one it lacks, cobra would print
			// help and exit 0: a script sourcing that would not notice.
			c.Args = cobra.ArbitraryArgs
			c.RunE = func(c *cobra.Command, args []string) error {
				var shells []string
				for _, s := range c.Commands() {
					if s.IsAvailableCommand() {
						shells = append(shells, s.Name())
					}
				}
				if len(args) == 0 {
					return fmt.Errorf("completion: name a shell: %s", strings.Join(shells, ", "))
				}
				return fmt.Errorf("completion %q: not a shell portkit completes (%s)", args[0], strings.Join(shells, ", "))
			}
		}
	}
	return root
}

// newBareRoot makes the root command, without its subcommands.
func newBareRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "portkit",
		Short: "Everything you do with network ports, in one tool",
		Long: `portkit does what you do with network ports: what a port number means (the
IANA registry), who holds a port and how to free it, a free port to use,
whether a target answers and waiting until it does, scanning hosts for open
ports, forwarding a port elsewhere, and keeping a port closed until an
authorised client knocks (firewall, knockd, knock).

Exit codes: 0 positive answer, 1 negative answer (nothing found), 2 bad usage
or bad input, 3 partial (of several arguments, some answered and some not),
74 an output could not be written (a full disk), 124 timeout,
130 interrupted (Ctrl-C, SIGTERM). Some commands differ on purpose:
forward and knockd, services, exit 0 after a clean shutdown on SIGINT or
SIGTERM; wait -- CMD exits with CMD's status (127 when CMD is not found,
126 when it cannot run).`,
		Example: `  portkit lookup 5432
  portkit free
  portkit check localhost:5432
  portkit wait db:5432 -- ./app
  portkit scan 198.18.0.0/24 --top 100
  portkit forward :8080 10.1.2.3:80
  portkit firewall open ssh --from 198.18.0.1 --for 10m
  portkit knock --spa 198.18.0.2 --open 22/tcp --key-file ~/.portkit-key`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.PersistentFlags().BoolVar(&e.json, "json", false, "write one JSON document instead of a table")
	var showVersion bool
	root.Flags().BoolVar(&showVersion, "version", false, "print portkit's version and build, as the version command does")
	root.RunE = runE(func(cmd *cobra.Command, args []string) error {
		if showVersion {
			return printVersion(e)
		}
		return cmd.Help()
	})
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return plainFlagError(err) })
	return root
}

// needArgs is the Args check of a command that needs arguments: without
// any, it says what the command takes, from its usage line ("check: give
// TARGET..."), as scan, lookup and report do, rather than cobra's
// "requires at least 1 arg(s), only received 0". Exit 2, with the pointer
// to --help.
func needArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return nil
	}
	path := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
	return fmt.Errorf("%s: give %s", path, strings.TrimSpace(strings.TrimPrefix(cmd.Use, cmd.Name())))
}

// runE adapts a command body to cobra, marking its errors as the command's
// own so they are not mistaken for usage errors.
func runE(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := fn(cmd, args); err != nil {
			return &commandError{err}
		}
		return nil
	}
}

// plainFlagError puts a flag value's error in the user's words, naming the
// flag and the value: pflag gives the Go parser's reason
// (`strconv.ParseInt: parsing "x": invalid syntax`). It holds for every
// command's flags, as they share the root's flag error function.
func plainFlagError(err error) error {
	var ive *pflag.InvalidValueError
	if !errors.As(err, &ive) {
		return err
	}
	f := ive.GetFlag()
	reason := ive.Unwrap().Error()
	var ne *strconv.NumError
	switch typ := f.Value.Type(); {
	case errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange):
		reason = "out of range"
	case ne != nil && strings.HasPrefix(typ, "float"):
		reason = "not a number"
	case ne != nil && typ == "bool":
		reason = "not true or false (the flag needs no value)"
	case ne != nil && typ == "count":
		reason = "not a count (give -v, -vv, or --" + f.Name + "=2)"
	case ne != nil:
		reason = "not a whole number"
	}
	return fmt.Errorf("--%s %q: %s", f.Name, ive.GetValue(), reason)
}
