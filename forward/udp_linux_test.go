package forward

import (
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestSockaddrAddrPort(t *testing.T) {
	be := func(p uint16) uint16 { return p>>8 | p<<8 }
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
	if zoneIndex("7") != 7 || zoneIndex("no-such-interface") != 0 {
		t.Error("zoneIndex")
	}
}
