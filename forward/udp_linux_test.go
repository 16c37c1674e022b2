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
