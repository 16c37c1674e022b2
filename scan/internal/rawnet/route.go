package rawnet

import (
	"fmt"
	"net"
	"net/netip"
)

// Route is what the kernel's routing table says about reaching a
// destination.
type Route struct {
	Src netip.Addr // the source address the kernel would choose
	// Interface carries Src; nil when no interface has it (a route whose
	// preferred source is on another interface).
	Interface *net.Interface
}

// LookupRoute asks the kernel for the source address and interface of
// packets to dst. It connects a UDP socket to dst and reads its local
// address: connecting a UDP socket consults the routing table and sends
// nothing. It runs in the network namespace of the calling thread.
func LookupRoute(dst netip.Addr) (Route, error) {
	// The port is arbitrary: nothing is sent to it.
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 9)))
	if err != nil {
		return Route{}, fmt.Errorf("rawnet: route to %v: %w", dst, err)
	}
	src := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	c.Close()
	rt := Route{Src: src}
	ifs, err := net.Interfaces()
	if err != nil {
		return rt, fmt.Errorf("rawnet: route to %v: %w", dst, err)
	}
	for i := range ifs {
		addrs, err := ifs[i].Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == src.WithZone("") {
					rt.Interface = &ifs[i]
					return rt, nil
				}
			}
		}
	}
	return rt, nil
}
