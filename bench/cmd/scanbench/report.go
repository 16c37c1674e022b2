package main

import (
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/portkit/portkit/bench/harness"
)

// report is one section of docs/BENCHMARKS.md.
type report struct {
	title    string
	start    time.Time
	runs     int // measured rounds
	warmup   int
	notes    []string // paragraphs under the header
	tools    []tool
	outcomes [][]outcome
	targets  []string // "- target ...: PASS (...)" lines
	rssRuns  []rssRun // rss: its runs, in place of outcomes
	udpMD    string   // udp: its section, written by udpMarkdown
	pass     bool
}

// stats summarises the completed runs of tool i.
func (r *report) stats(i int) harness.Stats {
	var samples []harness.Sample
	for _, o := range r.outcomes[i] {
		if o.err == nil {
			samples = append(samples, o.sample)
		}
	}
	return harness.Summarize(r.tools[i].Command, samples)
}

func (r *report) index(name string) int {
	for i, t := range r.tools {
		if t.Name == name {
			return i
		}
	}
	return -1
}

// ratio is the median wall time of a over that of b, over completed runs;
// NaN when either has none.
// baseline is the portkit run a tool's ratio is taken to: the connect scan
// for connect scans (nmap -sT), where one was run, else the first tool.
func (r *report) baseline(name, first string) string {
	if (name == "portkit-connect" || strings.HasSuffix(name, "-sT")) && r.index("portkit-connect") >= 0 {
		return "portkit-connect"
	}
	return first
}

func (r *report) ratio(a, b string) float64 {
	i, j := r.index(a), r.index(b)
	if i < 0 || j < 0 {
		return math.NaN()
	}
	sa, sb := r.stats(i), r.stats(j)
	if sa.Runs == 0 || sb.Runs == 0 || sb.MedianWall == 0 {
		return math.NaN()
	}
	return float64(sa.MedianWall) / float64(sb.MedianWall)
}

// addTarget records a target line, "- target DESC: PASS (DETAIL)".
func (r *report) addTarget(ok bool, desc, detail string) {
	verdict := "PASS"
	if !ok {
		verdict, r.pass = "FAIL", false
	}
	r.targets = append(r.targets, fmt.Sprintf("- target %s: %s (%s)", desc, verdict, detail))
}

// targetRatio checks median(a) <= max × median(b).
func (r *report) targetRatio(a, b string, max float64, maxText string) {
	x := r.ratio(a, b)
	r.addTarget(x <= max, fmt.Sprintf("%s/%s <= %s", a, b, maxText), fmt.Sprintf("ratio %.2f", x))
}

// targetAccuracy checks that every run of tool name completed and found
// every open port and nothing else open, and with closedToo that it
// reported every closed port closed.
func (r *report) targetAccuracy(name string, closedToo bool) {
	i := r.index(name)
	if i < 0 {
		return
	}
	good := 0
	for _, o := range r.outcomes[i] {
		if o.err == nil && o.score.perfect(closedToo) {
			good++
		}
	}
	what := "every open port found, none falsely open"
	if closedToo {
		what += ", every closed port reported closed"
	}
	n := len(r.outcomes[i])
	r.addTarget(n > 0 && good == n, name+": "+what+", in every run", fmt.Sprintf("%d of %d runs", good, n))
}

// targetMaxWall checks that every run of tool name took at most max.
func (r *report) targetMaxWall(name string, max time.Duration) {
	i := r.index(name)
	if i < 0 {
		return
	}
	var worst time.Duration
	ok := len(r.outcomes[i]) > 0
	for _, o := range r.outcomes[i] {
		ok = ok && o.err == nil && o.sample.Wall <= max
		worst = maxDuration(worst, o.sample.Wall)
	}
	r.addTarget(ok, fmt.Sprintf("%s wall time <= %v in every run", name, max), "slowest "+harness.FormatDuration(worst))
}

