package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseIperf(t *testing.T) {
	out := []byte(`{"start":{},"end":{"sum_sent":{"bytes":1300,"bits_per_second":9e9},
		"sum_received":{"bytes":1250000000,"bits_per_second":1.0e10}}}`)
	gbps, bytes, err := parseIperf(out)
	if err != nil || gbps != 10 || bytes != 1250000000 {
		t.Errorf("parseIperf = %v, %v, %v; want 10, 1250000000, nil", gbps, bytes, err)
	}
	for _, bad := range []string{`{"error":"unable to connect to server"}`, `{"end":{}}`, `not json`} {
		if _, _, err := parseIperf([]byte(bad)); err == nil {
			t.Errorf("parseIperf(%s) succeeded", bad)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	m := parseMetrics("# HELP go_goroutines x\n# TYPE go_goroutines gauge\ngo_goroutines 12\n" +
		"process_open_fds 9\nforward_connections_total{rule=\"tcp/:1\"} 4\ngo_gc_duration_seconds{quantile=\"0\"} 1e-05\n")
	if m["go_goroutines"] != 12 || m["process_open_fds"] != 9 || len(m) != 2 {
		t.Errorf("parseMetrics = %v", m)
	}
}

func TestMedianAndPaired(t *testing.T) {
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median odd = %v", got)
	}
	if got := median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("median even = %v", got)
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median(nil) is not NaN")
	}
	// Round 2's load halves both sides: the paired ratio stays 2.
	a := []float64{20, 10, 22, math.NaN()}
	b := []float64{10, 5, 11, 7}
	if got := pairedRatio(a, b); got != 2 {
		t.Errorf("pairedRatio = %v, want 2", got)
	}
	if got := pairedDiff(a, b); got != 10 {
		t.Errorf("pairedDiff = %v, want 10", got)
	}
}

func TestFormatting(t *testing.T) {
	for _, tt := range []struct {
		x    float64
		want string
	}{{1.234, "1.23"}, {12.34, "12.3"}, {123.4, "123"}, {12345.6, "12,346"}, {math.NaN(), "n/a"}} {
		if got := num(tt.x); got != tt.want {
			t.Errorf("num(%v) = %q, want %q", tt.x, got, tt.want)
		}
	}
	if got := count(1234567); got != "1,234,567" {
		t.Errorf("count = %q", got)
	}
	if got := signedDur(-1500 * time.Microsecond); got != "−1.50 ms" {
		t.Errorf("signedDur = %q", got)
	}
}

func TestRotated(t *testing.T) {
	seen := map[int]bool{}
	for r := range 4 {
		o := rotated(4, r)
		seen[o[0]] = true
		if len(o) != 4 {
			t.Fatalf("rotated(4, %d) = %v", r, o)
		}
	}
	if len(seen) != 4 {
		t.Errorf("not every path goes first in 4 rounds: %v", seen)
	}
}

func TestParseArgs(t *testing.T) {
	var out, errb strings.Builder
	c, err := parseArgs([]string{"idle", "-conns", "1000"}, &out, &errb)
	if err != nil || c.conns != 1000 || c.mode != "idle" {
		t.Fatalf("parseArgs idle: %+v, %v", c, err)
	}
	c, err = parseArgs([]string{"churn"}, &out, &errb)
	if err != nil || c.conns != 20000 || c.concurrency != 50 {
		t.Fatalf("parseArgs churn defaults: %+v, %v", c, err)
	}
	for _, bad := range [][]string{{}, {"nope"}, {"tcp", "-md", "x"}, {"udp", "-sizes", "4"}, {"tcp", "extra"}} {
		if _, err := parseArgs(bad, &out, &errb); err == nil {
			t.Errorf("parseArgs(%q) succeeded", bad)
		}
	}
}

func TestTableAndSection(t *testing.T) {
	tb := &table{head: []string{"path", "line", "x"}, align: []string{"", "---"}}
	tb.row("direct", "`a|b`", "1")
	got := tb.String()
	want := "| path | line | x |\n| --- | --- | ---: |\n| direct | `a|b` | 1 |\n"
	if got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
	s := newSection("T", "setup")
	s.addTarget(true, "a", "1")
	s.addTarget(false, "b", "")
	md := s.markdown("bash bench/forward.sh")
	for _, w := range []string{"**T** — ", "setup; load average", "`bash bench/forward.sh`", "- target a: PASS (1)", "- target b: FAIL"} {
		if !strings.Contains(md, w) {
			t.Errorf("section lacks %q:\n%s", w, md)
		}
	}
	if s.pass {
		t.Error("a failed target left the section passing")
	}
}

func TestEveryRun(t *testing.T) {
	paths := []*path{{name: "direct"}, {name: "portkit"}}
	runs := map[string][]string{"direct/1×": {"a", "b"}, "direct/8×": {"c", "d"}, "portkit/1×": {"e"}, "portkit/8×": {"f", "g"}}
	groups := []string{"1×", "8×"}
	key := func(pi, gi int) string { return paths[pi].name + "/" + groups[gi] }
	got := everyRun("Every run:", paths, groups, 2,
		func(pi, gi int) int { return len(runs[key(pi, gi)]) },
		func(pi, gi, k int) string { return runs[key(pi, gi)][k] })
	for _, want := range []string{"Every run:", "| path | 1×, round 1 | 1×, round 2 | 8×, round 1 | 8×, round 2 |",
		"| direct | a | b | c | d |", "| portkit | e |  | f | g |"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in:\n%s", want, got)
		}
	}
}
