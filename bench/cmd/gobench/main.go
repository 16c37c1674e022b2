// Command gobench reads `go test -bench -benchmem` output on stdin, prints
// the figures as a markdown table, checks them against targets and can write
// them into a section of a markdown file.
//
//	go test -run '^$' -bench . -benchmem ./registry | gobench -max-ns 1000 -max-allocs 0 -md docs/BENCHMARKS.md -section lookup-go
//
// Exit codes: 0 every target met, 1 a target missed or no benchmark read,
// 2 bad usage.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portkit/portkit/bench/harness"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

// result is one benchmark line.
type result struct {
	name          string
	nsPerOp       float64
	bytes, allocs float64
	hasMem        bool
	// others are the metrics a benchmark reports itself
	// (b.ReportMetric), as printed: "72.5 B/entry".
	others []string
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("gobench", flag.ContinueOnError)
	fl.SetOutput(stderr)
	maxNS := fl.Float64("max-ns", 0, "target: at most this many ns/op (0: none)")
	maxAllocs := fl.Int("max-allocs", -1, "target: at most this many allocs/op (-1: none)")
	title := fl.String("title", "Go benchmarks", "title of the table")
	command := fl.String("command", "", "the command that produced the input, written above the table")
	md := fl.String("md", "", "markdown `FILE` to write the table into")
	section := fl.String("section", "", "section `NAME` in FILE")
	want := fl.String("want", "", "comma-separated `NAMES` of benchmarks that must be in the input (without the -N suffix)")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if (*md == "") != (*section == "") {
		fmt.Fprintln(stderr, "gobench: -md and -section go together")
		return 2
	}
	var (
		results []result
		header  []string
	)
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(stderr, line) // pass the raw output through
		for _, h := range []string{"goos:", "goarch:", "cpu:", "pkg:"} {
			if strings.HasPrefix(line, h) {
				header = append(header, strings.TrimSpace(line))
			}
		}
		if r, ok := parseLine(line); ok {
			results = append(results, r)
		}
	}
	if len(results) == 0 {
		fmt.Fprintln(stderr, "gobench: no benchmark results on stdin")
		return 1
	}
	// A benchmark renamed or left out must not drop from the targets
	// unnoticed.
	for _, name := range strings.Split(*want, ",") {
		if name != "" && !slices.ContainsFunc(results, func(r result) bool { return baseName(r.name) == name }) {
			fmt.Fprintf(stderr, "gobench: benchmark %s is not in the input\n", name)
			return 1
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n\n%s, %s\n\n", *title, time.Now().UTC().Format("2006-01-02 15:04 UTC"), strings.Join(header, ", "))
	if *command != "" {
		fmt.Fprintf(&b, "```\n%s\n```\n\n", *command)
	}
	// A column for the benchmarks' own metrics, only when one has some,
	// so that the other tables keep their shape.
	others := slices.ContainsFunc(results, func(r result) bool { return len(r.others) > 0 })
	if others {
		b.WriteString("| benchmark | ns/op | B/op | allocs/op | other metrics | target |\n|---|---:|---:|---:|---:|---|\n")
	} else {
		b.WriteString("| benchmark | ns/op | B/op | allocs/op | target |\n|---|---:|---:|---:|---|\n")
	}
	code := 0
	for _, r := range results {
		verdict, ok := check(r, *maxNS, *maxAllocs)
		if !ok {
			code = 1
		}
		fmt.Fprintf(&b, "| %s | %.1f | %.0f | %.0f |", r.name, r.nsPerOp, r.bytes, r.allocs)
		if others {
			fmt.Fprintf(&b, " %s |", strings.Join(r.others, ", "))
		}
		fmt.Fprintf(&b, " %s |\n", verdict)
	}
	fmt.Fprint(stdout, b.String())
	if *md != "" {
		if err := harness.WriteSection(*md, *section, b.String()); err != nil {
			fmt.Fprintln(stderr, "gobench:", err)
			return 1
		}
	}
	return code
}

// check tells whether r meets the targets, in words for the table.
func check(r result, maxNS float64, maxAllocs int) (string, bool) {
	var parts []string
	ok := true
	if maxNS > 0 {
		met := r.nsPerOp <= maxNS
		ok = ok && met
		parts = append(parts, fmt.Sprintf("≤ %g ns %s", maxNS, passFail(met)))
	}
	if maxAllocs >= 0 {
		met := r.hasMem && r.allocs <= float64(maxAllocs)
		ok = ok && met
		parts = append(parts, fmt.Sprintf("≤ %d allocs %s", maxAllocs, passFail(met)))
	}
	if len(parts) == 0 {
		return "-", true
	}
	return strings.Join(parts, ", "), ok
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// parseLine reads "BenchmarkX-2  123  45.6 ns/op  0 B/op  0 allocs/op",
// and any other "VALUE UNIT" pairs after ns/op.
func parseLine(line string) (result, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || f[3] != "ns/op" {
		return result{}, false
	}
	ns, err := strconv.ParseFloat(f[2], 64)
	if err != nil {
		return result{}, false
	}
	r := result{name: f[0], nsPerOp: ns}
	for i := 4; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			continue
		}
		switch f[i+1] {
		case "B/op":
			r.bytes, r.hasMem = v, true
		case "allocs/op":
			r.allocs = v
		default:
			r.others = append(r.others, f[i]+" "+f[i+1])
		}
	}
	return r, true
}

// baseName is a benchmark's name without the GOMAXPROCS suffix
// ("BenchmarkByPort-2" → "BenchmarkByPort").
func baseName(name string) string {
	if i := strings.LastIndexByte(name, '-'); i > 0 && strings.Trim(name[i+1:], "0123456789") == "" {
		return name[:i]
	}
	return name
}
