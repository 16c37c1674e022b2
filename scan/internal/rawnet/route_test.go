package rawnet

import (
	"net"
	"net/netip"
	"testing"
)

// TestLookupRouteLoopback looks up the route to 127.0.0.1, which needs no
// privilege and sends nothing.
func TestLookupRouteLoopback(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	rt, err := LookupRoute(lo)
	if err != nil {
		t.Skip("no loopback route here:", err)
	}
	if rt.Src != lo {
		t.Errorf("source = %v, want %v", rt.Src, lo)
	}
	if rt.Interface == nil || rt.Interface.Flags&net.FlagLoopback == 0 {
		t.Errorf("interface = %+v, want the loopback", rt.Interface)
	}
}
