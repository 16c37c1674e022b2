//go:build linux

package scan

import (
	"context"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"
)

// udpRecorder is UDP sockets in the target namespace that count what they
// read, and from which addresses; echo ones answer it, silent ones never
// do (the kernel sends no port unreachable for a bound port).
type udpRecorder struct {
	mu      sync.Mutex
	got     map[uint16]int // datagrams read, by port
	sources map[netip.Addr]int
	ports   []uint16
}

func (n engineNet) record(t *testing.T, count int, echo bool) *udpRecorder {
	t.Helper()
	rec := &udpRecorder{got: map[uint16]int{}, sources: map[netip.Addr]int{}}
	var conns []*net.UDPConn
	inNS(t, n.target, func() error {
		for range count {
			c, err := net.ListenUDP("udp", &net.UDPAddr{})
			if err != nil {
				return err
			}
			conns = append(conns, c)
			rec.ports = append(rec.ports, uint16(c.LocalAddr().(*net.UDPAddr).Port))
		}
		return nil
	})
	var wg sync.WaitGroup
	for i, c := range conns {
		port := rec.ports[i]
		wg.Go(func() {
			buf := make([]byte, 2048)
			for {
				m, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					return // closed
				}
				rec.mu.Lock()
				rec.got[port]++
				rec.sources[from.Addr().Unmap()]++
				rec.mu.Unlock()
				if echo {
					c.WriteToUDPAddrPort(buf[:m], from)
				}
			}
		})
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	})
	return rec
}

func (r *udpRecorder) read(port uint16) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[port]
}

// closedUDPPorts are n ports of the target bound and let go: closed.
func (n engineNet) closedUDPPorts(t *testing.T, count int) []uint16 {
	var ports []uint16
	inNS(t, n.target, func() error {
		var conns []*net.UDPConn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for range count {
			c, err := net.ListenUDP("udp", &net.UDPAddr{})
			if err != nil {
				return err
			}
			conns = append(conns, c)
			ports = append(ports, uint16(c.LocalAddr().(*net.UDPAddr).Port))
		}
		return nil
	})
	return ports
}

// udpScan runs a Scanner with a raw UDP engine (opts) over target's
// ports, from the scanner namespace.
func (n engineNet) udpScan(t *testing.T, s Scanner, opts UDPOptions) (Stats, map[Probe]Result) {
	t.Helper()
	got := map[Probe]Result{}
	var stats Stats
	inNS(t, n.scanner, func() error {
		udp, err := NewUDP(opts)
		if err != nil {
			return err
		}
		s.UDPEngine = udp
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		stats, err = s.Run(ctx, SinkFunc(func(r Result) error {
			got[r.Probe] = r
			return nil
		}))
		return err
	})
	t.Logf("%d probes, %d attempts (%d RTT probes, %d retransmitted) in %v: %d silent on answering hosts, %d on mute ones",
		stats.Done, stats.Sent, stats.RTTProbes, stats.Retransmitted, stats.Elapsed.Round(time.Millisecond), stats.SilentAnswering, stats.SilentMute)
	return stats, got
}

func udpPorts(ports ...[]uint16) portList {
	var pl portList
	for _, p := range slices.Concat(ports...) {
		pl = append(pl, portList{{p, UDP}}...)
	}
	return pl
}

