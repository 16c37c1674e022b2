package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/portkit/portkit/bench/harness"
)

// shardCheck is how the shards' results compare with the unsharded scan.
type shardCheck struct {
	overlap  int // pairs reported by more than one shard
	union    *result
	onlyOne  int // pairs in the union or in the unsharded scan but not both
	differ   int // pairs in both with another state
	coverage int // probed pairs the union reports on
}

// compareShards checks shards against whole. It expects no unlisted counts
// (portkit lists every port).
func compareShards(whole *result, shards []*result, t *truth) shardCheck {
	c := shardCheck{union: newResult()}
	for _, s := range shards {
		for k, st := range s.states {
			if _, dup := c.union.states[k]; dup {
				c.overlap++
				continue
			}
			c.union.states[k] = st
		}
	}
	for k, st := range c.union.states {
		if t.probed(k) {
			c.coverage++
		}
		wst, ok := whole.states[k]
		switch {
		case !ok:
			c.onlyOne++
		case wst != st:
			c.differ++
		}
	}
	for k := range whole.states {
		if _, ok := c.union.states[k]; !ok {
			c.onlyOne++
		}
	}
	return c
}

// shard: the sweep scanned whole and in c.shards shards with one seed; the
// shards must be disjoint and their union the whole scan.
func shard(ctx context.Context, c *config) (*report, error) {
	s := c.plan.Sweep
	base := []string{"--syn", "--top", strconv.Itoa(len(s.Ports)), "--rate", strconv.Itoa(c.rate), "--seed", strconv.FormatUint(c.seed, 10)}
	tools := []tool{c.portkitTool("unsharded", append(base, s.Prefix.String())...)}
	for i := 1; i <= c.shards; i++ {
		args := append(base[:len(base):len(base)], "--shard", fmt.Sprintf("%d/%d", i, c.shards), s.Prefix.String())
		tools = append(tools, c.portkitTool(fmt.Sprintf("shard-%d", i), args...))
	}
	t := sweepTruth(s)
	rn := c.newRunner(t)
	rn.rounds, rn.warm, rn.keep = 1, 0, true
	out, err := rn.runAll(ctx, tools, false)
	if err != nil {
		return nil, err
	}
	title := fmt.Sprintf("scan shards: the sweep (%s addresses × top %d) in %d shards with seed %d vs unsharded, portkit SYN at %s probes/s",
		group(len(t.addrs)), len(s.Ports), c.shards, c.seed, group(c.rate))
	r := &report{title: title, start: time.Now(), runs: 1, tools: tools, outcomes: out, pass: true}
	r.notes = []string{c.producedBy(), c.sweepNote()}

	var (
		parts  []*result
		failed []string
	)
	for i, o := range out {
		switch {
		case len(o) == 0 || o[0].err != nil:
			failed = append(failed, tools[i].Name)
		case i > 0:
			parts = append(parts, o[0].res)
		}
	}
	if len(failed) > 0 {
		r.addTarget(false, "every scan completed", strings.Join(failed, ", ")+" failed")
		return r, nil
	}
	whole := out[0][0].res
	chk := compareShards(whole, parts, t)
	r.addTarget(chk.overlap == 0, fmt.Sprintf("the %d shards are disjoint", c.shards),
		fmt.Sprintf("%s pairs reported by more than one shard", group(chk.overlap)))
	r.addTarget(chk.onlyOne == 0 && chk.differ == 0, "their union equals the unsharded scan",
		fmt.Sprintf("%s pairs in the union, %s in the unsharded scan; %s in only one of them, %s with another state",
			group(len(chk.union.states)), group(len(whole.states)), group(chk.onlyOne), group(chk.differ)))
	g := grade(chk.union, t)
	r.addTarget(chk.coverage == t.size() && g.perfect(false), "the union covers every probed pair and finds every open port",
		fmt.Sprintf("%s of %s pairs; %s", group(chk.coverage), group(t.size()), g))
	return r, nil
}

// shardMarkdown renders the shard section: one row a scan, then the union.
func (r *report) shardMarkdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** — %s, %s\n\n", r.title, r.start.UTC().Format("2006-01-02 15:04 UTC"), "each scan run once")
	for _, n := range r.notes {
		b.WriteString(n + "\n\n")
	}
	b.WriteString("| scan | command line | wall | results | open found |\n| --- | --- | ---: | ---: | ---: |\n")
	var sum time.Duration
	for i, t := range r.tools {
		o := r.outcomes[i]
		if len(o) == 0 || o[0].err != nil {
			fmt.Fprintf(&b, "| %s | %s | %s | | |\n", t.Name, harness.CodeSpan(t.String()), runCell(firstOr(o)))
			continue
		}
		if i > 0 {
			sum += o[0].sample.Wall
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", t.Name, harness.CodeSpan(t.String()),
			harness.FormatDuration(o[0].sample.Wall), group(len(o[0].res.states)), group(o[0].score.open))
	}
	fmt.Fprintf(&b, "| shards together | | %s (sum) | | |\n", harness.FormatDuration(sum))
	if len(r.targets) > 0 {
		b.WriteString("\n" + strings.Join(r.targets, "\n") + "\n")
	}
	return b.String()
}

func firstOr(os []outcome) outcome {
	if len(os) == 0 {
		return outcome{err: fmt.Errorf("not run")}
	}
	return os[0]
}
