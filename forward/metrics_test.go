package forward

import (
	"bytes"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMetricsParse: the exposition parses with Prometheus's own parser, with
// label values that need escaping, and the counters land where they should.
func TestMetricsParse(t *testing.T) {
	m := NewMetrics()
	r := m.rule("web \"front\"\\1\n", TCP)
	r.total.Add(3)
	r.active.Add(1)
	r.fromClient.Add(100)
	r.toClient.Add(2000)
	r.denied[deniedACL].Add(2)
	r.dialError("10.0.0.1:80")
	r.setTargets(func() []targetHealth { return []targetHealth{{"10.0.0.1:80", false}, {"10.0.0.2:80", true}} })
	u := m.rule("dns", UDP)
	u.sessions.Add(4)
	u.sessionsTotal.Add(9)

	var b bytes.Buffer
	if err := m.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(&b)
	if err != nil {
		t.Fatalf("%v in:\n%s", err, b.String())
	}
	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		f := fams[name]
		if f == nil {
			t.Fatalf("no %s", name)
		}
	metrics:
		for _, mt := range f.Metric {
			for _, l := range mt.Label {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue metrics
				}
			}
			if mt.Counter != nil {
				return mt.Counter.GetValue()
			}
			return mt.Gauge.GetValue()
		}
		t.Fatalf("no %s%v", name, labels)
		return 0
	}
	web := "web \"front\"\\1\n"
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"portkit_forward_connections_total", map[string]string{"rule": web}, 3},
		{"portkit_forward_connections_active", map[string]string{"rule": web}, 1},
		{"portkit_forward_bytes_total", map[string]string{"rule": web, "direction": "client_to_target"}, 100},
		{"portkit_forward_bytes_total", map[string]string{"rule": web, "direction": "target_to_client"}, 2000},
		{"portkit_forward_denied_total", map[string]string{"rule": web, "reason": "acl"}, 2},
		{"portkit_forward_dial_errors_total", map[string]string{"rule": web, "target": "10.0.0.1:80"}, 1},
		{"portkit_forward_target_up", map[string]string{"rule": web, "target": "10.0.0.1:80"}, 0},
		{"portkit_forward_target_up", map[string]string{"rule": web, "target": "10.0.0.2:80"}, 1},
		{"portkit_forward_udp_sessions_active", map[string]string{"rule": "dns"}, 4},
		{"portkit_forward_udp_sessions_total", map[string]string{"rule": "dns"}, 9},
	} {
		if got := value(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if value("go_goroutines", nil) < 1 {
		t.Error("go_goroutines < 1")
	}
}

// TestMetricsFollowReloads: a name that passes from a TCP rule to a UDP one
// is exported as UDP, and a removed rule's targets stop being reported.
func TestMetricsFollowReloads(t *testing.T) {
	fx := newFixture(t, Options{})
	fx.start(Rule{Name: "svc", Listen: "127.0.0.1:0", Targets: []string{"127.0.0.1:1"}},
		Rule{Name: "gone", Listen: "127.0.0.2:0", Targets: []string{"127.0.0.1:2"}})
	if err := fx.fw.Reload([]Rule{{Name: "svc", Protocol: UDP, Listen: "127.0.0.1:0", Targets: []string{"127.0.0.1:1"}}}); err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	fx.m.WriteText(&text)
	out := text.String()
	for _, want := range []string{`portkit_forward_udp_sessions_active{rule="svc"} 0`, `portkit_forward_target_up{rule="svc",target="127.0.0.1:1"} 1`} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s:\n%s", want, out)
		}
	}
	for _, bad := range []string{`portkit_forward_connections_active{rule="svc"}`, `target_up{rule="gone"`} {
		if strings.Contains(out, bad) {
			t.Errorf("metrics still have %s:\n%s", bad, out)
		}
	}
}
