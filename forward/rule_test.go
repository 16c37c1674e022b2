package forward

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseProtoListen(t *testing.T) {
	for _, c := range []struct {
		in, proto, listen, err string
	}{
		{in: ":8080", proto: "tcp", listen: ":8080"},
		{in: "8080", proto: "tcp", listen: ":8080"},
		{in: "tcp/127.0.0.1:80", proto: "tcp", listen: "127.0.0.1:80"},
		{in: "UDP/[::1]:53", proto: "udp", listen: "[::1]:53"},
		{in: "udp/5353", proto: "udp", listen: ":5353"},
		{in: "127.0.0.1:0", proto: "tcp", listen: "127.0.0.1:0"},
		{in: "sctp/:80", err: `protocol "sctp": want tcp or udp`},
		{in: ":65536", err: `bad port "65536"`},
		{in: "localhost", err: "want host:port"},
		{in: "::1:80", err: "want host:port"},
		{in: "", err: "want host:port"},
		{in: "a b:80", err: `bad host "a b"`},
	} {
		proto, listen, err := ParseProtoListen(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !fe.BadInput() {
				t.Errorf("%q: %T is not a bad-input FieldError", c.in, err)
			}
			continue
		}
		if err != nil || string(proto) != c.proto || listen != c.listen {
			t.Errorf("%q = %s %q %v, want %s %q", c.in, proto, listen, err, c.proto, c.listen)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Rule{Listen: ":80", Targets: []string{"10.0.0.1:80"}}
	for _, c := range []struct {
		name string
		edit func(*Rule)
		err  string // "" for valid
	}{
		{"minimal", func(*Rule) {}, ""},
		{"udp", func(r *Rule) { r.Protocol = UDP; r.MaxSessions = 5 }, ""},
		{"no listen", func(r *Rule) { r.Listen = "" }, "listen: missing"},
		{"no targets", func(r *Rule) { r.Targets = nil }, "at least one target"},
		{"target port 0", func(r *Rule) { r.Targets = []string{"h:0"} }, `bad port "0"`},
		{"target no host", func(r *Rule) { r.Targets = []string{":80"} }, "needs a host"},
		{"balance", func(r *Rule) { r.Balance = "random" }, "want first or round-robin"},
		{"negative timeout", func(r *Rule) { r.IdleTimeout = -time.Second }, "idle_timeout"},
		{"negative max", func(r *Rule) { r.MaxConns = -1 }, "max_conns"},
		{"proxy v3", func(r *Rule) { r.ProxyProtocol = 3 }, "want v1 or v2"},
		{"udp proxy", func(r *Rule) { r.Protocol = UDP; r.ProxyProtocol = 1 }, "PROXY protocol is for TCP"},
		{"udp max_conns", func(r *Rule) { r.Protocol = UDP; r.MaxConns = 1 }, "max_sessions"},
		{"accept without trust", func(r *Rule) { r.AcceptProxyProtocol = true }, "trusted"},
		{"trust without accept", func(r *Rule) { r.TrustedProxies = mustPrefixes("10.0.0.5/32") }, "trusted_proxies means nothing without accept_proxy_protocol"},
		{"no idle timeout", func(r *Rule) { r.IdleTimeout = NoLimit }, ""},
		{"no per-source bound", func(r *Rule) { r.MaxConnsPerSource = NoLimit }, ""},
		{"negative idle", func(r *Rule) { r.IdleTimeout = -time.Second }, "idle_timeout"},
		{"negative per-source", func(r *Rule) { r.MaxConnsPerSource = -2 }, "max_conns_per_source"},
		{"control in name", func(r *Rule) { r.Name = "a\nb" }, "control characters"},
	} {
		r := ok
		c.edit(&r)
		err := r.Validate()
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.err)
		}
	}
	d := Rule{Protocol: UDP, Listen: ":53", Targets: []string{"h:53"}}.WithDefaults()
	if d.Name != "udp/:53" || d.IdleTimeout != DefaultUDPIdleTimeout || d.MaxSessions != DefaultMaxSessions || d.Balance != First {
		t.Errorf("UDP defaults: %+v", d)
	}
	if d := ok.WithDefaults(); d.IdleTimeout != DefaultTCPIdleTimeout || d.MaxConnsPerSource != DefaultMaxConnsPerSource ||
		d.ConnectTimeout != DefaultConnectTimeout || d.Protocol != TCP {
		t.Errorf("TCP defaults: %+v", d)
	}
	// NoLimit stays: the defaults are switched off, not applied.
	off := ok
	off.IdleTimeout, off.MaxConnsPerSource = NoLimit, NoLimit
	if d := off.WithDefaults(); d.IdleTimeout != NoLimit || d.MaxConnsPerSource != NoLimit {
		t.Errorf("TCP defaults switched off: %+v", d)
	}
}

