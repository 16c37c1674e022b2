package sockets

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"syscall"
	"testing"
)

func TestPortRangeBytecode(t *testing.T) {
	bc := appendPortRange(nil, 8080, 8080)
	if len(bc) != sizeofPortRange {
		t.Fatalf("%d bytes, want %d", len(bc), sizeofPortRange)
	}
	if ne == binary.ByteOrder(binary.LittleEndian) {
		want := []byte{
			inetDiagBCSGE, 8, 20, 0, // S_GE: on to the next op, or reject
			0, 0, 0x90, 0x1f, // port 8080
			inetDiagBCSLE, 8, 12, 0, // S_LE: accept, or reject
			0, 0, 0x90, 0x1f,
		}
		if !bytes.Equal(bc, want) {
			t.Errorf("bytecode\n% x, want\n% x", bc, want)
		}
	}
	if err := auditBytecode(bc); err != nil {
		t.Fatalf("the kernel would refuse it: %v", err)
	}
	for _, tt := range []struct {
		lo, hi uint16
		port   uint16
		want   bool
	}{
		{8080, 8080, 8080, true},
		{8080, 8080, 8079, false},
		{8080, 8080, 8081, false},
		{8080, 8080, 0, false},
		{1, 1023, 22, true},
		{1, 1023, 1024, false},
		{0, 65535, 65535, true},
		{0, 65535, 0, true},
	} {
		if got := runBytecode(appendPortRange(nil, tt.lo, tt.hi), tt.port); got != tt.want {
			t.Errorf("[%d, %d] port %d: accepted %v, want %v", tt.lo, tt.hi, tt.port, got, tt.want)
		}
	}
}

// runBytecode runs inet_diag bytecode on a socket with local port sport, as
// inet_diag_bc_run in net/ipv4/inet_diag.c does.
func runBytecode(bc []byte, sport uint16) bool {
	pc := 0
	for pc < len(bc) {
		code, yes, no := bc[pc], int(bc[pc+1]), int(ne.Uint16(bc[pc+2:]))
		ok := true
		switch code {
		case inetDiagBCSGE:
			ok = sport >= ne.Uint16(bc[pc+6:])
		case inetDiagBCSLE:
			ok = sport <= ne.Uint16(bc[pc+6:])
		}
		if ok {
			pc += yes
		} else {
			pc += no
		}
	}
	return pc == len(bc)
}

// auditBytecode checks bytecode as inet_diag_bc_audit does before the
// kernel runs it, for the ops appendPortRange uses.
func auditBytecode(bc []byte) error {
	pc := 0
	for pc < len(bc) {
		left := len(bc) - pc
		code, yes, no := bc[pc], int(bc[pc+1]), int(ne.Uint16(bc[pc+2:]))
		if code != inetDiagBCSGE && code != inetDiagBCSLE {
			return errors.New("unexpected op")
		}
		const minLen = 8 // a port test and the op carrying its port
		if left < minLen {
			return errors.New("port test without its port")
		}
		if no < minLen || no > left+4 || no&3 != 0 {
			return errors.New("bad no jump")
		}
		if yes < minLen || yes > left+4 || yes&3 != 0 {
			return errors.New("bad yes jump")
		}
		pc += yes
	}
	if pc != len(bc) {
		return errors.New("does not end at its end")
	}
	return nil
}

func TestDiagRequest(t *testing.T) {
	for _, tt := range []struct {
		req          request
		family, prot byte
		size         int
	}{
		{request{TCP, IPv4, Listen, 0, 0}, syscall.AF_INET, syscall.IPPROTO_TCP, 72},
		{request{UDP, IPv6, udpStates, 53, 53}, syscall.AF_INET6, syscall.IPPROTO_UDP, 92},
	} {
		b := appendDiagRequest(nil, 7, tt.req)
		if len(b) != tt.size || int(ne.Uint32(b)) != tt.size {
			t.Fatalf("%v: %d bytes, header says %d; want %d", tt.req, len(b), ne.Uint32(b), tt.size)
		}
		if ne.Uint16(b[4:]) != sockDiagByFamily || ne.Uint16(b[6:]) != nlmFRequest|nlmFDump || ne.Uint32(b[8:]) != 7 {
			t.Errorf("%v: header % x", tt.req, b[:16])
		}
		if b[16] != tt.family || b[17] != tt.prot || State(ne.Uint32(b[20:])) != tt.req.states {
			t.Errorf("%v: inet_diag_req_v2 % x", tt.req, b[16:24])
		}
		if tt.req.port != 0 {
			attr := b[sizeofNlmsghdr+sizeofReqV2:]
			if ne.Uint16(attr) != 20 || ne.Uint16(attr[2:]) != inetDiagReqBytecode ||
				!bytes.Equal(attr[4:], appendPortRange(nil, tt.req.port, tt.req.port)) {
				t.Errorf("%v: attribute % x", tt.req, attr)
			}
		}
	}
}

