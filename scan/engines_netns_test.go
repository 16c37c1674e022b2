//go:build linux

package scan

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portkit/portkit/internal/netnstest"
	"github.com/portkit/portkit/internal/testtool"
	"github.com/portkit/portkit/scan/internal/rawnet"
)

// The hosts of the engines' root tests, as the benchmarks have them
// (internal/netnstest).
var (
	nsScanner4 = netnstest.Scanner4
	nsTarget4  = netnstest.Target4
	nsTarget6  = netnstest.Target6
	// In the benchmarking range, but with no route from the scanner.
	nsUnrouted = netip.MustParseAddr("198.19.0.1")
)

// engineNet is a scanner and a target namespace, named.
type engineNet struct{ scanner, target string }

// newEngineNet makes the pair of namespaces; see netnstest.New.
func newEngineNet(t testing.TB) engineNet {
	p := netnstest.New(t, "e")
	return engineNet{scanner: p.Scanner, target: p.Target}
}

// sysctl sets kernel settings of the target's namespace.
func (n engineNet) sysctl(t testing.TB, settings ...string) {
	t.Helper()
	args := append([]string{"netns", "exec", n.target, "sysctl", "-qw"}, settings...)
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("sysctl %v: %v: %s", settings, err, out)
	}
}

// noICMPLimit lifts the target's limits on ICMP errors, for tests that
// send more than a burst of probes to closed ports.
func (n engineNet) noICMPLimit(t testing.TB) {
	n.sysctl(t, "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0",
		"net.ipv4.icmp_msgs_per_sec=1000000", "net.ipv4.icmp_msgs_burst=1000000")
}

// nft loads rules into an input chain of the target's namespace.
func (n engineNet) nft(t testing.TB, rules ...string) {
	t.Helper()
	testtool.Need(t, "nft")
	script := "add table inet t\nadd chain inet t input { type filter hook input priority 0; }\n"
	for _, r := range rules {
		script += "add rule inet t input " + r + "\n"
	}
	cmd := exec.Command("ip", "netns", "exec", n.target, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s\n%s", err, out, script)
	}
}

// inNS runs f in namespace ns; see netnstest.Run.
func inNS(t testing.TB, ns string, f func() error) { netnstest.Run(t, ns, f) }

// targetPorts is what the target serves: listeners and UDP echo servers
// (on both families), ports that are closed, and ports the target's
// firewall drops or rejects.
type targetPorts struct {
	tcpOpen, udpOpen     []uint16
	tcpClosed, udpClosed []uint16
	tcpDrop, udpDrop     uint16
	tcpReject, udpReject uint16 // with host unreachable, admin prohibited
}

// serve opens the target's ports and its firewall's rules, until the test
// ends.
func (n engineNet) serve(t testing.TB) targetPorts {
	t.Helper()
	var tp targetPorts
	var echoes []*net.UDPConn
	var closers []func() error
	inNS(t, n.target, func() error {
		for range 3 {
			l, err := net.Listen("tcp", ":0")
			if err != nil {
				return err
			}
			closers = append(closers, l.Close)
			tp.tcpOpen = append(tp.tcpOpen, uint16(l.Addr().(*net.TCPAddr).Port))
		}
		for range 2 {
			c, err := net.ListenUDP("udp", &net.UDPAddr{})
			if err != nil {
				return err
			}
			echoes = append(echoes, c)
			tp.udpOpen = append(tp.udpOpen, uint16(c.LocalAddr().(*net.UDPAddr).Port))
		}
		// Ports bound and let go are closed.
		for range 5 {
			l, err := net.Listen("tcp", ":0")
			if err != nil {
				return err
			}
			tp.tcpClosed = append(tp.tcpClosed, uint16(l.Addr().(*net.TCPAddr).Port))
			l.Close()
			c, err := net.ListenUDP("udp", &net.UDPAddr{})
			if err != nil {
				return err
			}
			tp.udpClosed = append(tp.udpClosed, uint16(c.LocalAddr().(*net.UDPAddr).Port))
			c.Close()
		}
		return nil
	})
	var wg sync.WaitGroup
	for _, c := range echoes {
		closers = append(closers, c.Close)
		wg.Go(func() { echoUDP(c) })
	}
	t.Cleanup(func() {
		for _, c := range closers {
			c()
		}
		wg.Wait()
	})
	tp.tcpDrop, tp.tcpReject = tp.tcpClosed[3], tp.tcpClosed[4]
	tp.udpDrop, tp.udpReject = tp.udpClosed[3], tp.udpClosed[4]
	tp.tcpClosed, tp.udpClosed = tp.tcpClosed[:3], tp.udpClosed[:3]
	n.nft(t,
		fmt.Sprintf("tcp dport %d drop", tp.tcpDrop),
		fmt.Sprintf("tcp dport %d reject with icmpx type host-unreachable", tp.tcpReject),
		fmt.Sprintf("udp dport %d drop", tp.udpDrop),
		fmt.Sprintf("udp dport %d reject with icmpx type admin-prohibited", tp.udpReject),
	)
	return tp
}