// TestDefaultPerSource: with max_conns alone, one client address gets at
// most a quarter of the slots.
func TestDefaultPerSource(t *testing.T) {
	for maxConns, want := range map[int]int{0: 256, 1: 1, 3: 1, 4: 1, 100: 25, 1024: 256, 100000: 256} {
		if got := DefaultPerSource(maxConns); got != want {
			t.Errorf("DefaultPerSource(%d) = %d, want %d", maxConns, got, want)
		}
		if r := (Rule{Listen: ":1", Targets: []string{"h:1"}, MaxConns: maxConns}).WithDefaults(); r.MaxConnsPerSource != want {
			t.Errorf("max_conns %d: per source %d, want %d", maxConns, r.MaxConnsPerSource, want)
		}
	}
}

func TestParsePrefixAndPermits(t *testing.T) {
	for in, want := range map[string]string{
		"10.1.2.3/8": "10.0.0.0/8", "192.0.2.7": "192.0.2.7/32", "2001:db8::1": "2001:db8::1/128",
		"::ffff:10.0.0.0/104": "10.0.0.0/8", "::ffff:192.0.2.1": "192.0.2.1/32",
	} {
		if p, err := ParsePrefix(in); err != nil || p.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "host", "fe80::1%eth0", "", "1.2.3.4/"} {
		if _, err := ParsePrefix(bad); err == nil {
			t.Errorf("ParsePrefix(%q) accepted", bad)
		}
	}
	r := Rule{Allow: mustPrefixes("10.0.0.0/8", "2001:db8::/32", "fe80::/10"), Deny: mustPrefixes("10.9.0.0/16", "fe80::/16")}
	for addr, want := range map[string]bool{
		"10.1.1.1": true, "10.9.1.1": false, "192.0.2.1": false, "2001:db8::5": true,
		"::ffff:10.1.1.1": true, // a v4 client of a dual-stack socket
		"::ffff:10.9.0.1": false,
		"fe80::1%eth0":    false, // a zone must not hide a client from the lists
	} {
		if got := r.permits(netip.MustParseAddr(addr)); got != want {
			t.Errorf("permits(%s) = %v, want %v", addr, got, want)
		}
	}
	if !(&Rule{}).permits(netip.MustParseAddr("203.0.113.1")) {
		t.Error("no lists must permit everyone")
	}
}

func TestTargetSetOrder(t *testing.T) {
	now := time.Unix(1000, 0)
	ts := newTargetSet([]string{"a", "b", "c"}, First)
	if got := ts.order(now); !equalInts(got, 0, 1, 2) {
		t.Fatalf("first: %v", got)
	}
	if b, marked := ts.failed(0, now); b != minBackoff || !marked {
		t.Fatalf("first back-off %v, %v", b, marked)
	}
	// Failures while down (dials begun before it was marked) change nothing.
	if b, marked := ts.failed(0, now.Add(100*time.Millisecond)); b != minBackoff-100*time.Millisecond || marked {
		t.Fatalf("failing again while down: back-off %v, marked %v", b, marked)
	}
	ts.failed(1, now.Add(-500*time.Millisecond)) // b comes back sooner
	if got := ts.order(now); !equalInts(got, 2, 1, 0) {
		t.Fatalf("with a and b down: %v, want c then the down ones, soonest back first", got)
	}
	if got := ts.order(now.Add(minBackoff)); !equalInts(got, 0, 1, 2) {
		t.Fatalf("after the back-off: %v", got)
	}
	now = now.Add(minBackoff)
	if b, _ := ts.failed(0, now); b != 2*minBackoff {
		t.Fatalf("second back-off %v", b)
	}
	for range 10 {
		b, _ := ts.failed(0, now)
		now = now.Add(b)
	}
	if b, _ := ts.failed(0, now); b != maxBackoff {
		t.Fatalf("back-off grows past %v: %v", maxBackoff, b)
	}
	if !ts.succeeded(0) || ts.succeeded(2) || ts.isDown(0, now) {
		t.Fatal("succeeded must bring a target up and say whether it was down")
	}

	rr := newTargetSet([]string{"a", "b", "c"}, RoundRobin)
	var starts []int
	for range 4 {
		starts = append(starts, rr.order(now)[0])
	}
	if !equalInts(starts, 0, 1, 2, 0) {
		t.Fatalf("round-robin starts %v", starts)
	}
	rr.failed(1, now)
	if got := rr.order(now); !equalInts(got, 2, 0, 1) && !equalInts(got, 0, 2, 1) {
		t.Fatalf("round-robin with b down: %v", got)
	}
}

func equalInts(got []int, want ...int) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// FuzzParseProtoListen: command-line listen specs never panic, and what is
// accepted validates as a rule.
func FuzzParseProtoListen(f *testing.F) {
	for _, s := range []string{":8080", "8080", "udp/[::1]:53", "tcp/0.0.0.0:1", "x/1", "[::1", "/", "udp/", "65535", "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		proto, listen, err := ParseProtoListen(s)
		if err != nil {
			return
		}
		r := Rule{Protocol: proto, Listen: listen, Targets: []string{"127.0.0.1:1"}}
		if err := r.Validate(); err != nil {
			t.Fatalf("%q → %s %q does not validate: %v", s, proto, listen, err)
		}
	})
}
