package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portkit/portkit/probe"
)

func newWait(e *env) *cobra.Command {
	var (
		timeout, interval, attempt time.Duration
		closed, quiet              bool
		hf                         httpFlags
	)
	cmd := &cobra.Command{
		Use:   "wait TARGET... [-- CMD ARGS...]",
		Short: "Wait until targets answer (or stop answering), then run a command",
		Long: `Wait until every TARGET answers, all in parallel, trying each again every
--interval and resolving host names afresh each time. With --closed, wait
until every TARGET stops answering instead. After "--", run CMD once they
are ready and exit with its status: on Unix portkit becomes CMD (exec), so
signals reach CMD as sent and a container's stop reaches the app; CMD not
found exits 127, not runnable 126.

TARGET is host:port or [v6]:port (TCP), unix:/path (a Unix socket), or an
http(s):// URL (ready when the status is 2xx, or one of --status).

Durations are seconds (-t 15) or a number with a unit (500ms, 2m). --quiet
prints nothing and --json one document, so they are not given together;
nor --json with a command after "--", whose output is stdout.

Exit status: 0 when ready (or CMD's status), 124 on timeout naming each
target not ready and why, 2 on bad usage or a bad target, 130 when
interrupted.`,
		Example: `  portkit wait db:5432 -- ./app
  portkit wait -t 60 localhost:5432 localhost:6379
  portkit wait http://localhost:8080/health --status 200 --attempt-timeout 5s
  portkit wait --closed localhost:8080`,
		Args: needArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			targetArgs, command := args, []string(nil)
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				targetArgs, command = args[:dash], args[dash:]
				if len(command) == 0 {
					return usagef("wait: no command after --")
				}
			}
			if len(targetArgs) == 0 {
				return usagef("wait: no TARGET before --")
			}
			targets, err := parseTargets(targetArgs)
			if err != nil {
				return err
			}
			if err := checkWaitFlags(cmd, e.json, interval, attempt, quiet, closed, command != nil); err != nil {
				return err
			}
			check, err := hf.options(targets, attempt)
			if err != nil {
				return err
			}
			start := time.Now()
			results, err := probe.Wait(cmd.Context(), targets, probe.WaitOptions{
				Check: check, Interval: interval, Timeout: timeout, Closed: closed,
			})
			var we *probe.WaitError
			if errors.As(err, &we) {
				for _, r := range we.NotReady {
					e.warnf("%s: not %s: %s", r.Target, readyWord(closed), reasonOf(r))
				}
				if e.json {
					// A JSON reader gets each target's last answer either way.
					if err := printProbe(e, results); err != nil {
						return err
					}
				}
				took := time.Since(start).Round(time.Millisecond)
				if errors.Is(err, context.DeadlineExceeded) {
					return &exitError{code: ExitTimeout, err: fmt.Errorf("timed out after %v", took)}
				}
				if errors.Is(err, context.Canceled) {
					return &exitError{code: ExitInterrupted, err: fmt.Errorf("interrupted after %v", took)}
				}
				return err
			}
			if err != nil {
				return err
			}
			if command != nil {
				if !quiet {
					for _, r := range results {
						e.warnf("%s is %s after %v", r.Target, readyWord(closed), time.Since(start).Round(time.Millisecond))
					}
				}
				return runAfter(cmd.Context(), e, command)
			}
			if quiet {
				return nil
			}
			return printProbe(e, results)
		}),
	}
	durationVarP(cmd.Flags(), &timeout, "timeout", "t", 30*time.Second, "give up after this long (seconds, or 500ms, 2m; 0: never)")
	durationVarP(cmd.Flags(), &interval, "interval", "i", probe.DefaultInterval, "pause between attempts")
	durationVarP(cmd.Flags(), &attempt, "attempt-timeout", "", probe.DefaultTimeout, "limit for each attempt (a slow health endpoint needs more)")
	cmd.Flags().BoolVar(&closed, "closed", false, "wait until the targets stop answering")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing when ready (not with --json)")
	hf.add(cmd)
	return cmd
}

// checkWaitFlags refuses values that would be read as something else and
// flags that cannot both be meant.
func checkWaitFlags(cmd *cobra.Command, json bool, interval, attempt time.Duration, quiet, closed, command bool) error {
	switch {
	case interval == 0:
		// probe would take 0 for its default pause, not for none.
		return usagef("--interval %v: must be positive", interval)
	case attempt == 0:
		return usagef("--attempt-timeout %v: must be positive", attempt)
	case quiet && json:
		return usagef("--quiet and --json: --quiet prints nothing, --json prints the result; give one")
	case command && json:
		return usagef("--json and a command after --: the command's output is stdout; give one")
	case closed && cmd.Flags().Changed("status"):
		return usagef("--closed and --status: a target that answers at all is not closed, whatever its status; give one")
	}
	return nil
}

func readyWord(closed bool) string {
	if closed {
		return "closed"
	}
	return "open"
}

func reasonOf(r probe.Result) string {
	if interruptedResult(r) {
		return "interrupted"
	}
	if r.Err != nil {
		return r.Status.String() + ": " + r.Err.Error()
	}
	return r.Status.String()
}

// runAfter runs the command given after "--" and returns its exit status
// as portkit's. Where it can (Unix, portkit's own standard streams) portkit
// becomes the command, as exec in a shell script: signals, the terminal and
// the exit status are the command's own, with no portkit in between.
// Elsewhere the command runs as a child with portkit's streams, and an
// interrupt is passed on to it.
func runAfter(ctx context.Context, e *env, argv []string) error {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		code := 127 // not found, as a shell says
		if errors.Is(err, fs.ErrPermission) {
			code = 126 // found but not executable
		}
		return &exitError{code: code, err: fmt.Errorf("run %s: %w", argv[0], err)}
	}
	if e.Exec != nil && e.In == os.Stdin && e.Out == os.Stdout && e.Err == os.Stderr {
		err := e.Exec(path, argv, os.Environ()) // returns only on failure
		return &exitError{code: 126, err: fmt.Errorf("run %s: %w", strings.Join(argv, " "), err)}
	}
	c := exec.Command(path, argv[1:]...)
	c.Args[0] = argv[0]
	c.Stdin, c.Stdout, c.Stderr = e.In, e.Out, e.Err
	if err := c.Start(); err != nil {
		return &exitError{code: 126, err: fmt.Errorf("run %s: %w", strings.Join(argv, " "), err)}
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		return childStatus(err)
	case <-ctx.Done():
		// Pass the interrupt on and let the command finish its own way.
		_ = c.Process.Signal(os.Interrupt)
		return childStatus(<-done)
	}
}

func childStatus(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if code < 0 {
			code = 128 + signalNumber(ee)
		}
		return &exitError{code: code, child: true}
	}
	if err != nil {
		return err
	}
	return &exitError{code: ExitOK, child: true}
}
