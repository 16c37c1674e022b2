package scan

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/portkit/portkit/hostports"
)

// portBlock holds a block of n consecutive loopback ports below the
// ephemeral range (so that no connect of this or another process takes one
// as its source port meanwhile): it listens on all of them, then keeps
// listening on open of them and closes the rest. It returns the block's
// first port and the open ports.
func portBlock(t *testing.T, ip string, n, open int) (lo uint16, opened map[uint16]bool) {
	t.Helper()
	ephemeral := uint16(32768)
	if pol, err := hostports.Read(); err == nil && pol.EphemeralLow > 2048 {
		ephemeral = pol.EphemeralLow
	}
	for try := 0; try < 50; try++ {
		lo = uint16(1024 + rand.IntN(int(ephemeral)-1024-n))
		var ls []net.Listener
		ok := true
		for p := lo; p < lo+uint16(n); p++ {
			l, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(p)))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		if !ok {
			for _, l := range ls {
				l.Close()
			}
			continue
		}
		opened = make(map[uint16]bool)
		for _, i := range rand.Perm(n)[:open] {
			opened[lo+uint16(i)] = true
		}
		for i, l := range ls {
			if opened[lo+uint16(i)] {
				t.Cleanup(func() { l.Close() })
			} else {
				l.Close()
			}
		}
		return lo, opened
	}
	t.Skipf("no block of %d free ports on %s", n, ip)
	return 0, nil
}

func TestConnectLoopback(t *testing.T) {
	for _, ip := range []string{"127.0.0.1", "::1"} {
		t.Run(ip, func(t *testing.T) {
			if ip == "::1" {
				l, err := net.Listen("tcp", "[::1]:0")
				if err != nil {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				l.Close()
			}
			const n = 200
			lo, open := portBlock(t, ip, n, 7)
			s := Scanner{
				Targets: addrList{netip.MustParseAddr(ip)},
				Ports:   portRange{lo, lo + n - 1, TCP},
				Seed:    rand.Uint64(),
			}
			st, m := scanAll(t, &s)
			if len(m) != n {
				t.Fatalf("%d results, want %d", len(m), n)
			}
			for p, r := range m {
				want, reason := Closed, "conn-refused"
				if open[p.Port] {
					want, reason = Open, "syn-ack"
				}
				if r.State != want || r.Reason != reason {
					t.Errorf("port %d: %v (%s), want %v (%s)", p.Port, r.State, r.Reason, want, reason)
				}
				if r.RTT <= 0 || r.RTT > 5*time.Second {
					t.Errorf("port %d: RTT %v", p.Port, r.RTT)
				}
			}
			if st.Open != uint64(len(open)) || st.Closed != n-uint64(len(open)) {
				t.Errorf("stats: %d open, %d closed; want %d, %d", st.Open, st.Closed, len(open), n-len(open))
			}
			if st.InFlightLimit <= 0 || st.InFlightLimitBy == "" {
				t.Errorf("stats: in-flight limit %d (%q)", st.InFlightLimit, st.InFlightLimitBy)
			}
			t.Logf("%d ports in %v, %d sent; in flight at most %d (%s)", n, st.Elapsed, st.Sent, st.InFlightLimit, st.InFlightLimitBy)
		})
	}
}

func TestConnectShardsLoopback(t *testing.T) {
	const n = 300
	lo, open := portBlock(t, "127.0.0.1", n, 9)
	seed := rand.Uint64()
	var all []Result
	for shard := range 4 {
		var c collect
		s := Scanner{
			Targets: addrList{netip.MustParseAddr("127.0.0.1")},
			Ports:   portRange{lo, lo + n - 1, TCP},
			Seed:    seed, Shard: shard, Shards: 4,
		}
		if _, err := s.Run(t.Context(), &c); err != nil {
			t.Fatal(err)
		}
		all = append(all, c.results...)
	}
	m, err := byProbe(all)
	if err != nil {
		t.Fatalf("shards overlap: %v", err)
	}
	if len(m) != n {
		t.Fatalf("shards decide %d ports, want %d", len(m), n)
	}
	found := 0
	for p, r := range m {
		if (r.State == Open) != open[p.Port] {
			t.Errorf("port %d: %v", p.Port, r.State)
		}
		if r.State == Open {
			found++
		}
	}
	if found != len(open) {
		t.Errorf("found %d open ports, want %d", found, len(open))
	}
}

// The engine's bound is what Stats report.
func TestConnectBoundReported(t *testing.T) {
	eng := &Connect{Limit: 4}
	const n = 100
	lo, _ := portBlock(t, "127.0.0.1", n, 0)
	s := Scanner{Targets: addrList{netip.MustParseAddr("127.0.0.1")}, Ports: portRange{lo, lo + n - 1, TCP}, Engine: eng}
	st, err := s.Run(t.Context(), &collect{})
	if err != nil {
		t.Fatal(err)
	}
	if st.InFlightLimit != 4 || st.InFlightLimitBy != "connect engine: limit 4" {
		t.Errorf("in-flight limit %d (%q), want 4 from the engine", st.InFlightLimit, st.InFlightLimitBy)
	}
	if st.Done != n {
		t.Errorf("%d done, want %d", st.Done, n)
	}
}

// BenchmarkConnectLoopback scans 127.0.0.1 ports 1–65535 with the connect
// engine; probes/s is the figure.
func BenchmarkConnectLoopback(b *testing.B) {
	var st Stats
	for b.Loop() {
		s := Scanner{Targets: addrList{netip.MustParseAddr("127.0.0.1")}, Ports: portRange{1, 65535, TCP}}
		var err error
		st, err = s.Run(b.Context(), SinkFunc(func(Result) error { return nil }))
		if err != nil {
			b.Fatal(err)
		}
		if st.Done != 65535 {
			b.Fatalf("%d done", st.Done)
		}
	}
	b.ReportMetric(float64(b.N)*65535/b.Elapsed().Seconds(), "probes/s")
	b.ReportMetric(float64(st.Retransmitted), "retransmits")
	b.ReportMetric(float64(st.Open), "open")
}
