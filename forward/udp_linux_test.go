package forward

import (
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestSockaddrAddrPort(t *testing.T) {
	be := func(p uint16) (n uint16) { putPort(&n, p); return n }
	v4 := unix.RawSockaddrInet4{Family: unix.AF_INET, Port: be(5353), Addr: [4]byte{192, 0, 2, 1}}
	var sa unix.RawSockaddrInet6
	*(*unix.RawSockaddrInet4)(unsafe.Pointer(&sa)) = v4
	for _, tt := range []struct {
		sa   unix.RawSockaddrInet6
		want string
	}{
		{sa, "192.0.2.1:5353"},
		{unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: be(53), Addr: netip.MustParseAddr("::ffff:192.0.2.1").As16()}, "[::ffff:192.0.2.1]:53"},
		{unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: be(1), Addr: netip.MustParseAddr("2001:db8::1").As16()}, "[2001:db8::1]:1"},
		{unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: be(65535), Addr: netip.MustParseAddr("fe80::1").As16(), Scope_id: 7}, "[fe80::1%7]:65535"},
	} {
		if got := sockaddrAddrPort(&tt.sa).String(); got != tt.want {
			t.Errorf("got %s, want %s", got, tt.want)
		}
	}
	var raw uint16
	putPort(&raw, 0x1234)
	if b := (*[2]byte)(unsafe.Pointer(&raw)); b[0] != 0x12 || b[1] != 0x34 || getPort(&raw) != 0x1234 {
		t.Errorf("port 0x1234 as % x in a sockaddr, want 12 34", b[:])
	}
	if zoneIndex("7") != 7 || zoneIndex("no-such-interface") != 0 {
		t.Error("zoneIndex")
	}
}

func TestPktinfoDst(t *testing.T) {
	msg := func(level, typ int32, data []byte) []byte {
		b := make([]byte, unix.CmsgSpace(len(data)))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = level, typ
		h.SetLen(unix.CmsgLen(len(data)))
		copy(b[unix.CmsgLen(0):], data)
		return b
	}
	v4 := func(addr, spec [4]byte) []byte {
		pi := unix.Inet4Pktinfo{Addr: addr, Spec_dst: spec}
		return msg(unix.IPPROTO_IP, unix.IP_PKTINFO, unsafe.Slice((*byte)(unsafe.Pointer(&pi)), unix.SizeofInet4Pktinfo))
	}
	v6 := func(addr string, ifindex uint32) []byte {
		pi := unix.Inet6Pktinfo{Addr: netip.MustParseAddr(addr).As16(), Ifindex: ifindex}
		return msg(unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, unsafe.Slice((*byte)(unsafe.Pointer(&pi)), unix.SizeofInet6Pktinfo))
	}
	other := msg(unix.SOL_SOCKET, unix.SO_TIMESTAMP, make([]byte, 16))
	for _, tt := range []struct {
		oob  []byte
		want string
	}{
		{v4([4]byte{127, 0, 0, 2}, [4]byte{127, 0, 0, 2}), "127.0.0.2"},
		{v4([4]byte{255, 255, 255, 255}, [4]byte{192, 0, 2, 1}), "192.0.2.1"},
		{append(other, v6("2001:db8::1", 2)...), "2001:db8::1"},
		{v6("fe80::1", 3), "fe80::1%3"},
		{other, "invalid IP"},
		{v4([4]byte{127, 0, 0, 2}, [4]byte{})[:10], "invalid IP"},
	} {
		if got := pktinfoDst(tt.oob).String(); got != tt.want {
			t.Errorf("got %s, want %s", got, tt.want)
		}
	}
	var b [oobSize]byte
	for _, src := range []string{"127.0.0.2", "::ffff:127.0.0.2", "2001:db8::1", "fe80::1%3"} {
		n := putPktinfo(&b, netip.MustParseAddr(src))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		if n > oobSize || int(h.Len) > n {
			t.Errorf("%s: %d bytes, header says %d", src, n, h.Len)
		}
	}
}