// A silent UDP port of a host that answers is asked twice (one retry: no
// loss was seen), not the template's seven times, and ends open|filtered;
// alone in the scan, the RTT probe is what tells the host answers. The
// default Scanner: a one-second initial timeout and six retries, so the
// counts here are the host's evidence at work.
func TestScannerUDPSilenceLearnedNetns(t *testing.T) {
	n := newEngineNet(t)
	n.noICMPLimit(t)
	silent := n.record(t, 1, false)
	echo := n.record(t, 1, true)
	closed := n.closedUDPPorts(t, 40)
	port := silent.ports[0]
	for _, tc := range []struct {
		name  string
		ports portList
	}{
		{"with others", udpPorts(silent.ports, echo.ports, closed)},
		{"alone", udpPorts(silent.ports)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := silent.read(port)
			st, got := n.udpScan(t, Scanner{Targets: addrList{nsTarget4}, Ports: tc.ports}, UDPOptions{Mode: UDPRaw})
			if r := got[Probe{nsTarget4, port, UDP}]; r.State != OpenFiltered || r.Reason != "no-response" {
				t.Errorf("silent port %d: %v (%s), want open|filtered (no-response)", port, r.State, r.Reason)
			}
			if asked := silent.read(port) - before; asked != 2 {
				t.Errorf("the target read %d probes on its silent port, want 2 (one retry: the host answered, with no loss)", asked)
			}
			for _, p := range tc.ports {
				want := Closed
				switch {
				case p.port == port:
					continue
				case slices.Contains(echo.ports, p.port):
					want = Open
				}
				if r := got[Probe{nsTarget4, p.port, UDP}]; r.State != want {
					t.Errorf("port %d: %v (%s), want %v", p.port, r.State, r.Reason, want)
				}
			}
			if st.SilentAnswering != 1 || st.SilentMute != 0 || st.RTTProbes != 1 {
				t.Errorf("%d silent on answering hosts, %d on mute ones, %d RTT probes; want 1, 0, 1",
					st.SilentAnswering, st.SilentMute, st.RTTProbes)
			}
		})
	}
}

// A host that answers nothing (its firewall drops every UDP packet) gives
// no evidence that asking again helps: each port, and the RTT probe, is
// sent twice, and every port ends open|filtered.
func TestScannerUDPMuteHostNetns(t *testing.T) {
	n := newEngineNet(t)
	closed := n.closedUDPPorts(t, 20)
	n.nft(t, "meta l4proto udp drop")
	st, got := n.udpScan(t, Scanner{Targets: addrList{nsTarget4}, Ports: udpPorts(closed), InitialRTT: 200 * time.Millisecond},
		UDPOptions{Mode: UDPRaw})
	for _, p := range closed {
		if r := got[Probe{nsTarget4, p, UDP}]; r.State != OpenFiltered {
			t.Errorf("port %d: %v (%s), want open|filtered", p, r.State, r.Reason)
		}
	}
	if want := uint64(2 * (len(closed) + 1)); st.Sent != want || st.SilentMute != uint64(len(closed)) || st.SilentAnswering != 0 {
		t.Errorf("%d attempts, %d silent on mute hosts, %d on answering ones; want %d, %d, 0",
			st.Sent, st.SilentMute, st.SilentAnswering, want, len(closed))
	}
}

// A host whose closed ports fall silent under its ICMP limit: the silence
// is not trusted, and every closed port still ends closed.
func TestScannerUDPLimitedSilenceNetns(t *testing.T) {
	if testing.Short() {
		t.Skip("paced at the target's ICMP limit: seconds")
	}
	n := newEngineNet(t)
	closed := n.closedUDPPorts(t, 12) // twice the limit's burst of six
	st, got := n.udpScan(t, Scanner{Targets: addrList{nsTarget4}, Ports: udpPorts(closed)}, UDPOptions{Mode: UDPRaw})
	for _, p := range closed {
		if r := got[Probe{nsTarget4, p, UDP}]; r.State != Closed {
			t.Errorf("port %d: %v (%s), want closed", p, r.State, r.Reason)
		}
	}
	if st.SilentAnswering != 0 {
		t.Errorf("%d ports silent, want none", st.SilentAnswering)
	}
}

// sourcePrefix is the scanner's extra addresses of the spreading tests:
// sixteen, on its veth.
var sourcePrefix = netip.MustParsePrefix("198.18.0.16/28")

func (n engineNet) addSources(t *testing.T) []netip.Addr {
	t.Helper()
	var addrs []netip.Addr
	for a := sourcePrefix.Addr(); sourcePrefix.Contains(a); a = a.Next() {
		if out, err := exec.Command("ip", "-n", n.scanner, "addr", "add", a.String()+"/32", "dev", n.scanner).CombinedOutput(); err != nil {
			t.Fatalf("ip addr add %v: %v: %s", a, err, out)
		}
		addrs = append(addrs, a)
	}
	return addrs
}

