//go:build unix

package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/portkit/portkit/bench/harness"
)

// shTool is a fake scanner: a shell script printing masscan's list format.
func shTool(name, script string) tool {
	return tool{
		Command: harness.Command{Name: name, Argv: []string{"sh", "-c", script}},
		parse:   parseMasscanList, warmup: true, timeout: 10 * time.Second, allowExit: []int{0},
	}
}

func TestRunAll(t *testing.T) {
	good := shTool("good", "echo 'open tcp 3 198.18.0.2 1'; echo 'open tcp 7 198.18.0.2 1'")
	half := shTool("half", "echo 'open tcp 3 198.18.0.2 1'")
	half.checked = true
	fails := shTool("fails", "echo oops >&2; exit 3")
	hangs := shTool("hangs", "exec sleep 5")
	hangs.timeout = 100 * time.Millisecond
	slow := shTool("slow", "echo 'open tcp 7 198.18.0.2 1'")
	slow.slow, slow.runs = true, 1
	slow2 := slow
	slow2.Name = "slow2"

	var log strings.Builder
	r := &runner{tmp: t.TempDir(), log: &log, truth: smallTruth(), rounds: 2, warm: 1}
	tools := []tool{good, half, fails, hangs, slow, slow2}
	out, err := r.runAll(context.Background(), tools, true)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{2, 2, 2, 2, 1, 1} {
		if len(out[i]) != want {
			t.Errorf("%s: %d runs, want %d", tools[i].Name, len(out[i]), want)
		}
	}
	if o := out[0][1]; o.err != nil || !o.score.perfect(false) || o.sample.Wall <= 0 {
		t.Errorf("good: %+v", o)
	}
	if o := out[1][0]; o.err != nil || o.score.open != 1 {
		t.Errorf("half: %+v", o)
	}
	if o := out[2][0]; o.err == nil || !strings.Contains(o.err.Error(), "exit code 3") || !strings.Contains(o.err.Error(), "oops") {
		t.Errorf("fails: %v", o.err)
	}
	if o := out[3][0]; o.err == nil || !strings.Contains(o.err.Error(), "timed out") {
		t.Errorf("hangs: %v", o.err)
	}
	if o := out[5][0]; o.err != nil || o.score.open != 1 {
		t.Errorf("slow2: %+v", o)
	}
	if !strings.Contains(log.String(), "warmup") || !strings.Contains(log.String(), "missed: 198.18.0.2:7") {
		t.Errorf("log:\n%s", log.String())
	}

	rep := &report{title: "t", runs: 2, tools: tools, outcomes: out, pass: true}
	rep.targetAccuracy("good", false)
	rep.targetRatio("good", "half", 100, "100")
	if !rep.pass {
		t.Errorf("targets: %v", rep.targets)
	}
	rep.targetAccuracy("half", false)
	rep.targetMaxWall("fails", time.Second)
	if rep.pass || len(rep.targets) != 4 {
		t.Errorf("targets: %v", rep.targets)
	}
	md := rep.markdown()
	for _, want := range []string{"| good | `sh -c", "2/2 open, closed n/a (2 runs)", "**failed**: exit code 3", "target half: every open port found, none falsely open, in every run: FAIL (0 of 2 runs)",
		"- half run 2 missed 198.18.0.2:7"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestRunAllInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := &runner{tmp: t.TempDir(), log: io.Discard, truth: smallTruth(), rounds: 1}
	if _, err := r.runAll(ctx, []tool{shTool("x", "true")}, false); err == nil {
		t.Error("no error from a cancelled run")
	}
}
