package forward

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// fakeLoopEnv: this host has 192.0.2.10 besides loopback; localhost and
// self.example resolve to it, other names to nothing.
func fakeLoopEnv() loopEnv {
	return loopEnv{
		localAddrs: func() []netip.Addr {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1"), netip.MustParseAddr("192.0.2.10")}
		},
		hostAddrs: func(host string) []netip.Addr {
			switch host {
			case "localhost":
				return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}
			case "self.example":
				return []netip.Addr{netip.MustParseAddr("192.0.2.10")}
			}
			return nil
		},
	}
}

func TestCheckLoops(t *testing.T) {
	tcp := func(name, listen string, targets ...string) Rule {
		return Rule{Name: name, Protocol: TCP, Listen: listen, Targets: targets}
	}
	udp := func(name, listen string, targets ...string) Rule {
		return Rule{Name: name, Protocol: UDP, Listen: listen, Targets: targets}
	}
	for _, tc := range []struct {
		name  string
		rules []Rule
		want  string // "" for no error
	}{
		{"wildcard to loopback", []Rule{tcp("a", ":8080", "127.0.0.1:8080")}, `rule a: targets "127.0.0.1:8080": is this rule's own listen address`},
		{"wildcard to other loopback", []Rule{tcp("a", ":8080", "127.0.0.2:8080")}, `targets "127.0.0.2:8080"`},
		{"wildcard to localhost", []Rule{tcp("a", ":8080", "localhost:8080")}, `targets "localhost:8080"`},
		{"0.0.0.0 to ::1", []Rule{tcp("a", "0.0.0.0:8080", "[::1]:8080")}, `targets "[::1]:8080"`},
		{"wildcard to a local address", []Rule{tcp("a", "0.0.0.0:8080", "192.0.2.10:8080")}, `targets "192.0.2.10:8080"`},
		{"wildcard to a name of this host", []Rule{tcp("a", "[::]:8080", "self.example:8080")}, `targets "self.example:8080"`},
		{"same address", []Rule{tcp("a", "127.0.0.1:8080", "127.0.0.1:8080")}, `targets "127.0.0.1:8080"`},
		{"mapped address", []Rule{tcp("a", "127.0.0.1:8080", "[::ffff:127.0.0.1]:8080")}, `targets`},
		{"unspecified target", []Rule{tcp("a", "127.0.0.1:8080", "0.0.0.0:8080")}, `targets "0.0.0.0:8080"`},
		{"listen by name", []Rule{tcp("a", "localhost:8080", "127.0.0.1:8080")}, `targets "127.0.0.1:8080"`},
		// net.Listen binds localhost to its IPv4 address alone.
		{"listen by name, other family", []Rule{tcp("a", "localhost:8080", "[::1]:8080")}, ""},
		{"udp too", []Rule{udp("d", ":5353", "127.0.0.1:5353")}, `rule d: targets "127.0.0.1:5353"`},
		{"second target", []Rule{tcp("a", ":8080", "10.0.0.1:80", "127.0.0.1:8080")}, `targets "127.0.0.1:8080"`},
		{"cycle of two", []Rule{tcp("a", ":8080", "127.0.0.1:9090"), tcp("b", ":9090", "127.0.0.1:8080")},
			`rule a: targets "127.0.0.1:9090": leads back to this rule: a -> b (127.0.0.1:9090) -> a (127.0.0.1:8080)`},

		{"other port", []Rule{tcp("a", ":8080", "127.0.0.1:8081")}, ""},
		{"other loopback address", []Rule{tcp("a", "127.0.0.1:8080", "127.0.0.2:8080")}, ""},
		{"remote address", []Rule{tcp("a", ":8080", "192.0.2.99:8080")}, ""},
		{"unresolved name", []Rule{tcp("a", ":8080", "elsewhere.example:8080")}, ""},
		{"other protocol", []Rule{udp("d", ":53", "10.0.0.53:53"), tcp("a", ":8053", "127.0.0.1:53")}, ""},
		{"chain without cycle", []Rule{tcp("a", ":8080", "127.0.0.1:9090"), tcp("b", ":9090", "10.0.0.1:80")}, ""},
		{"port 0", []Rule{tcp("a", "127.0.0.1:0", "127.0.0.1:0")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkLoops(tc.rules, fakeLoopEnv())
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("checkLoops: %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("checkLoops: %v, want %q", err, tc.want)
			}
			var fe *FieldError
			if err != nil && (!errors.As(err, &fe) || !fe.BadInput()) {
				t.Fatalf("checkLoops: %T, want a bad-input *FieldError", err)
			}
		})
	}
}