// wants is what an engine answers each of the target's ports of proto at
// ips; rejected is the reason of the rejected port's answer.
func (tp targetPorts) wants(proto Proto, ips []netip.Addr, rejected func(netip.Addr) string) map[Probe]want {
	open, closed, drop, reject := tp.tcpOpen, tp.tcpClosed, tp.tcpDrop, tp.tcpReject
	openWhy, closedWhy := "syn-ack", "reset"
	if proto == UDP {
		open, closed, drop, reject = tp.udpOpen, tp.udpClosed, tp.udpDrop, tp.udpReject
		openWhy, closedWhy = "udp-response", "port-unreach"
	}
	ws := map[Probe]want{}
	for _, ip := range ips {
		for _, p := range open {
			ws[Probe{ip, p, proto}] = want{Open, openWhy}
		}
		for _, p := range closed {
			ws[Probe{ip, p, proto}] = want{Closed, closedWhy}
		}
		ws[Probe{ip, drop, proto}] = want{}
		ws[Probe{ip, reject, proto}] = want{Filtered, rejected(ip)}
	}
	return ws
}

// TestSYNNetns scans the target over IPv4 and IPv6 with the SYN engine:
// listeners are open, closed ports closed, a port the firewall drops
// silent (the Scanner's filtered), one it rejects filtered with the
// reason, an address with no route filtered at once. Each answer tells the
// attempt it answers.
func TestSYNNetns(t *testing.T) {
	n := newEngineNet(t)
	tp := n.serve(t)
	targets := []netip.Addr{nsTarget4, nsTarget6}
	all := probes(TCP, targets, slices.Concat(tp.tcpOpen, tp.tcpClosed, []uint16{tp.tcpDrop, tp.tcpReject})...)
	all = append(all, Probe{IP: nsUnrouted, Port: 80, Proto: TCP})
	wants := tp.wants(TCP, targets, func(netip.Addr) string { return "host-unreach" })
	wants[Probe{IP: nsUnrouted, Port: 80, Proto: TCP}] = want{Filtered, "net-unreach"}

	var e Engine
	var got map[Probe]Reply
	inNS(t, n.scanner, func() error {
		var err error
		if e, err = NewSYN(SYNOptions{Batch: 4}); err != nil {
			return err
		}
		got, _, err = drive(e, all, driveOpts{tries: 2, wait: 300 * time.Millisecond, limit: 10 * time.Second})
		return err
	})
	checkAnswers(t, got, wants)
	for p, r := range got {
		if r.State != Filtered && (r.TTL != 64 || r.At.IsZero()) {
			t.Errorf("%v:%d: answer %+v, want TTL 64 and a time", p.IP, p.Port, r)
		}
	}
	if st := e.(*synEngine).stats(); st.Invalid != 0 || st.Malformed != 0 || st.Dropped != 0 {
		t.Errorf("stats %+v: want nothing invalid, malformed or dropped", st)
	}
}

// TestSYNMappedTarget: an IPv4 target named as IPv4-mapped IPv6 is probed
// over IPv4 and answered under the name it was given.
func TestSYNMappedTarget(t *testing.T) {
	n := newEngineNet(t)
	tp := n.serve(t)
	targets := []netip.Addr{netip.AddrFrom16(nsTarget4.As16())}
	all := probes(TCP, targets, slices.Concat(tp.tcpOpen, tp.tcpClosed)...)
	wants := tp.wants(TCP, targets, func(netip.Addr) string { return "" })
	var got map[Probe]Reply
	inNS(t, n.scanner, func() error {
		e, err := NewSYN(SYNOptions{})
		if err != nil {
			return err
		}
		got, _, err = drive(e, all, driveOpts{tries: 2, wait: 300 * time.Millisecond, limit: 10 * time.Second})
		return err
	})
	for p := range wants {
		if !slices.Contains(all, p) {
			delete(wants, p)
		}
	}
	checkAnswers(t, got, wants)
}

