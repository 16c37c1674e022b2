package knock

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMetricsText: Prometheus's own parser reads what WriteText writes.
func TestMetricsText(t *testing.T) {
	m := NewMetrics()
	m.accept("spa")
	m.accept("sequence")
	m.accept("spa")
	m.refuse("spa", ReasonBadHMAC)
	m.refuse("sequence", ReasonWrongSequence)
	m.openError()
	m.setSources(func() int { return 7 })
	m.SetDropped(func() uint64 { return 3 })

	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("content type %q", ct)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatalf("%v in:\n%s", err, rec.Body.String())
	}
	value := func(name string, labels ...string) float64 {
		t.Helper()
		f := fams[name]
		if f == nil {
			t.Fatalf("no %s", name)
		}
	next:
		for _, mt := range f.Metric {
			for i := 0; i < len(labels); i += 2 {
				found := false
				for _, l := range mt.Label {
					found = found || l.GetName() == labels[i] && l.GetValue() == labels[i+1]
				}
				if !found {
					continue next
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
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"portkit_knockd_accepted_total", []string{"kind", "spa"}, 2},
		{"portkit_knockd_accepted_total", []string{"kind", "sequence"}, 1},
		{"portkit_knockd_refused_total", []string{"kind", "spa", "reason", "bad_HMAC"}, 1},
		{"portkit_knockd_refused_total", []string{"kind", "sequence", "reason", "wrong_sequence"}, 1},
		{"portkit_knockd_open_errors_total", nil, 1},
		{"portkit_knockd_sources", nil, 7},
		{"portkit_knockd_dropped_packets_total", nil, 3},
	} {
		if got := value(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}