// With Sources, the target sees the probes come from many of the
// addresses, and every answer, to whichever address, is read: echo ports
// open, closed ports closed, raw and through sockets.
func TestUDPSourceSpreadNetns(t *testing.T) {
	n := newEngineNet(t)
	n.noICMPLimit(t)
	sources := n.addSources(t)
	echo := n.record(t, 32, true)
	closed := n.closedUDPPorts(t, 16)
	for _, mode := range []UDPMode{UDPRaw, UDPSockets} {
		t.Run(map[UDPMode]string{UDPRaw: "raw", UDPSockets: "sockets"}[mode], func(t *testing.T) {
			echo.mu.Lock()
			clear(echo.sources)
			echo.mu.Unlock()
			_, got := n.udpScan(t, Scanner{Targets: addrList{nsTarget4}, Ports: udpPorts(echo.ports, closed), Retries: 2},
				UDPOptions{Mode: mode, Sources: sources})
			for _, p := range echo.ports {
				if r := got[Probe{nsTarget4, p, UDP}]; r.State != Open {
					t.Errorf("echo port %d: %v (%s), want open", p, r.State, r.Reason)
				}
			}
			for _, p := range closed {
				if r := got[Probe{nsTarget4, p, UDP}]; r.State != Closed {
					t.Errorf("closed port %d: %v (%s), want closed", p, r.State, r.Reason)
				}
			}
			echo.mu.Lock()
			defer echo.mu.Unlock()
			for a := range echo.sources {
				if !sourcePrefix.Contains(a) {
					t.Errorf("a probe from %v, not one of %v", a, sourcePrefix)
				}
			}
			if len(echo.sources) < 8 {
				t.Errorf("probes from %d source addresses (%v), want most of the 16", len(echo.sources), echo.sources)
			}
		})
	}
}

// With sixteen sources and the kernel's default ICMP limit (one a second
// for each peer, a burst of six), three times sixteen closed ports all end
// closed: each source draws its own errors.
func TestScannerUDPSourceSpreadLimitNetns(t *testing.T) {
	if testing.Short() {
		t.Skip("paced at the target's ICMP limit: seconds")
	}
	n := newEngineNet(t)
	sources := n.addSources(t)
	closed := n.closedUDPPorts(t, 48)
	st, got := n.udpScan(t, Scanner{Targets: addrList{nsTarget4}, Ports: udpPorts(closed)}, UDPOptions{Mode: UDPRaw, Sources: sources})
	for _, p := range closed {
		if r := got[Probe{nsTarget4, p, UDP}]; r.State != Closed {
			t.Errorf("port %d: %v (%s), want closed", p, r.State, r.Reason)
		}
	}
	for _, l := range st.ICMPLimits {
		t.Log(l)
	}
	if len(got) != len(closed) {
		t.Errorf("%d results, want %d", len(got), len(closed))
	}
}

// InterfaceAddrs (--source-addrs auto) finds the scanner's addresses on the
// interface toward the target: its own and the sixteen added, IPv4 only
// for an IPv4 target, the route's source first.
func TestInterfaceAddrsNetns(t *testing.T) {
	n := newEngineNet(t)
	sources := n.addSources(t)
	var got []netip.Addr
	inNS(t, n.scanner, func() (err error) {
		got, err = InterfaceAddrs(nsTarget4)
		return err
	})
	want := append([]netip.Addr{nsScanner4}, sources...)
	if len(got) != len(want) || got[0] != nsScanner4 {
		t.Fatalf("InterfaceAddrs(%v) = %v, want %v first, then %v", nsTarget4, got, nsScanner4, sources)
	}
	for _, a := range want {
		if !slices.Contains(got, a) {
			t.Errorf("%v missing from %v", a, got)
		}
	}
}
