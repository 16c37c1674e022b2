//go:build linux

package rawnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portkit/portkit/internal/netnstest"
)

// The test hosts (internal/netnstest): two network namespaces joined by a
// veth pair, each end named as its namespace.
var (
	scannerIP = netnstest.Scanner4
	targetIP  = netnstest.Target4
)

type testNet struct {
	scanner, target         string // namespace names
	scannerLink, targetLink string
}

// newTestNet makes the namespaces; see netnstest.New.
func newTestNet(t testing.TB) testNet {
	p := netnstest.New(t, "r")
	return testNet{scanner: p.Scanner, target: p.Target, scannerLink: p.Scanner, targetLink: p.Target}
}

// inNetns runs f in the named namespace; see netnstest.Run.
func inNetns(t testing.TB, name string, f func() error) { netnstest.Run(t, name, f) }

// scanEnd is what a scanner opens: a reserved source port, a Sender and
// a Receiver for that port.
type scanEnd struct {
	res *Reservation
	tx  *Sender
	rx  *Receiver
}

// openScanEnd opens a scanEnd in namespace ns; it is closed when the test
// ends.
func openScanEnd(t testing.TB, ns string) scanEnd {
	t.Helper()
	var e scanEnd
	inNetns(t, ns, func() error {
		var err error
		if e.res, err = ReservePort(0); err != nil {
			return err
		}
		if e.tx, err = NewSender(); err != nil {
			e.res.Close()
			return err
		}
		if e.rx, err = NewReceiver(ReceiverConfig{Port: e.res.Port}); err != nil {
			e.res.Close()
			e.tx.Close()
		}
		return err
	})
	t.Cleanup(func() {
		e.rx.Close()
		e.tx.Close()
		e.res.Close()
	})
	return e
}

// seen is what a test keeps of a reply.
type seen struct {
	flow    Flow
	kind    Kind
	flags   TCPFlags
	valid   bool
	ttl     uint8
	payload string
}

// collect runs rx until the test ends and returns the replies it reads.
func collect(t *testing.T, rx *Receiver, key [16]byte) <-chan seen {
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan seen, 1024)
	done := make(chan error, 1)
	go func() {
		done <- rx.Run(ctx, func(r *Reply, _ time.Time) {
			select {
			case out <- seen{r.Flow(), r.Kind(), r.Flags, ValidCookie(key, r), r.TTL, string(r.Payload)}:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		rx.Close()
	})
	return out
}

// await reads replies until want, keyed by flow, has one of each or the
// time runs out, and reports the missing and the unexpected.
func await(t *testing.T, replies <-chan seen, want map[Flow]seen) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	got := map[Flow]seen{}
	for len(got) < len(want) {
		select {
		case s := <-replies:
			w, ok := want[s.flow]
			switch {
			case !ok:
				t.Logf("reply to another probe: %+v", s)
			case got[s.flow] != (seen{}):
				t.Errorf("a second reply to %v: %+v", s.flow, s)
			case s != w:
				t.Errorf("reply to %v:\n got %+v\nwant %+v", s.flow, s, w)
				got[s.flow] = s
			default:
				got[s.flow] = s
			}
		case <-timeout:
			for f, w := range want {
				if _, ok := got[f]; !ok {
					t.Errorf("no reply to %v (want %+v)", f, w)
				}
			}
			return
		}
	}
}