// diagMsg builds a SOCK_DIAG_BY_FAMILY reply carrying one inet_diag_msg.
func diagMsg(seq uint32, family, state byte, local, remote netip.AddrPort, uid, inode uint32) []byte {
	b := ne.AppendUint32(nil, sizeofNlmsghdr+sizeofDiagMsg+8)
	b = ne.AppendUint16(b, sockDiagByFamily)
	b = ne.AppendUint16(b, 2) // NLM_F_MULTI
	b = ne.AppendUint32(b, seq)
	b = ne.AppendUint32(b, 1234)
	b = append(b, family, state, 0, 0)
	b = binary.BigEndian.AppendUint16(b, local.Port())
	b = binary.BigEndian.AppendUint16(b, remote.Port())
	src, dst := local.Addr().As16(), remote.Addr().As16()
	if family == syscall.AF_INET {
		src, dst = [16]byte{}, [16]byte{}
		a, r := local.Addr().As4(), remote.Addr().As4()
		copy(src[:], a[:])
		copy(dst[:], r[:])
	}
	b = append(b, src[:]...)
	b = append(b, dst[:]...)
	ifindex, _ := strconv.Atoi(local.Addr().Zone())
	b = ne.AppendUint32(b, uint32(ifindex))
	b = append(b, make([]byte, 8)...) // cookie
	b = ne.AppendUint32(b, 0)         // expires
	b = ne.AppendUint32(b, 5)         // rqueue
	b = ne.AppendUint32(b, 128)       // wqueue
	b = ne.AppendUint32(b, uid)
	b = ne.AppendUint32(b, inode)
	b = append(b, 5, 0, 8, 0, 0, 0, 0, 0) // INET_DIAG_SHUTDOWN, padded: ignored
	return b
}

func nlmsg(seq uint32, typ uint16, errno int32) []byte {
	b := ne.AppendUint32(nil, sizeofNlmsghdr+4)
	b = ne.AppendUint16(b, typ)
	b = ne.AppendUint16(b, 2)
	b = ne.AppendUint32(b, seq)
	b = ne.AppendUint32(b, 1234)
	return ne.AppendUint32(b, uint32(errno))
}

func TestParseDiagReplies(t *testing.T) {
	ap := netip.MustParseAddrPort
	req := request{TCP, IPv6, AllStates, 0, 0}
	var dgram []byte
	dgram = append(dgram, diagMsg(3, syscall.AF_INET6, 10, ap("[::1]:8080"), ap("[::]:0"), 1000, 4242)...)
	dgram = append(dgram, diagMsg(2, syscall.AF_INET6, 10, ap("[::1]:9999"), ap("[::]:0"), 0, 1)...) // stale
	dgram = append(dgram, diagMsg(3, syscall.AF_INET6, 1, ap("[::ffff:10.0.0.1]:8080"), ap("[::ffff:10.0.0.2]:5555"), 1000, 4243)...)
	dgram = append(dgram, diagMsg(3, syscall.AF_INET6, 14, ap("[::1]:7"), ap("[::]:0"), 0, 9)...) // unknown state
	// Link-local: the interface index is the zone, of both ends.
	dgram = append(dgram, diagMsg(3, syscall.AF_INET6, 1, ap("[fe80::1%3]:22"), ap("[fe80::2]:40000"), 0, 4244)...)
	out, done, err := parseDiagReplies(dgram, 3, req, nil)
	if err != nil || done {
		t.Fatalf("done %v, %v", done, err)
	}
	want := []Socket{
		{TCP, IPv6, ap("[::1]:8080"), ap("[::]:0"), Listen, 1000, 4242, 5, 128},
		{TCP, IPv6, ap("[::ffff:10.0.0.1]:8080"), ap("[::ffff:10.0.0.2]:5555"), Established, 1000, 4243, 5, 128},
		{TCP, IPv6, ap("[fe80::1%3]:22"), ap("[fe80::2%3]:40000"), Established, 0, 4244, 5, 128},
	}
	if len(out) != len(want) || out[0].Socket != want[0] || out[1].Socket != want[1] || out[2].Socket != want[2] {
		t.Fatalf("got %+v\nwant %+v", out, want)
	}

	v4 := diagMsg(3, syscall.AF_INET, 7, ap("127.0.0.53:53"), ap("0.0.0.0:0"), 101, 77)
	out, done, err = parseDiagReplies(append(v4, nlmsg(3, nlmsgDone, 0)...), 3, request{UDP, IPv4, udpStates, 0, 0}, nil)
	if err != nil || !done || len(out) != 1 || out[0].Socket != (Socket{UDP, IPv4, ap("127.0.0.53:53"), ap("0.0.0.0:0"), Close, 101, 77, 5, 128}) {
		t.Fatalf("udp4: %+v, done %v, %v", out, done, err)
	}

	for _, tt := range []struct {
		name  string
		dgram []byte
		errno syscall.Errno
	}{
		{"error", nlmsg(3, nlmsgError, -int32(syscall.ENOENT)), syscall.ENOENT},
		{"done with error", nlmsg(3, nlmsgDone, -int32(syscall.EINTR)), syscall.EINTR},
		{"truncated", diagMsg(3, syscall.AF_INET, 10, ap("1.2.3.4:5"), ap("0.0.0.0:0"), 0, 1)[:50], 0},
		{"short inet_diag_msg", nlmsg(3, sockDiagByFamily, 0), 0},
		{"bad family", diagMsg(3, 99, 10, ap("1.2.3.4:5"), ap("0.0.0.0:0"), 0, 1), 0},
	} {
		_, _, err := parseDiagReplies(tt.dgram, 3, req, nil)
		if err == nil || tt.errno != 0 && !errors.Is(err, tt.errno) {
			t.Errorf("%s: %v, want an error (%v)", tt.name, err, tt.errno)
		}
	}
}

