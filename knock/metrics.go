package knock

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
)

// Metrics counts what the server sees and does, and writes it in the
// Prometheus text exposition format (version 0.0.4), written by hand for
// the reason forward.Metrics gives: client_golang's initialisation would
// cost every start of the one portkit binary.
type Metrics struct {
	mu       sync.Mutex
	accepted map[string]int64    // by kind: spa, sequence
	refused  map[[2]string]int64 // by kind and reason (the Reason, labelled when written: no allocation a refusal)
	openErrs int64
	sources  func() int // the sources followed now
	dropped  func() uint64
}

// NewMetrics returns an empty set of counters.
func NewMetrics() *Metrics {
	return &Metrics{accepted: map[string]int64{}, refused: map[[2]string]int64{}}
}

func (m *Metrics) accept(kind string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.accepted[kind]++
	m.mu.Unlock()
}

func (m *Metrics) refuse(kind string, r Reason) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.refused[[2]string{kind, string(r)}]++
	m.mu.Unlock()
}

func (m *Metrics) openError() {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.openErrs++
	m.mu.Unlock()
}

// SetDropped makes the metrics report the packet reader's drops.
func (m *Metrics) SetDropped(f func() uint64) {
	m.mu.Lock()
	m.dropped = f
	m.mu.Unlock()
}

func (m *Metrics) setSources(f func() int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.sources = f
	m.mu.Unlock()
}

// ServeHTTP serves the metrics to a Prometheus scrape.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_ = m.WriteText(w)
}

// WriteText writes every metric in the text exposition format.
func (m *Metrics) WriteText(w io.Writer) error {
	m.mu.Lock()
	kinds := sortedKeys(m.accepted)
	accepted := make([]int64, len(kinds))
	for i, k := range kinds {
		accepted[i] = m.accepted[k]
	}
	refusedKeys := make([][2]string, 0, len(m.refused))
	for k := range m.refused {
		refusedKeys = append(refusedKeys, k)
	}
	sort.Slice(refusedKeys, func(i, j int) bool {
		a, b := refusedKeys[i], refusedKeys[j]
		return a[0] < b[0] || a[0] == b[0] && a[1] < b[1]
	})
	refused := make([]int64, len(refusedKeys))
	for i, k := range refusedKeys {
		refused[i] = m.refused[k]
	}
	openErrs, sources, dropped := m.openErrs, m.sources, m.dropped
	m.mu.Unlock()

	bw := bufio.NewWriter(w)
	head := func(name, typ, help string) {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	head("portkit_knockd_accepted_total", "counter", "Knocks and SPA packets accepted, by kind (spa, sequence).")
	for i, k := range kinds {
		fmt.Fprintf(bw, "portkit_knockd_accepted_total{kind=%q} %d\n", k, accepted[i])
	}
	head("portkit_knockd_refused_total", "counter", "Knocks and SPA packets refused, by kind and reason.")
	for i, k := range refusedKeys {
		fmt.Fprintf(bw, "portkit_knockd_refused_total{kind=%q,reason=%q} %d\n", k[0], Reason(k[1]).label(), refused[i])
	}
	head("portkit_knockd_open_errors_total", "counter", "Openings the firewall failed to make.")
	fmt.Fprintf(bw, "portkit_knockd_open_errors_total %d\n", openErrs)
	if sources != nil {
		head("portkit_knockd_sources", "gauge", "Sources whose knock sequences are being followed.")
		fmt.Fprintf(bw, "portkit_knockd_sources %d\n", sources())
	}
	if dropped != nil {
		head("portkit_knockd_dropped_packets_total", "counter", "Packets the kernel dropped because the reader fell behind.")
		fmt.Fprintf(bw, "portkit_knockd_dropped_packets_total %d\n", dropped())
	}
	return bw.Flush()
}

func sortedKeys(m map[string]int64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