func maxDuration(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

// markdown renders the section: a header, the notes, a summary table with
// each tool's accuracy, a table of every run and the targets.
func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** — %s, %s %s, %d CPUs, %d runs per command (+%d warmup) unless the table says fewer, order rotated each round\n\n",
		r.title, r.start.UTC().Format("2006-01-02 15:04 UTC"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), r.runs, r.warmup)
	for _, n := range r.notes {
		b.WriteString(n + "\n\n")
	}
	b.WriteString("| command | command line | runs | median | min | p90 | CPU (median) | peak RSS | ratio to portkit, same kind of scan | accuracy |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	first := r.tools[0].Name
	for i, t := range r.tools {
		s := r.stats(i)
		med, lo, p90, cpu := "n/a", "n/a", "n/a", "n/a"
		if s.Runs > 0 {
			med, lo, p90 = harness.FormatDuration(s.MedianWall), harness.FormatDuration(s.MinWall), harness.FormatDuration(s.P90Wall)
			cpu = harness.FormatDuration(s.MedianCPU)
		}
		runs := strconv.Itoa(len(r.outcomes[i]))
		if s.Runs != len(r.outcomes[i]) {
			runs = fmt.Sprintf("%d of %d", s.Runs, len(r.outcomes[i])) // the statistics are of the runs that succeeded
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			t.Name, harness.CodeSpan(t.String()), runs, med, lo, p90, cpu,
			harness.FormatPeakRSS(s.PeakRSS, s.RSSFloor), harness.FormatRatio(r.ratio(t.Name, r.baseline(t.Name, first))), accuracySummary(r.outcomes[i]))
	}

	most := 0
	for _, os := range r.outcomes {
		most = max(most, len(os))
	}
	b.WriteString("\nEvery run, in the order taken: wall time, then open ports found of those open and closed ports reported closed of those closed.\n\n")
	b.WriteString("| command |")
	for k := range most {
		fmt.Fprintf(&b, " run %d |", k+1)
	}
	b.WriteString("\n| --- |" + strings.Repeat(" --- |", most) + "\n")
	for i, t := range r.tools {
		b.WriteString("| " + t.Name + " |")
		for k := range most {
			cell := ""
			if k < len(r.outcomes[i]) {
				cell = runCell(r.outcomes[i][k])
			}
			b.WriteString(" " + cell + " |")
		}
		b.WriteString("\n")
	}
	// portkit's misses by name, for whoever fixes them.
	var misses []string
	for i, t := range r.tools {
		for k, o := range r.outcomes[i] {
			if t.checked && o.err == nil && len(o.score.missed) > 0 {
				misses = append(misses, fmt.Sprintf("- %s run %d missed %s", t.Name, k+1, o.score.missedString(10)))
			}
		}
	}
	if len(misses) > 0 {
		b.WriteString("\n" + strings.Join(misses, "\n") + "\n")
	}
	if len(r.targets) > 0 {
		b.WriteString("\n" + strings.Join(r.targets, "\n") + "\n")
	}
	return b.String()
}

// runCell is one run in the table of runs.
func runCell(o outcome) string {
	if o.err != nil {
		msg := o.err.Error()
		if len(msg) > 120 {
			msg = msg[:120] + "…"
		}
		return "**failed**: " + strings.ReplaceAll(msg, "|", `\|`)
	}
	return harness.FormatDuration(o.sample.Wall) + ": " + o.score.String()
}

// accuracySummary folds identical accuracies: "25/25 open, … (5 runs)".
func accuracySummary(os []outcome) string {
	var (
		order  []string
		counts = map[string]int{}
	)
	for _, o := range os {
		s := o.score.String()
		if o.err != nil {
			s = "**failed**"
		}
		if counts[s] == 0 {
			order = append(order, s)
		}
		counts[s]++
	}
	parts := make([]string, len(order))
	for i, s := range order {
		parts[i] = fmt.Sprintf("%s (%s)", s, plural(counts[s], "run"))
	}
	return strings.Join(parts, "; ")
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