// TestInNetns scans a target namespace over a veth pair: a SYN to an open
// port draws a SYN-ACK, one to a closed port a RST, one with a bad cookie
// a SYN-ACK that ValidCookie rejects; a UDP datagram to an echo server
// draws the echo, one to a closed port an ICMP port unreachable. The
// target sees the scanner's kernel reset the half-open connection.
func TestInNetns(t *testing.T) {
	n := newTestNet(t)

	var open, other net.Listener
	var echo *net.UDPConn
	var closedTCP, closedUDP uint16
	var targetRx *Receiver
	inNetns(t, n.target, func() error {
		var err error
		if open, err = net.Listen("tcp4", targetIP.String()+":0"); err != nil {
			return err
		}
		if other, err = net.Listen("tcp4", targetIP.String()+":0"); err != nil {
			return err
		}
		if echo, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(targetIP, 0))); err != nil {
			return err
		}
		// Ports that were bound and are free again are closed.
		l, err := net.Listen("tcp4", targetIP.String()+":0")
		if err != nil {
			return err
		}
		closedTCP = port(l.Addr())
		l.Close()
		u, err := net.ListenPacket("udp4", targetIP.String()+":0")
		if err != nil {
			return err
		}
		closedUDP = port(u.LocalAddr())
		u.Close()
		targetRx, err = NewReceiver(ReceiverConfig{Port: port(open.Addr())})
		return err
	})
	defer open.Close()
	defer other.Close()
	var echoes sync.WaitGroup
	echoes.Go(func() {
		buf := make([]byte, 1500)
		for {
			m, from, err := echo.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			echo.WriteToUDPAddrPort(buf[:m], from)
		}
	})
	defer echoes.Wait()
	defer echo.Close()

	var route Route
	inNetns(t, n.scanner, func() error {
		var err error
		route, err = LookupRoute(targetIP)
		return err
	})
	e := openScanEnd(t, n.scanner)
	res, tx, rx := e.res, e.tx, e.rx
	if route.Src != scannerIP || route.Interface == nil || route.Interface.Name != n.scannerLink {
		t.Errorf("route to %v: %+v, want source %v on %s", targetIP, route, scannerIP, n.scannerLink)
	}

	key := [16]byte{1, 2, 3}
	replies := collect(t, rx, key)
	targetSaw := collect(t, targetRx, key)

	local := netip.AddrPortFrom(route.Src, res.Port)
	to := func(p uint16) netip.AddrPort { return netip.AddrPortFrom(targetIP, p) }
	syn := func(dst netip.AddrPort, seq uint32) []byte {
		b, err := AppendTCP(nil, TCP{Src: local, Dst: dst, Seq: seq, Flags: FlagSYN, Window: 1024, MSS: 1460})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cookie := func(dst netip.AddrPort) uint32 {
		return Cookie(key, local.Addr(), dst.Addr(), local.Port(), dst.Port())
	}
	udp := func(dst netip.AddrPort, payload string) []byte {
		b, err := AppendUDP(nil, UDP{Src: local, Dst: dst, Payload: []byte(payload)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	openAP, otherAP := to(port(open.Addr())), to(port(other.Addr()))
	closedAP, echoAP, closedUDPAP := to(closedTCP), to(port(echo.LocalAddr())), to(closedUDP)
	pkts := [][]byte{
		syn(openAP, cookie(openAP)),
		syn(closedAP, cookie(closedAP)),
		syn(otherAP, cookie(otherAP)+5),
		udp(echoAP, "ping"),
		udp(closedUDPAP, ""),
	}
	dsts := make([]netip.Addr, len(pkts))
	for i := range dsts {
		dsts[i] = targetIP
	}
	if sent, err := tx.Send(pkts, dsts); err != nil || sent != len(pkts) {
		t.Fatalf("Send: %d of %d, %v", sent, len(pkts), err)
	}

	tcp := func(ap netip.AddrPort) Flow { return Flow{ProtoTCP, local, ap} }
	udpFlow := func(ap netip.AddrPort) Flow { return Flow{ProtoUDP, local, ap} }
	await(t, replies, map[Flow]seen{
		tcp(openAP):          {tcp(openAP), KindSynAck, FlagSYN | FlagACK, true, 64, ""},
		tcp(closedAP):        {tcp(closedAP), KindReset, FlagRST | FlagACK, true, 64, ""},
		tcp(otherAP):         {tcp(otherAP), KindSynAck, FlagSYN | FlagACK, false, 64, ""},
		udpFlow(echoAP):      {udpFlow(echoAP), KindUDP, 0, true, 64, "ping"},
		udpFlow(closedUDPAP): {udpFlow(closedUDPAP), KindPortUnreachable, 0, true, 64, ""},
	})

	// The target's receiver reads TCP to the open port: the SYN and the
	// RST that the scanner's kernel answered the SYN-ACK with.
	fromScanner := Flow{ProtoTCP, openAP, local}
	var flags []TCPFlags
	deadline := time.After(5 * time.Second)
	for len(flags) < 2 {
		select {
		case s := <-targetSaw:
			if s.flow == fromScanner {
				flags = append(flags, s.flags)
			}
		case <-deadline:
			t.Fatalf("the target saw %v from the scanner, want SYN then RST", flags)
		}
	}
	if flags[0] != FlagSYN || flags[1]&FlagRST == 0 {
		t.Errorf("the target saw %v from the scanner, want SYN then RST", flags)
	}

	st, err := rx.Stats()
	if err != nil || st.Received < 5 || st.Malformed != 0 {
		t.Errorf("Stats = %+v, %v; want at least 5 received, none malformed", st, err)
	}
}

// TestSendError sends to an address the scanner namespace has no route to:
// the kernel refuses it at once and the packet goes nowhere.
func TestSendError(t *testing.T) {
	n := newTestNet(t)
	var tx *Sender
	inNetns(t, n.scanner, func() error {
		var err error
		tx, err = NewSender()
		return err
	})
	defer tx.Close()
	unroutable := netip.MustParseAddr("198.19.0.1")
	good, _ := AppendUDP(nil, UDP{Src: netip.AddrPortFrom(scannerIP, 1), Dst: netip.AddrPortFrom(targetIP, 9)})
	bad, _ := AppendUDP(nil, UDP{Src: netip.AddrPortFrom(scannerIP, 1), Dst: netip.AddrPortFrom(unroutable, 9)})
	sent, err := tx.Send([][]byte{good, good, bad, good}, []netip.Addr{targetIP, targetIP, unroutable, targetIP})
	var op *OpError
	if sent != 2 || !errors.As(err, &op) || op.Addr != unroutable || !errors.Is(err, unix.ENETUNREACH) {
		t.Errorf("Send = %d, %v; want 2 sent and ENETUNREACH for %v", sent, err, unroutable)
	}
	if _, err := tx.Send([][]byte{good}, nil); err == nil {
		t.Error("Send of 1 packet to 0 destinations: no error")
	}
}

// TestLoopbackIPv6 probes [::1] in the scanner namespace: IPv6 packets out
// of the raw socket, and each reply read once although the loopback shows
// it both going out and coming in.
func TestLoopbackIPv6(t *testing.T) {
	if _, err := os.Stat("/proc/sys/net/ipv6"); err != nil {
		t.Skip("no IPv6 in this kernel")
	}
	n := newTestNet(t)
	lo := netip.MustParseAddr("::1")
	var ln net.Listener
	var closed uint16
	inNetns(t, n.scanner, func() error {
		var err error
		if ln, err = net.Listen("tcp6", "[::1]:0"); err != nil {
			return err
		}
		l, err := net.Listen("tcp6", "[::1]:0")
		if err != nil {
			return err
		}
		closed = port(l.Addr())
		return l.Close()
	})
	defer ln.Close()
	e := openScanEnd(t, n.scanner)
	res, tx, rx := e.res, e.tx, e.rx

	key := [16]byte{9}
	replies := collect(t, rx, key)
	local := netip.AddrPortFrom(lo, res.Port)
	var pkts [][]byte
	for _, p := range []uint16{port(ln.Addr()), closed} {
		dst := netip.AddrPortFrom(lo, p)
		b, err := AppendTCP(nil, TCP{Src: local, Dst: dst, Seq: Cookie(key, lo, lo, res.Port, p), Flags: FlagSYN, Window: 1024, MSS: 1440})
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, b)
	}
	b, _ := AppendUDP(nil, UDP{Src: local, Dst: netip.AddrPortFrom(lo, closed)})
	pkts = append(pkts, b)
	if sent, err := tx.Send(pkts, []netip.Addr{lo, lo, lo}); err != nil || sent != 3 {
		t.Fatalf("Send: %d, %v", sent, err)
	}
	openFlow := Flow{ProtoTCP, local, netip.AddrPortFrom(lo, port(ln.Addr()))}
	closedFlow := Flow{ProtoTCP, local, netip.AddrPortFrom(lo, closed)}
	udpFlow := Flow{ProtoUDP, local, netip.AddrPortFrom(lo, closed)}
	await(t, replies, map[Flow]seen{
		openFlow:   {openFlow, KindSynAck, FlagSYN | FlagACK, true, 64, ""},
		closedFlow: {closedFlow, KindReset, FlagRST | FlagACK, true, 64, ""},
		udpFlow:    {udpFlow, KindPortUnreachable, 0, true, 64, ""},
	})
	// A copy of a reply read as it went out would come right after.
	select {
	case s := <-replies:
		t.Errorf("another reply: %+v", s)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestRunStops checks that Run returns when its context is cancelled, with
// no packet coming in, and when the Receiver is closed.
func TestRunStops(t *testing.T) {
	n := newTestNet(t)
	var rx, rx2 *Receiver
	inNetns(t, n.scanner, func() error {
		var err error
		if rx, err = NewReceiver(ReceiverConfig{Port: 9}); err != nil {
			return err
		}
		rx2, err = NewReceiver(ReceiverConfig{Port: 9})
		return err
	})
	defer rx.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- rx.Run(ctx, func(*Reply, time.Time) {}) }()
	go func() { done <- rx2.Run(context.Background(), func(*Reply, time.Time) {}) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	rx2.Close()
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return")
		}
	}
}

// BenchmarkSendVeth sends SYNs into the veth pair, 256 a call, to
// changing ports of the target. In "answered" the target answers each with
// a RST, read back by a Receiver; the kernel does the target's work in the
// sender's system call, so this is the rate of whole round trips. In
// "dropped" they go to an address the target drops as it reads them: the
// rate of the send path alone. It reports packets sent per second and the share
// of RSTs read back.
func BenchmarkSendVeth(b *testing.B) {
	b.Run("answered", func(b *testing.B) { benchmarkSendVeth(b, false) })
	b.Run("dropped", func(b *testing.B) { benchmarkSendVeth(b, true) })
}

func benchmarkSendVeth(b *testing.B, drop bool) {
	n := newTestNet(b)
	dst := targetIP
	if drop {
		// An address the target does not have, reached at the target's
		// MAC address: the target, which does not forward, drops what
		// comes for it as soon as it looks up the route.
		dst = netip.MustParseAddr("198.18.0.3")
		for _, args := range [][]string{
			{"-n", n.target, "link", "set", "dev", n.targetLink, "address", "02:00:00:00:00:02"},
			{"-n", n.scanner, "neigh", "add", dst.String(), "lladdr", "02:00:00:00:00:02", "dev", n.scannerLink, "nud", "permanent"},
		} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				b.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	}
	e := openScanEnd(b, n.scanner)
	res, tx, rx := e.res, e.tx, e.rx

	ctx, cancel := context.WithCancel(context.Background())
	var replies int
	done := make(chan error, 1)
	key := [16]byte{7}
	go func() {
		done <- rx.Run(ctx, func(r *Reply, _ time.Time) {
			if r.Kind() == KindReset && ValidCookie(key, r) {
				replies++
			}
		})
	}()

	const batch = 256
	local := netip.AddrPortFrom(scannerIP, res.Port)
	pkts := make([][]byte, batch)
	dsts := make([]netip.Addr, batch)
	for i := range pkts {
		pkts[i] = make([]byte, 0, 64)
		dsts[i] = dst
	}
	b.ReportAllocs()
	port := uint16(1)
	sent := 0
	start := time.Now()
	for b.Loop() {
		for i := range pkts {
			port = port%60000 + 1
			seq := Cookie(key, scannerIP, dst, res.Port, port)
			pkts[i], _ = AppendTCP(pkts[i][:0], TCP{Src: local, Dst: netip.AddrPortFrom(dst, port), Seq: seq, Flags: FlagSYN, Window: 1024, MSS: 1460})
		}
		m, err := tx.Send(pkts, dsts)
		sent += m
		if err != nil && !errors.Is(err, unix.ENOBUFS) {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	time.Sleep(200 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	st, _ := rx.Stats()
	b.ReportMetric(float64(sent)/elapsed.Seconds(), "pkts/s")
	b.ReportMetric(float64(replies)/float64(sent), "replies/sent")
	b.ReportMetric(float64(st.Dropped), "rx-dropped")
}

func port(a net.Addr) uint16 {
	switch a := a.(type) {
	case *net.TCPAddr:
		return uint16(a.Port)
	case *net.UDPAddr:
		return uint16(a.Port)
	}
	panic(fmt.Sprintf("no port in %v", a))
}
