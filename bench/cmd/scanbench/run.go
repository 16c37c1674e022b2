package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portkit/portkit/bench/harness"
)

// tool is one scanner command of a benchmark.
type tool struct {
	harness.Command
	parse     parser
	slow      bool          // run apart from the rounds, runs times
	runs      int           // measured runs of a slow tool
	warmup    bool          // whether it takes part in warmup rounds
	timeout   time.Duration // per run
	allowExit []int         // accepted exit codes
	checked   bool          // portkit: the report names the open ports it missed
}

// outcome is one run of a tool: its time and its accuracy, or why it has
// neither.
type outcome struct {
	sample harness.Sample
	score  score
	res    *result // kept only where the benchmark asks for it (shards)
	err    error
}

// runner runs tools and scores their output.
type runner struct {
	tmp    string // directory for the runs' output
	log    io.Writer
	keep   bool // keep each run's parsed result in its outcome (and log no misses: shards miss by design)
	truth  *truth
	rounds int // measured rounds
	warm   int // warmup rounds
}

// runAll runs the tools for r.warm unrecorded rounds and r.rounds measured
// ones. Each round starts with a different tool. Slow tools (nmap under
// loss, minutes a run) sit the rounds out and run their own number of
// times afterwards: with together, the k-th runs of all of them at the same
// time, else one after the other. A failed run is recorded, not fatal: the
// report shows it and its targets fail.
func (r *runner) runAll(ctx context.Context, tools []tool, together bool) ([][]outcome, error) {
	out := make([][]outcome, len(tools))
	var fast, slow []int
	for i, t := range tools {
		if t.slow {
			slow = append(slow, i)
		} else {
			fast = append(fast, i)
		}
	}
	for round := range r.warm + r.rounds {
		for j := range fast {
			i := fast[(round+j)%len(fast)]
			label, measured := "warmup", round >= r.warm
			if measured {
				label = fmt.Sprintf("run %d/%d", round-r.warm+1, r.rounds)
			} else if !tools[i].warmup {
				continue
			}
			o := r.once(ctx, tools[i])
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if measured {
				out[i] = append(out[i], o)
			}
			r.logOutcome(tools[i], label, o)
		}
	}
	for k := 0; ; k++ {
		var batch []int
		for _, i := range slow {
			if k < tools[i].runs {
				batch = append(batch, i)
			}
		}
		if len(batch) == 0 {
			return out, nil
		}
		res := make([]outcome, len(batch))
		var wg sync.WaitGroup
		for b, i := range batch {
			fmt.Fprintf(r.log, "%-16s run %d/%d, up to %v...\n", tools[i].Name, k+1, tools[i].runs, tools[i].timeout)
			if together {
				wg.Go(func() { res[b] = r.once(ctx, tools[i]) })
			} else {
				res[b] = r.once(ctx, tools[i])
			}
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for b, i := range batch {
			out[i] = append(out[i], res[b])
			r.logOutcome(tools[i], fmt.Sprintf("run %d/%d", k+1, tools[i].runs), res[b])
		}
	}
}

func (r *runner) logOutcome(t tool, label string, o outcome) {
	if o.err != nil {
		fmt.Fprintf(r.log, "%-16s %-9s FAILED: %v\n", t.Name, label, o.err)
		return
	}
	fmt.Fprintf(r.log, "%-16s %-9s %9s  %s\n", t.Name, label, harness.FormatDuration(o.sample.Wall), o.score)
	if len(o.score.missed) > 0 && !r.keep {
		fmt.Fprintf(r.log, "%-16s %-9s missed: %s\n", "", "", o.score.missedString(10))
	}
}

// once runs t, with its stdout going to a file that is parsed and scored
// once it has exited, so that neither counts towards its time.
func (r *runner) once(ctx context.Context, t tool) outcome {
	f, err := os.CreateTemp(r.tmp, "out-*")
	if err != nil {
		return outcome{err: err}
	}
	defer os.Remove(f.Name())
	defer f.Close()

	runCtx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	cmd := toolCommand(runCtx, t, r.tmp)
	cmd.Stdout = f // the child writes to the file itself: no copying here
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// A timed-out run is killed outright (SIGINT would have portkit write a
	// resume file into the working directory); nothing it leaves matters.
	cmd.WaitDelay = 3 * time.Second

	floor := harness.SpawnFloor()
	t0 := time.Now()
	err = cmd.Run()
	wall := time.Since(t0)
	tail := func() string {
		b := bytes.TrimSpace(stderr.Bytes())
		if len(b) > 1500 {
			b = b[len(b)-1500:]
		}
		if len(b) == 0 {
			return ""
		}
		return "; stderr: " + string(bytes.ReplaceAll(b, []byte("\n"), []byte(" | ")))
	}
	switch {
	case ctx.Err() != nil:
		return outcome{err: ctx.Err()}
	case runCtx.Err() != nil:
		return outcome{sample: harness.Sample{Wall: wall}, err: fmt.Errorf("timed out after %v%s", t.timeout, tail())}
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return outcome{err: fmt.Errorf("%v%s", err, tail())}
	}
	ps := cmd.ProcessState
	sample := harness.Sample{Wall: wall, CPU: ps.UserTime() + ps.SystemTime(), PeakRSS: harness.PeakRSS(ps), RSSFloor: floor}
	if code := ps.ExitCode(); !slices.Contains(t.allowExit, code) {
		return outcome{sample: sample, err: fmt.Errorf("exit code %d (%v)%s", code, ps, tail())}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return outcome{sample: sample, err: err}
	}
	res, err := t.parse(f)
	if err != nil {
		return outcome{sample: sample, err: fmt.Errorf("reading its output: %v%s", err, tail())}
	}
	o := outcome{sample: sample, score: grade(res, r.truth)}
	if r.keep {
		o.res = res
	}
	return o
}

// toolCommand is the command for a run of t, working in dir and in a
// process group of its own: a Ctrl-C at the terminal reaches scanbench
// alone, which stops the run itself, and nothing a scanner writes where it
// runs (portkit's resume file, masscan's paused.conf) lands in the
// repository.
func toolCommand(ctx context.Context, t tool, dir string) *exec.Cmd {
	argv0 := t.Argv[0]
	if strings.ContainsRune(argv0, '/') {
		if abs, err := filepath.Abs(argv0); err == nil {
			argv0 = abs // relative to where scanbench was started, not to dir
		}
	}
	cmd := exec.CommandContext(ctx, argv0, t.Argv[1:]...)
	cmd.Dir = dir
	cmd.SysProcAttr = ownGroup()
	return cmd
}
