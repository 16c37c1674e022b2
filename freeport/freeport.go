// Package freeport finds ports that can be bound right now.
//
// Two forms are offered. Find returns port numbers: simple, but racy, since a
// port is only known to be free at the moment it was checked. ListenTCP,
// ListenN and ListenUDP return the socket itself, already bound, so nothing
// can take the port between the check and its use; tests should prefer them.
package freeport

import (
	"context"
	"fmt"
	"net"
	"net/netip"
)

// Protocol is a set of transport protocols a port must be free for.
type Protocol uint8

const (
	TCP Protocol = 1 << iota
	UDP
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case TCP | UDP:
		return "tcp+udp"
	}
	return fmt.Sprintf("protocol(%d)", uint8(p))
}

// Range is an inclusive range of ports. The zero Range stands for the default
// search range (see Finder.Range).
type Range struct {
	Lo, Hi uint16
}

func (r Range) String() string { return fmt.Sprintf("%d-%d", r.Lo, r.Hi) }

// Len is the number of ports in r, 0 for an inverted range.
func (r Range) Len() int {
	if r.Lo > r.Hi {
		return 0
	}
	return int(r.Hi) - int(r.Lo) + 1
}

// Finder finds free ports. Its zero value looks for TCP ports, in random
// order, outside the host's ephemeral range, that bind on every local
// wildcard and loopback address.
type Finder struct {
	// Protocols the port must be free for; zero means TCP. With TCP|UDP a
	// port is returned only when both can bind it, as a service listening on
	// both (DNS, QUIC beside HTTPS) needs.
	Protocols Protocol

	// Range to search. The zero Range means 1024–65535 less the host's
	// ephemeral range (hostports.Read; 49152–65535, IANA's dynamic range and
	// the default of most systems, where that cannot be read): the kernel hands
	// ephemeral ports to outgoing connections at any moment, so a port found
	// there is the likeliest to be gone by the time it is used. An explicit
	// Range is searched whole; it must satisfy 1 <= Lo <= Hi.
	Range Range

	// Near, when not zero, makes the search start at Near and go outwards,
	// nearest first (the lower port on a tie), instead of in random order.
	// Concurrent callers with the same Near will race for the same ports.
	Near uint16

	// Addresses the port must bind on, each on its own: a port is free only if
	// every one of them can bind it, for every protocol asked. Nil means
	// 0.0.0.0, ::, 127.0.0.1 and ::1, leaving out the IPv6 ones when the host
	// has no IPv6. The loopback addresses are checked besides the wildcards
	// because on BSD, macOS and Windows a wildcard bind can succeed while
	// another process holds the same port on loopback.
	Addresses []netip.Addr

	// ListenAddr is the address the Listen methods bind and keep the port on.
	// The zero value means 127.0.0.1: those methods are meant for tests, and a
	// test server has no reason to be reachable from the network.
	ListenAddr netip.Addr
}

// Find returns n distinct ports that were free a moment ago.
//
// Beware the time-of-check/time-of-use trap: each port is free when checked,
// but Find closes its test sockets before returning, and any process
// (another test, an outgoing connection picking an ephemeral port) may bind the
// port before the caller does. Use Find to print or configure a port for
// another program; a caller that binds the port itself should use ListenTCP,
// ListenN or ListenUDP, which hand over the bound socket and cannot lose it.
//
// When the range holds fewer than n free ports the error wraps
// ErrNoFreePort; a bad Range or n < 1 gives an error whose BadInput method
// returns true.
func (f *Finder) Find(ctx context.Context, n int) ([]uint16, error) {
	var ports []uint16
	err := f.search(ctx, "find", n, 0, func(port uint16) (bool, error) {
		ports = append(ports, port)
		return len(ports) == n, nil
	})
	if err != nil {
		return nil, err
	}
	return ports, nil
}

// ListenTCP returns a TCP listener bound on ListenAddr at a port chosen as
// Find would choose it, free for the Finder's protocols and addresses. The
// port is held from the moment it is chosen, so it cannot be lost to a race;
// the caller closes the listener.
func (f *Finder) ListenTCP(ctx context.Context) (*net.TCPListener, error) {
	ls, err := f.ListenN(ctx, 1)
	if err != nil {
		return nil, err
	}
	return ls[0], nil
}

// ListenN is ListenTCP for n listeners on n distinct ports, for a test that
// needs several (a cluster, a proxy and its backend). On error none is left
// open.
func (f *Finder) ListenN(ctx context.Context, n int) ([]*net.TCPListener, error) {
	var ls []*net.TCPListener
	err := f.search(ctx, "listen", n, TCP, func(port uint16) (bool, error) {
		c, err := bind(ctx, TCP, netip.AddrPortFrom(f.listenAddr(), port))
		if err != nil {
			return false, err
		}
		ls = append(ls, c.(*net.TCPListener))
		return len(ls) == n, nil
	})
	if err != nil {
		for _, l := range ls {
			l.Close()
		}
		return nil, err
	}
	return ls, nil
}

// ListenUDP is ListenTCP for UDP: a socket bound on ListenAddr at a port free
// for UDP (and for TCP too when Protocols asks for it).
func (f *Finder) ListenUDP(ctx context.Context) (*net.UDPConn, error) {
	var conn *net.UDPConn
	err := f.search(ctx, "listen", 1, UDP, func(port uint16) (bool, error) {
		c, err := bind(ctx, UDP, netip.AddrPortFrom(f.listenAddr(), port))
		if err != nil {
			return false, err
		}
		conn = c.(*net.UDPConn)
		return true, nil
	})
	return conn, err
}

func (f *Finder) listenAddr() netip.Addr {
	if f.ListenAddr.IsValid() {
		return f.ListenAddr.Unmap()
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

// Find returns n ports free a moment ago, with the zero Finder; see
// Finder.Find for why binding them later is racy.
func Find(ctx context.Context, n int) ([]uint16, error) { return new(Finder).Find(ctx, n) }

// ListenTCP returns a TCP listener on 127.0.0.1 at a free port outside the
// ephemeral range, with the zero Finder.
func ListenTCP(ctx context.Context) (*net.TCPListener, error) { return new(Finder).ListenTCP(ctx) }

// ListenN returns n TCP listeners on 127.0.0.1 at distinct free ports, with
// the zero Finder.
func ListenN(ctx context.Context, n int) ([]*net.TCPListener, error) {
	return new(Finder).ListenN(ctx, n)
}

// ListenUDP returns a UDP socket on 127.0.0.1 at a free port outside the
// ephemeral range, with the zero Finder.
func ListenUDP(ctx context.Context) (*net.UDPConn, error) { return new(Finder).ListenUDP(ctx) }
