package guard

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
)

// ServeHTTP serves the metrics in the Prometheus text exposition format
// (version 0.0.4), written by hand as forward.Metrics does and for the
// same reason: client_golang's start-up cost in every run of the one
// binary.
func (g *Guard) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_ = g.WriteMetrics(w)
}

// WriteMetrics writes the counters and gauges.
func (g *Guard) WriteMetrics(w io.Writer) error {
	st, blocked := g.Stats()
	g.mu.Lock()
	dropped := g.dropped
	g.mu.Unlock()
	bw := bufio.NewWriter(w)
	one := func(name, typ, help string, v uint64) {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", name, help, name, typ, name, v)
	}
	one("portkit_guard_packets_total", "counter", "Packets read.", st.Packets)
	one("portkit_guard_attempts_total", "counter", "Connection attempts decided.", st.Attempts)
	one("portkit_guard_refused_total", "counter", "Connection attempts refused (reset, ICMP, dropped).", st.Refused)
	fmt.Fprintf(bw, "# HELP portkit_guard_scans_total Scans detected, by type.\n# TYPE portkit_guard_scans_total counter\n")
	types := make([]string, 0, len(st.Scans))
	for t := range st.Scans {
		types = append(types, t)
	}
	slices.Sort(types)
	for _, t := range types {
		fmt.Fprintf(bw, "portkit_guard_scans_total{type=\"%s\"} %d\n", labelEscaper.Replace(t), st.Scans[t])
	}
	one("portkit_guard_blocked_total", "counter", "Sources handed to the blocker.", blocked)
	one("portkit_guard_evicted_total", "counter", "Sources let go early to stay within max_sources.", st.Evicted)
	one("portkit_guard_sources_tracked", "gauge", "Sources tracked now.", uint64(st.Sources))
	one("portkit_guard_pending_attempts", "gauge", "Attempts awaiting their answer now.", uint64(st.Pending))
	one("portkit_guard_scans_active", "gauge", "Scans going on now.", uint64(st.Alerts))
	if dropped != nil {
		one("portkit_guard_ring_dropped_total", "counter", "Packets the capture ring had no room for.", dropped())
	}
	return bw.Flush()
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
