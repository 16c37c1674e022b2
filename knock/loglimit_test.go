package knock

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portkit/portkit/knock/spa"
)

func TestLogLimiter(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	src := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}) }

	// One source: its own budget, then counted; time gives lines back.
	l := newLogLimiter(t0)
	for i := range RefusalLogPerSource {
		if n, ok := l.allow(src(1), t0); !ok || n != 0 {
			t.Fatalf("line %d of one source: %v, %d suppressed", i, ok, n)
		}
	}
	for range 3 {
		if _, ok := l.allow(src(1), t0); ok {
			t.Fatal("a source past its budget was logged")
		}
	}
	// Another source, never seen, is logged at once, and its line tells
	// the three not logged.
	if n, ok := l.allow(src(2), t0); !ok || n != 3 {
		t.Fatalf("a new source while the overall budget lasts: %v with %d suppressed, want a line telling 3", ok, n)
	}
	l.allow(src(1), t0)
	if n, ok := l.allow(src(1), t0.Add(RefusalLogPerSourceEvery)); !ok || n != 1 {
		t.Fatalf("the source after %v: %v with %d suppressed, want a line telling 1", RefusalLogPerSourceEvery, ok, n)
	}

	// Many sources: new ones are logged until the overall budget is spent,
	// then counted; the count is the next line's, or takeSuppressed's.
	l = newLogLimiter(t0)
	logged := 0
	for i := range 1000 {
		if _, ok := l.allow(src(i), t0); ok {
			logged++
		}
	}
	if logged != RefusalLogBurst {
		t.Fatalf("%d of 1000 new sources logged at once, want the burst, %d", logged, RefusalLogBurst)
	}
	if n, ok := l.allow(src(5000), t0.Add(RefusalLogEvery)); !ok || n != 1000-RefusalLogBurst {
		t.Fatalf("after %v: %v with %d suppressed, want a line telling %d", RefusalLogEvery, ok, n, 1000-RefusalLogBurst)
	}
	l.allow(src(5001), t0.Add(RefusalLogEvery))
	if n := l.takeSuppressed(); n != 1 {
		t.Fatalf("takeSuppressed = %d, want 1", n)
	}
	if n := l.takeSuppressed(); n != 0 {
		t.Fatalf("takeSuppressed again = %d, want 0", n)
	}
}

// TestServerJunkLogRateLimited: a flood of junk SPA packets from as many
// sources is counted whole in the metrics but logged only up to the
// overall budget; the next line tells how many were not; an accepted
// packet is logged whatever the budget.
func TestServerJunkLogRateLimited(t *testing.T) {
	keys := testKeys(t)
	ts := newTestServer(t, t.TempDir(), keys, func(c *Config) { c.SPA[0].Source = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")} })
	const n = 5000
	junk := bytes.Repeat([]byte("QUJD"), 60)
	for i := range n {
		src := netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)})
		junk[i%len(junk)] = "ABCDEFGH"[i%8]
		ts.HandlePacket(context.Background(), ipv4(src, server, UDP, udp(DefaultSPAPort, junk)))
	}
	lines := strings.Count(ts.log.String(), "msg=refused")
	if lines != RefusalLogBurst {
		t.Errorf("%d refusal lines for %d junk packets, want %d (the burst)", lines, n, RefusalLogBurst)
	}
	var metrics bytes.Buffer
	ts.opts.Metrics.WriteText(&metrics)
	if want := fmt.Sprintf(`portkit_knockd_refused_total{kind="spa",reason="bad_HMAC"} %d`, n); !strings.Contains(metrics.String(), want) {
		t.Errorf("metrics lack %q:\n%s", want, metrics.String())
	}

	// Accepted with the budget spent: logged.
	ts.expect(t, client, ts.spaPacket(t, spa.Message{Type: spa.AccessMsg}, keys), []string{"198.18.0.1 tcp/22 30s"}, "msg=accepted")

	// The next refusal logged tells how many were not.
	ts.now = ts.now.Add(time.Second)
	ts.expect(t, other, junk, nil, `reason="bad HMAC"`)
	if want := fmt.Sprintf("suppressed=%d", n-RefusalLogBurst); !strings.Contains(ts.log.String(), want) {
		t.Errorf("the next refusal line %q lacks %s", ts.log.String(), want)
	}
	// And the periodic report tells what no line told.
	for i := range 2 * RefusalLogPerSource {
		ts.HandlePacket(context.Background(), ipv4(other, server, UDP, udp(DefaultSPAPort, append(junk, "ABCD"[i%4]))))
	}
	ts.log.Reset()
	ts.ReportSuppressed()
	if !strings.Contains(ts.log.String(), "msg=\"refusals not logged\" suppressed=") {
		t.Errorf("report: %q, want a count of refusals not logged", ts.log.String())
	}
	ts.log.Reset()
	ts.ReportSuppressed()
	if ts.log.Len() != 0 {
		t.Errorf("a second report with nothing suppressed said %q", ts.log.String())
	}
}

// TestServerJunkAllocatesNothing: once the log's budget is spent, a junk
// SPA packet (base64 of a plausible length, a bad HMAC) and a junk knock
// cost the server no allocation: parsing only.
func TestServerJunkAllocatesNothing(t *testing.T) {
	ts := newTestServer(t, t.TempDir(), testKeys(t), nil)
	junk := ipv4(other, server, UDP, udp(DefaultSPAPort, bytes.Repeat([]byte("QUJD"), 60)))
	short := ipv4(other, server, UDP, udp(DefaultSPAPort, bytes.Repeat([]byte("QUJD"), 10)))
	binary := ipv4(other, server, UDP, udp(DefaultSPAPort, bytes.Repeat([]byte{0xff, 'A'}, 120)))
	knock := ipv4(other, server, TCP, tcp(9000, synFlag)) // a wrong first knock
	ctx := context.Background()
	for range RefusalLogBurst + RefusalLogPerSource {
		ts.HandlePacket(ctx, junk)
	}
	for name, pkt := range map[string][]byte{"bad HMAC": junk, "too short": short, "not base64": binary, "wrong knock": knock} {
		if a := testing.AllocsPerRun(200, func() { ts.HandlePacket(ctx, pkt) }); a != 0 {
			t.Errorf("%s: %v allocations a packet, want none", name, a)
		}
	}
}
