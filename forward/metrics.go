package forward

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Metrics counts what the forwarder does, per rule, and writes it in the
// Prometheus text exposition format (version 0.0.4).
//
// portkit writes the format itself rather than linking
// prometheus/client_golang: that library's package initialisation (its
// default registry with Go and process collectors, procfs, protobuf) runs in
// every start of the one portkit binary, ~0.9 ms measured, which alone would
// push `portkit lookup` past its start-up bound. The tests check the output
// with Prometheus's own parser.
type Metrics struct {
	mu    sync.Mutex
	rules map[string]*ruleMetrics

	resourceErrors [numOps]atomic.Int64 // accepts and dials out of descriptors
}

// NewMetrics returns an empty set of counters.
func NewMetrics() *Metrics { return &Metrics{rules: map[string]*ruleMetrics{}} }

// Denial reasons, the "reason" label of portkit_forward_denied_total.
const (
	deniedACL = iota
	deniedLimit
	deniedProxyHeader
	numDenied
)

var deniedNames = [numDenied]string{"acl", "limit", "proxy_header"}

type ruleMetrics struct {
	active, total           atomic.Int64 // TCP connections
	sessions, sessionsTotal atomic.Int64 // UDP sessions
	evicted                 atomic.Int64
	fromClient, toClient    atomic.Int64 // bytes
	denied                  [numDenied]atomic.Int64

	mu         sync.Mutex
	protocol   Protocol // the rule's now: a name may pass to a rule of the other
	dialErrors map[string]int64
	targets    func() []targetHealth // nil once no rule has the name
}

type targetHealth struct {
	addr string
	up   bool
}

// rule returns the counters of the rule called name, made on first use.
// Counters outlive reloads: a rule's totals keep counting under its name.
func (m *Metrics) rule(name string, p Protocol) *ruleMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rules[name]
	if r == nil {
		r = &ruleMetrics{dialErrors: map[string]int64{}}
		m.rules[name] = r
	}
	r.mu.Lock()
	r.protocol = p
	r.mu.Unlock()
	return r
}

func (r *ruleMetrics) proto() Protocol {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.protocol
}

func (r *ruleMetrics) dialError(target string) {
	r.mu.Lock()
	r.dialErrors[target]++
	r.mu.Unlock()
}

func (r *ruleMetrics) setTargets(f func() []targetHealth) {
	r.mu.Lock()
	r.targets = f
	r.mu.Unlock()
}

// ServeHTTP serves the metrics to a Prometheus scrape.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_ = m.WriteText(w)
}

// WriteText writes every metric in the text exposition format.
func (m *Metrics) WriteText(w io.Writer) error {
	m.mu.Lock()
	names := make([]string, 0, len(m.rules))
	for n := range m.rules {
		names = append(names, n)
	}
	rules := make([]*ruleMetrics, len(names))
	sort.Strings(names)
	for i, n := range names {
		rules[i] = m.rules[n]
	}
	m.mu.Unlock()

	bw := bufio.NewWriter(w)
	family := func(name, typ, help string, each func(emit func(labels string, v int64))) {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		each(func(labels string, v int64) { fmt.Fprintf(bw, "%s%s %d\n", name, labels, v) })
	}
	perRule := func(name, typ, help string, p Protocol, v func(*ruleMetrics) int64) {
		family(name, typ, help, func(emit func(string, int64)) {
			for i, r := range rules {
				if p == "" || r.proto() == p {
					emit(labels("rule", names[i]), v(r))
				}
			}
		})
	}
	perRule("portkit_forward_connections_active", "gauge", "TCP connections being forwarded now.", TCP,
		func(r *ruleMetrics) int64 { return r.active.Load() })
	perRule("portkit_forward_connections_total", "counter", "TCP connections accepted.", TCP,
		func(r *ruleMetrics) int64 { return r.total.Load() })
	perRule("portkit_forward_udp_sessions_active", "gauge", "UDP sessions open now.", UDP,
		func(r *ruleMetrics) int64 { return r.sessions.Load() })
	perRule("portkit_forward_udp_sessions_total", "counter", "UDP sessions started.", UDP,
		func(r *ruleMetrics) int64 { return r.sessionsTotal.Load() })
	perRule("portkit_forward_udp_sessions_evicted_total", "counter", "UDP sessions ended early to stay within max_sessions.", UDP,
		func(r *ruleMetrics) int64 { return r.evicted.Load() })
	family("portkit_forward_bytes_total", "counter", "Bytes relayed, by direction.",
		func(emit func(string, int64)) {
			for i, r := range rules {
				emit(labels("rule", names[i], "direction", "client_to_target"), r.fromClient.Load())
				emit(labels("rule", names[i], "direction", "target_to_client"), r.toClient.Load())
			}
		})
	family("portkit_forward_denied_total", "counter", "Clients refused, by reason.", func(emit func(string, int64)) {
		for i, r := range rules {
			for d := range numDenied {
				emit(labels("rule", names[i], "reason", deniedNames[d]), r.denied[d].Load())
			}
		}
	})
	family("portkit_forward_dial_errors_total", "counter", "Failed dials to a target.", func(emit func(string, int64)) {
		for i, r := range rules {
			r.mu.Lock()
			targets := make([]string, 0, len(r.dialErrors))
			for t := range r.dialErrors {
				targets = append(targets, t)
			}
			sort.Strings(targets)
			for _, t := range targets {
				emit(labels("rule", names[i], "target", t), r.dialErrors[t])
			}
			r.mu.Unlock()
		}
	})
	family("portkit_forward_target_up", "gauge", "1 while a target is up, 0 during its back-off after a failure.", func(emit func(string, int64)) {
		for i, r := range rules {
			r.mu.Lock()
			f := r.targets
			r.mu.Unlock()
			if f == nil {
				continue
			}
			for _, t := range f() {
				v := int64(0)
				if t.up {
					v = 1
				}
				emit(labels("rule", names[i], "target", t.addr), v)
			}
		}
	})
	family("portkit_forward_resource_errors_total", "counter", "Accepts and dials that failed for lack of file descriptors or kernel memory, by operation.",
		func(emit func(string, int64)) {
			for op := range numOps {
				emit(labels("op", opNames[op]), m.resourceErrors[op].Load())
			}
		})
	family("go_goroutines", "gauge", "Number of goroutines that currently exist.", func(emit func(string, int64)) {
		emit("", int64(runtime.NumGoroutine()))
	})
	writeProcessMetrics(bw)
	return bw.Flush()
}

// labels renders {k="v",...} with the format's escapes.
func labels(kv ...string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[i])
		b.WriteString(`="`)
		writeLabelValue(&b, kv[i+1])
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// writeLabelValue writes v with the format's escapes for a label value:
// backslash, double quote and line feed. (A function, not a
// strings.Replacer built at package init, which every portkit command
// would pay for.)
func writeLabelValue(b *strings.Builder, v string) {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteByte(c)
		}
	}
}