func dialDiagOrSkip(t testing.TB) *diagConn {
	t.Helper()
	c, err := dialDiag()
	if netlinkUnavailable(err) {
		t.Skip("no sock_diag netlink here:", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.close() })
	return c
}

// TestKernelPortFilter checks that the kernel, not this package, drops the
// sockets on other ports: dump applies no filter of its own.
func TestKernelPortFilter(t *testing.T) {
	c := dialDiagOrSkip(t)
	var ports []uint16
	for range 2 {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		ports = append(ports, uint16(ln.Addr().(*net.TCPAddr).Port))
	}
	ctx := context.Background()
	all, err := c.dump(ctx, request{TCP, IPv4, Listen, 0, 0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := countPort(all, ports[0]) + countPort(all, ports[1]); n != 2 {
		t.Fatalf("unfiltered dump has %d of our 2 listeners: %+v", n, all)
	}
	for _, port := range ports {
		got, err := c.dump(ctx, request{TCP, IPv4, Listen, port, port}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Local.Port() != port {
			t.Errorf("dump of port %d returned %+v", port, got)
		}
	}
	// A range: both listeners, and nothing outside it.
	lo, hi := min(ports[0], ports[1]), max(ports[0], ports[1])
	got, err := c.dump(ctx, request{TCP, IPv4, Listen, lo, hi}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if countPort(got, lo) != 1 || countPort(got, hi) != 1 {
		t.Errorf("dump of ports %d-%d lacks one of them: %+v", lo, hi, got)
	}
	for _, e := range got {
		if p := e.Local.Port(); p < lo || p > hi {
			t.Errorf("dump of ports %d-%d returned port %d", lo, hi, p)
		}
	}
	// Same socket, successive requests: sequence numbers keep them apart.
	if got, err := c.dump(ctx, request{UDP, IPv4, udpStates, ports[0], ports[0]}, nil); err != nil || len(got) != 0 {
		t.Errorf("udp dump of a TCP port: %+v, %v", got, err)
	}
}

func countPort(entries []Entry, port uint16) int {
	n := 0
	for _, e := range entries {
		if e.Local.Port() == port {
			n++
		}
	}
	return n
}

// TestDumpTCPBothFamilies: one request for TCP in both families answers
// what a request per family does, IPv4's sockets first, bound and
// listening alike.
func TestDumpTCPBothFamilies(t *testing.T) {
	c := dialDiagOrSkip(t)
	ln4, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln4.Close()
	ln6, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	defer ln6.Close()
	ports := []uint16{uint16(ln4.Addr().(*net.TCPAddr).Port), uint16(ln6.Addr().(*net.TCPAddr).Port)}
	lo, hi := slices.Min(ports), slices.Max(ports)
	ctx := context.Background()
	for _, states := range []State{Listen, Listen | Bound, AllStates &^ Close} {
		for _, span := range [][2]uint16{{lo, hi}, {0, 0}} {
			req := request{TCP, IPv4, states, span[0], span[1]}
			got, err := c.dumpTCP(ctx, req, nil)
			if err != nil {
				t.Fatalf("%v: %v", states, err)
			}
			want, err := c.dump(ctx, req, nil)
			if err == nil {
				req.family = IPv6
				want, err = c.dump(ctx, req, want)
			}
			if err != nil {
				t.Fatal(err)
			}
			// The host's other sockets come and go between dumps: compare
			// ours, and the order of families.
			ours := func(es []Entry) []Entry {
				return slices.DeleteFunc(slices.Clone(es), func(e Entry) bool { return !slices.Contains(ports, e.Local.Port()) })
			}
			if g, w := ours(got), ours(want); len(w) != 2 || !reflect.DeepEqual(g, w) {
				t.Errorf("%v, ports %v: one request %+v, one per family %+v", states, span, g, w)
			}
			if i := slices.IndexFunc(got, func(e Entry) bool { return e.Family == IPv6 }); i >= 0 &&
				slices.ContainsFunc(got[i:], func(e Entry) bool { return e.Family == IPv4 }) {
				t.Errorf("%v, ports %v: IPv4 sockets after IPv6 ones", states, span)
			}
		}
	}
}