// TestReloadRefusesLoop: the check runs on every Reload, the first and the
// later ones, and a refused set leaves the running one.
func TestReloadRefusesLoop(t *testing.T) {
	echo, _ := echoServer(t)
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Name: "ok", Listen: "127.0.0.1:0", Targets: []string{echo}})
	port := strconv.Itoa(freePort(t))
	err := fx.fw.Reload([]Rule{{Name: "self", Listen: ":" + port, Targets: []string{"127.0.0.1:" + port}}})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Rule != "self" {
		t.Fatalf("Reload of a rule to itself: %v", err)
	}
	if got := roundTrip(t, addr, "still"); got != "still" {
		t.Fatalf("running rule after the refused reload: %q", got)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ap, err := netip.ParseAddrPort(closedPort(t))
	if err != nil {
		t.Fatal(err)
	}
	return int(ap.Port())
}

// TestLoopGuard: a loop the check cannot see (a name that resolves to this
// host only when dialled) is cut at run time: the connection that comes back
// from the forwarder's own dial is refused, the chain unwinds with a reset,
// and one line says why.
func TestLoopGuard(t *testing.T) {
	fx := newFixture(t, Options{})
	env := fakeLoopEnv()
	env.hostAddrs = func(string) []netip.Addr { return nil } // "localhost" unknown at start
	fx.fw.loopEnv = env
	port := freePort(t)
	// max_conns bounds the damage without the guard: the 51st hop is
	// refused, and the chain unwinds from there.
	const maxConns = 50
	fx.start(Rule{Name: "self", Listen: fmt.Sprintf("127.0.0.1:%d", port), Targets: []string{fmt.Sprintf("localhost:%d", port)},
		MaxConns: maxConns, MaxConnsPerSource: maxConns})
	refusedWithReset(t, fmt.Sprintf("127.0.0.1:%d", port))
	recs := fx.log.waitLines(t, "connection loops back to the forwarder, refused", 1)
	if recs[0]["rule"] != "self" || recs[0]["via_rule"] != "self" {
		t.Errorf("log: %v", recs[0])
	}
	var text bytes.Buffer
	fx.m.WriteText(&text)
	m := regexp.MustCompile(`portkit_forward_connections_total\{rule="self"\} (\d+)`).FindStringSubmatch(text.String())
	if m == nil {
		t.Fatalf("no connections_total:\n%s", text.String())
	}
	if n, _ := strconv.Atoi(m[1]); n >= maxConns {
		t.Fatalf("%d connections before the loop ended, want a few", n)
	}
}

// TestHopGuard: a hop is matched on both ends of the connection, in either
// order of registration; a chain through other rules is allowed, one back
// into a rule on it is not.
func TestHopGuard(t *testing.T) {
	ap := netip.MustParseAddrPort
	g := newHopGuard()
	// A local client shares its source port with our dial to a local
	// target (Linux reuses ports across destinations): not a hop.
	client := &tcpConn{rule: "r"}
	if via := g.accept(client, ap("127.0.0.1:5000"), ap("127.0.0.1:8080")); via != nil {
		t.Fatal("accept matched nothing yet")
	}
	if looped := g.dial(client, ap("127.0.0.1:5000"), ap("127.0.0.1:5432")); looped != nil {
		t.Fatalf("a dial to another destination from the same port taken for a loop")
	}
	// Our dial to our own listener, accept after: a loop.
	dialer := &tcpConn{rule: "r"}
	if looped := g.dial(dialer, ap("127.0.0.1:5001"), ap("127.0.0.1:8080")); looped != nil {
		t.Fatal("dial matched before the accept")
	}
	back := &tcpConn{rule: "r"}
	if via := g.accept(back, ap("127.0.0.1:5001"), ap("127.0.0.1:8080")); via != dialer {
		t.Fatalf("the conn that came back: via %v, want the dialling conn", via)
	}
	// Through two rules: a -> b is a chain, b -> a a loop; here the
	// accept registers first.
	a, b, a2 := &tcpConn{rule: "a"}, &tcpConn{rule: "b"}, &tcpConn{rule: "a"}
	g.accept(b, ap("127.0.0.1:6000"), ap("127.0.0.1:9090"))
	if looped := g.dial(a, ap("127.0.0.1:6000"), ap("127.0.0.1:9090")); looped != nil {
		t.Fatal("a chain a -> b taken for a loop")
	}
	g.accept(a2, ap("127.0.0.1:6001"), ap("127.0.0.1:8080"))
	if looped := g.dial(b, ap("127.0.0.1:6001"), ap("127.0.0.1:8080")); looped != a2 {
		t.Fatalf("a -> b -> a: looped %v, want the second a", looped)
	}
	for _, c := range []*tcpConn{client, dialer, back, a, b, a2} {
		g.done(c)
	}
	if len(g.accepted) != 0 || len(g.dialed) != 0 {
		t.Fatalf("left after done: %d accepted, %d dialed", len(g.accepted), len(g.dialed))
	}
}
