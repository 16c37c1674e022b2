package main

import (
	"strings"
	"testing"
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
