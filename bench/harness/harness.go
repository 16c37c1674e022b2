// Package harness times a portkit command and its peers side by side in one
// run, so that comparisons are made on the same machine under the same load.
package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"time"
)

// Command is one program to time. It is executed directly, never through a
// shell, so that shell start-up does not count towards its time.
type Command struct {
	Name string   // label in the report and in Report.Ratio; must be unique
	Argv []string // program and arguments
	Env  []string // KEY=VALUE pairs added to the inherited environment
	Dir  string   // working directory; empty means the current one
}

// Spec describes one side-by-side benchmark.
type Spec struct {
	Title     string
	Commands  []Command
	Runs      int           // measured rounds; each round runs every command once
	Warmup    int           // unrecorded rounds run first, to fill caches
	Timeout   time.Duration // per run; 0 means none
	AllowExit []int         // accepted exit codes; empty means {0}
}

// Sample is the measurement of one run.
type Sample struct {
	Wall    time.Duration
	CPU     time.Duration // user + system
	PeakRSS int64         // bytes; 0 where the platform does not report it
	// RSSFloor is the harness's own resident size when it started the run
	// (bytes; 0 where unknown). Linux carries the peak RSS of the process
	// that starts a command across exec into the command's ru_maxrss, so a
	// PeakRSS at or below the floor says only "at most the floor".
	RSSFloor int64
}

// stderrTail bounds how much of a run's stderr is kept for error messages.
const stderrTail = 4 << 10

// Run times every command of spec and summarises the measured rounds.
// Each round rotates which command goes first, so that none of them
// systematically benefits from caches warmed by the others.
func Run(ctx context.Context, spec Spec) (*Report, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	allow := spec.AllowExit
	if len(allow) == 0 {
		allow = []int{0}
	}
	n := len(spec.Commands)
	samples := make([][]Sample, n)
	start := time.Now()
	for round := range spec.Warmup + spec.Runs {
		for j := range n {
			i := (round + j) % n
			s, err := runOnce(ctx, spec.Commands[i], spec.Timeout, allow)
			if err != nil {
				return nil, err
			}
			if round >= spec.Warmup {
				samples[i] = append(samples[i], s)
			}
		}
	}
	r := &Report{
		Title:  spec.Title,
		Start:  start.UTC(),
		Runs:   spec.Runs,
		Warmup: spec.Warmup,
		GOOS:   runtime.GOOS,
		GOARCH: runtime.GOARCH,
		NumCPU: runtime.NumCPU(),
	}
	for i, c := range spec.Commands {
		r.Stats = append(r.Stats, summarize(c, samples[i]))
	}
	return r, nil
}

func (s Spec) validate() error {
	if len(s.Commands) == 0 {
		return errors.New("harness: no commands")
	}
	if s.Runs < 1 {
		return fmt.Errorf("harness: Runs is %d, want at least 1", s.Runs)
	}
	if s.Warmup < 0 {
		return fmt.Errorf("harness: Warmup is %d, want 0 or more", s.Warmup)
	}
	seen := map[string]bool{}
	for _, c := range s.Commands {
		switch {
		case c.Name == "":
			return fmt.Errorf("harness: command %q has no name", c.Argv)
		case seen[c.Name]:
			return fmt.Errorf("harness: command name %q used twice", c.Name)
		case len(c.Argv) == 0:
			return fmt.Errorf("harness: command %s has no argv", c.Name)
		}
		seen[c.Name] = true
	}
	return nil
}

// runOnce executes c once and measures it.
func runOnce(ctx context.Context, c Command, timeout time.Duration, allow []int) (Sample, error) {
	runCtx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(runCtx, c.Argv[0], c.Argv[1:]...)
	cmd.Dir = c.Dir
	if len(c.Env) > 0 {
		cmd.Env = append(os.Environ(), c.Env...)
	}
	// Stdin and Stdout stay nil (the null device): output is not measured,
	// and a pipe would add copying to the command's time.
	var tail tailBuffer
	cmd.Stderr = &tail
	// Neither a process ignoring the kill nor a grandchild keeping stderr open
	// may stall Wait for long; either turns into an error instead.
	cmd.WaitDelay = time.Second

	floor := spawnFloor()
	t0 := time.Now()
	err := cmd.Start()
	if err == nil {
		err = cmd.Wait()
	}
	wall := time.Since(t0)

	if ctx.Err() != nil {
		return Sample{}, ctx.Err()
	}
	if runCtx.Err() != nil {
		return Sample{}, fmt.Errorf("harness: %s timed out after %v%s", c.Name, timeout, tail.suffix())
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return Sample{}, fmt.Errorf("harness: %s: %w%s", c.Name, err, tail.suffix())
	}
	ps := cmd.ProcessState
	if code := ps.ExitCode(); !slices.Contains(allow, code) {
		// Code -1 means no exit code at all; the state says which signal.
		return Sample{}, fmt.Errorf("harness: %s exited with code %d (%v), allowed %v%s", c.Name, code, ps, allow, tail.suffix())
	}
	return Sample{Wall: wall, CPU: ps.UserTime() + ps.SystemTime(), PeakRSS: peakRSS(ps), RSSFloor: floor}, nil
}

// tailBuffer keeps the last stderrTail bytes written to it, so a chatty
// command cannot make the harness hold its whole output.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= stderrTail {
		t.b = append(t.b[:0], p[len(p)-stderrTail:]...)
		return n, nil
	}
	if over := len(t.b) + len(p) - stderrTail; over > 0 {
		t.b = t.b[:copy(t.b, t.b[over:])]
	}
	t.b = append(t.b, p...)
	return n, nil
}

// suffix formats the tail for appending to an error message.
func (t *tailBuffer) suffix() string {
	if len(t.b) == 0 {
		return ""
	}
	return fmt.Sprintf("; stderr tail:\n%s", t.b)
}