// TestSYNForgedAnswer sends the scanner, from the target, a SYN-ACK and a
// RST for a probe that the firewall dropped, acknowledging the wrong
// sequence number: the engine ignores them. A SYN-ACK with the right one
// (made with the engine's key, which a forger lacks) is taken, which shows
// the forged ones reached the engine.
func TestSYNForgedAnswer(t *testing.T) {
	n := newEngineNet(t)
	tp := n.serve(t)
	var forger *rawnet.Sender
	inNS(t, n.target, func() error {
		var err error
		forger, err = rawnet.NewSender()
		return err
	})
	defer forger.Close()

	var eng Engine
	inNS(t, n.scanner, func() error {
		var err error
		eng, err = NewSYN(SYNOptions{})
		return err
	})
	e := eng.(*synEngine)
	ctx, cancel := context.WithCancel(context.Background())
	replies := make(chan Reply, 16)
	if err := e.Start(ctx, replies); err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	defer cancel()

	dropped := Probe{IP: nsTarget4, Port: tp.tcpDrop, Proto: TCP}
	open := Probe{IP: nsTarget4, Port: tp.tcpOpen[0], Proto: TCP}
	inNS(t, n.scanner, func() error {
		if err := e.Send(dropped, 1); err != nil {
			return err
		}
		if err := e.Send(open, 3); err != nil {
			return err
		}
		return e.Flush()
	})
	select {
	case r := <-replies:
		if r.Probe != open || r.State != Open || r.Attempt != 0 {
			t.Errorf("answer %+v, want %v:%d open, attempt unknown (0)", r, open.IP, open.Port)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no answer from the open port")
	}

	cookie := rawnet.Cookie(e.key, nsScanner4, nsTarget4, e.port, tp.tcpDrop)
	forge := func(flags rawnet.TCPFlags, ack uint32) {
		t.Helper()
		pkt, err := rawnet.AppendTCP(nil, rawnet.TCP{
			Src: netip.AddrPortFrom(nsTarget4, tp.tcpDrop), Dst: netip.AddrPortFrom(nsScanner4, e.port),
			Seq: 7, Ack: ack, Flags: flags, Window: 65535,
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := forger.Send([][]byte{pkt}, []netip.Addr{nsScanner4}); err != nil {
			t.Fatal(err)
		}
	}
	forge(rawnet.FlagSYN|rawnet.FlagACK, cookie+2) // one past the right ack
	forge(rawnet.FlagSYN|rawnet.FlagACK, cookie)   // the sequence number itself
	forge(rawnet.FlagRST|rawnet.FlagACK, ^cookie)
	select {
	case r := <-replies:
		t.Errorf("a forged answer was taken: %+v", r)
	case <-time.After(300 * time.Millisecond):
	}
	if st := e.stats(); st.Invalid != 3 {
		t.Errorf("%d answers ignored as invalid, want 3 (stats %+v)", st.Invalid, st)
	}

	forge(rawnet.FlagSYN|rawnet.FlagACK, cookie+1)
	select {
	case r := <-replies:
		if r.Probe != dropped || r.State != Open || r.Reason != "syn-ack" {
			t.Errorf("answer %+v, want %v:%d open by syn-ack", r, dropped.IP, dropped.Port)
		}
	case <-time.After(5 * time.Second):
		t.Error("the SYN-ACK with the right cookie was not taken")
	}
}

// TestUDPNetns scans the target with the UDP engine, raw and through
// sockets, over IPv4 and IPv6: echo servers are open, closed ports closed
// (the target's ICMP limits lifted), a dropped port silent, a rejected one
// filtered.
func TestUDPNetns(t *testing.T) {
	n := newEngineNet(t)
	n.noICMPLimit(t)
	tp := n.serve(t)
	targets := []netip.Addr{nsTarget4, nsTarget6}
	all := probes(UDP, targets, slices.Concat(tp.udpOpen, tp.udpClosed, []uint16{tp.udpDrop, tp.udpReject})...)
	for _, mode := range []UDPMode{UDPRaw, UDPSockets} {
		t.Run(map[UDPMode]string{UDPRaw: "raw", UDPSockets: "sockets"}[mode], func(t *testing.T) {
			wants := tp.wants(UDP, targets, func(ip netip.Addr) string {
				// A socket learns only the errno, and IPv4's admin
				// prohibited is EHOSTUNREACH.
				if mode == UDPSockets && ip.Is4() {
					return "host-unreach"
				}
				return "admin-prohibited"
			})
			var e Engine
			var got map[Probe]Reply
			inNS(t, n.scanner, func() error {
				var err error
				if e, err = NewUDP(UDPOptions{Mode: mode}); err != nil {
					return err
				}
				got, _, err = drive(e, all, driveOpts{tries: 2, wait: 300 * time.Millisecond, limit: 10 * time.Second})
				return err
			})
			checkAnswers(t, got, wants)
			if ls := e.(interface{ ICMPLimits() []ICMPLimit }).ICMPLimits(); len(ls) > 0 {
				t.Errorf("limits found where there are none: %v", ls)
			}
		})
	}
}

// TestUDPNoICMPLimitNetns sends a few hundred probes to closed ports of a
// target that does not limit its errors, as fast as the engine goes:
// every one is answered closed, and no limit is seen.
func TestUDPNoICMPLimitNetns(t *testing.T) {
	n := newEngineNet(t)
	n.noICMPLimit(t)
	ps := probes(UDP, []netip.Addr{nsTarget4, nsTarget6}, portSpan(20000, 400)...)
	var e Engine
	var got map[Probe]Reply
	inNS(t, n.scanner, func() error {
		var err error
		if e, err = NewUDP(UDPOptions{Mode: UDPRaw, Payload: func(uint16) []byte { return nil }}); err != nil {
			return err
		}
		got, _, err = drive(e, ps, driveOpts{tries: 1, wait: time.Second, limit: 10 * time.Second})
		return err
	})
	closed := 0
	for _, r := range got {
		if r.State == Closed {
			closed++
		}
	}
	if closed != len(ps) {
		t.Errorf("%d of %d closed ports answered closed", closed, len(ps))
	}
	if ls := e.(*rawUDP).ICMPLimits(); len(ls) > 0 {
		t.Errorf("limits found where there are none: %v", ls)
	}
}

// TestUDPICMPLimitNetns scans closed ports of a target with Linux's
// default limits on ICMP errors (one a second to a peer over IPv4, ten
// over IPv6, bursts of six): the engine finds each limit within the first
// probes and says so, and with the pace it sets, every closed port is
// found closed.
func TestUDPICMPLimitNetns(t *testing.T) {
	if testing.Short() {
		t.Skip("paced at the target's ICMP limit: about half a minute")
	}
	n := newEngineNet(t)
	n.sysctl(t, "net.ipv4.icmp_ratelimit=1000", "net.ipv6.icmp.ratelimit=100")
	tp := n.serve(t)
	// The probes of a scan come fast until a limit shows, then paced:
	// enough to IPv6's ten a second to show it.
	targets := []netip.Addr{nsTarget4, nsTarget6}
	ps := slices.Concat(
		probes(UDP, targets[:1], slices.Concat(tp.udpOpen, tp.udpClosed, portSpan(30000, 20))...),
		probes(UDP, targets[1:], slices.Concat(tp.udpOpen, tp.udpClosed, portSpan(30000, 40))...))
	var mu sync.Mutex
	var told []ICMPLimit
	var e Engine
	var got map[Probe]Reply
	var ds driveStats
	start := time.Now()
	inNS(t, n.scanner, func() error {
		var err error
		e, err = NewUDP(UDPOptions{Mode: UDPRaw, OnLimit: func(l ICMPLimit) {
			mu.Lock()
			told = append(told, l)
			mu.Unlock()
		}})
		if err != nil {
			return err
		}
		got, ds, err = drive(e, ps, driveOpts{tries: 7, wait: 2 * time.Second, limit: 90 * time.Second, paced: true})
		return err
	})
	t.Logf("%d probes (%d attempts) in %v", len(ps), ds.sent, time.Since(start).Round(time.Millisecond))
	mu.Lock()
	for _, l := range told {
		t.Log(l)
	}
	found := map[netip.Addr]bool{}
	for _, l := range told {
		if l.Rate > 0 && strings.Contains(l.String(), "rate-limits ICMP errors") {
			found[l.Host] = true
		}
	}
	mu.Unlock()
	for _, ip := range targets {
		if !found[ip] {
			t.Errorf("no limit told for %v", ip)
		}
	}
	wants := map[Probe]want{}
	for _, p := range ps {
		wants[p] = want{Closed, "port-unreach"}
		if slices.Contains(tp.udpOpen, p.Port) {
			wants[p] = want{Open, "udp-response"}
		}
	}
	checkAnswers(t, got, wants)
	for _, l := range e.(*rawUDP).ICMPLimits() {
		t.Logf("at the end: %v", l)
		if rate := map[bool]float64{true: 1, false: 10}[l.Host.Is4()]; l.Rate > 3*rate {
			t.Errorf("%v: limit measured at %.3g/s, want near %v/s", l.Host, l.Rate, rate)
		}
	}
}

// TestScannerUDPICMPLimitNetns is TestUDPICMPLimitNetns through a
// Scanner with its defaults, against a target with the kernel's default
// limits on ICMP errors: the engine finds the limits, the Scanner holds
// each host to the pace the engine sets, and every closed port is
// reported closed, every open one open.
func TestScannerUDPICMPLimitNetns(t *testing.T) {
	if testing.Short() {
		t.Skip("paced at the target's ICMP limit: about half a minute")
	}
	n := newEngineNet(t)
	tp := n.serve(t)
	targets := addrList{nsTarget4, nsTarget6}
	var ports portList
	for _, p := range slices.Concat(tp.udpOpen, tp.udpClosed, portSpan(30000, 20)) {
		ports = append(ports, portList{{p, UDP}}...)
	}
	got := map[Probe]Reply{}
	var stats Stats
	inNS(t, n.scanner, func() error {
		udp, err := NewUDP(UDPOptions{Mode: UDPRaw, OnLimit: func(l ICMPLimit) { t.Log(l) }})
		if err != nil {
			return err
		}
		s := Scanner{Targets: targets, Ports: ports, UDPEngine: udp}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		stats, err = s.Run(ctx, SinkFunc(func(r Result) error {
			got[r.Probe] = Reply{Probe: r.Probe, State: r.State, Reason: r.Reason}
			return nil
		}))
		return err
	})
	t.Logf("%d probes, %d attempts in %v; %d hosts paced (limited %v)",
		stats.Done, stats.Sent, stats.Elapsed.Round(time.Millisecond), stats.HostsPaced, stats.HostPaceLimited)
	wants := map[Probe]want{}
	for _, ip := range targets {
		for _, p := range ports {
			wants[Probe{ip, p.port, UDP}] = want{Closed, "port-unreach"}
			if slices.Contains(tp.udpOpen, p.port) {
				wants[Probe{ip, p.port, UDP}] = want{Open, "udp-response"}
			}
		}
	}
	checkAnswers(t, got, wants)
	limited := map[netip.Addr]bool{}
	for _, l := range stats.ICMPLimits {
		t.Logf("at the end: %v", l)
		limited[l.Host] = true
	}
	if !limited[nsTarget4] || stats.HostsPaced == 0 {
		t.Errorf("%v not paced at the end (%d hosts paced): its limit of one a second went unseen", nsTarget4, stats.HostsPaced)
	}
}

// TestScannerSYNUDPNetns runs a Scanner with the SYN and UDP engines over
// the target, both families: the results the engines' own tests have,
// with silence made filtered and open|filtered.
func TestScannerSYNUDPNetns(t *testing.T) {
	n := newEngineNet(t)
	n.noICMPLimit(t)
	tp := n.serve(t)
	targets := addrList{nsTarget4, nsTarget6}
	wants := tp.wants(TCP, targets, func(netip.Addr) string { return "host-unreach" })
	maps.Copy(wants, tp.wants(UDP, targets, func(netip.Addr) string { return "admin-prohibited" }))
	var ports portList
	for p := range wants {
		if p.IP == nsTarget4 {
			ports = append(ports, portList{{p.Port, p.Proto}}...)
		}
	}
	results := map[Probe]Reply{}
	var stats Stats
	inNS(t, n.scanner, func() error {
		syn, err := NewSYN(SYNOptions{})
		if err != nil {
			return err
		}
		udp, err := NewUDP(UDPOptions{Mode: UDPRaw})
		if err != nil {
			syn.Close()
			return err
		}
		s := Scanner{
			Targets: targets, Ports: ports, Engine: syn, UDPEngine: udp,
			Retries: 2, InitialRTT: 200 * time.Millisecond, MinRTT: 50 * time.Millisecond,
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		stats, err = s.Run(ctx, SinkFunc(func(r Result) error {
			if r.Reason != "no-response" {
				results[r.Probe] = Reply{Probe: r.Probe, State: r.State, Reason: r.Reason}
			} else if st := map[Proto]State{TCP: Filtered, UDP: OpenFiltered}[r.Proto]; r.State != st {
				t.Errorf("%v %v:%d: %v for silence, want %v", r.Proto, r.IP, r.Port, r.State, st)
			}
			return nil
		}))
		return err
	})
	checkAnswers(t, results, wants)
	if stats.Done != uint64(len(wants)) {
		t.Errorf("%d results, want %d (stats %+v)", stats.Done, len(wants), stats)
	}
}

// BenchmarkSYNSweepNetns scans all of 1–65535 on the target, which listens
// on 28 ports chosen at random (seeded), with the SYN engine and drive: a
// round at full speed, then a second for what went unanswered. It reports
// the sweep's time (from making the engine to the last answer; the 200ms
// wait after each round included), the rate of sending, and what it found.
func BenchmarkSYNSweepNetns(b *testing.B) {
	n := newEngineNet(b)
	rng := rand.New(rand.NewPCG(1, 2))
	var listening []uint16
	inNS(b, n.target, func() error {
		for len(listening) < 28 {
			port := uint16(1 + rng.IntN(65535))
			l, err := net.Listen("tcp4", fmt.Sprintf(":%d", port))
			if err != nil {
				continue // taken by chance, or twice
			}
			b.Cleanup(func() { l.Close() })
			listening = append(listening, port)
		}
		return nil
	})
	all := probes(TCP, []netip.Addr{nsTarget4}, portSpan(1, 65535)...)
	b.ReportAllocs()
	for b.Loop() {
		var got map[Probe]Reply
		var ds driveStats
		start := time.Now()
		inNS(b, n.scanner, func() error {
			e, err := NewSYN(SYNOptions{})
			if err != nil {
				return err
			}
			got, ds, err = drive(e, all, driveOpts{tries: 2, wait: 200 * time.Millisecond, limit: time.Minute})
			return err
		})
		elapsed := time.Since(start)
		open, closed := 0, 0
		for _, r := range got {
			switch r.State {
			case Open:
				open++
			case Closed:
				closed++
			}
		}
		if open != len(listening) || closed != 65535-len(listening) {
			b.Errorf("found %d open of %d, %d closed of %d", open, len(listening), closed, 65535-len(listening))
		}
		b.ReportMetric(elapsed.Seconds(), "s/sweep")
		b.ReportMetric(float64(ds.sent)/ds.sending.Seconds(), "probes/s")
		b.ReportMetric(float64(open), "open")
	}
}

// BenchmarkSYNSendNetns is the SYN engine's Send and Flush alone: probes
// to the target's ports in turn, each answered with a RST that a goroutine
// takes from the replies channel ("answered"), or dropped by the target's
// firewall ("dropped"). The target's kernel does its part within the
// sender's system call, so "answered" is the rate of whole round trips.
// It reports probes a second and the share answered.
func BenchmarkSYNSendNetns(b *testing.B) {
	b.Run("answered", func(b *testing.B) { benchmarkSYNSend(b, false) })
	b.Run("dropped", func(b *testing.B) { benchmarkSYNSend(b, true) })
}

func benchmarkSYNSend(b *testing.B, drop bool) {
	n := newEngineNet(b)
	if drop {
		n.nft(b, "tcp dport 1-65535 drop")
	}
	var e Engine
	inNS(b, n.scanner, func() error {
		var err error
		e, err = NewSYN(SYNOptions{})
		return err
	})
	ctx, cancel := context.WithCancel(context.Background())
	replies := make(chan Reply, 4096)
	if err := e.Start(ctx, replies); err != nil {
		b.Fatal(err)
	}
	var answered atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-replies:
				answered.Add(1)
			case <-ctx.Done():
				return
			}
		}
	}()
	b.ReportAllocs()
	sent := 0
	start := time.Now()
	inNS(b, n.scanner, func() error { // Send looks routes up in its thread's namespace
		for p := uint16(1); b.Loop(); p = p%65535 + 1 {
			if err := e.Send(Probe{IP: nsTarget4, Port: p, Proto: TCP}, 1); err != nil {
				return err
			}
			sent++
		}
		return e.(Flusher).Flush()
	})
	elapsed := time.Since(start)
	time.Sleep(100 * time.Millisecond)
	cancel()
	<-done
	e.Close()
	b.ReportMetric(float64(sent)/elapsed.Seconds(), "probes/s")
	b.ReportMetric(float64(answered.Load())/float64(sent), "answered/sent")
}
