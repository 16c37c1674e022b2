//go:build !linux

package forward

import (
	"net"
	"net/netip"
)

// batchIO is empty where datagrams are read and written one at a time.
type batchIO struct{}

// readClients reads one datagram from the listener, with its sender.
func (u *udpRunner) readClients(_ *batchIO, dgs []datagram) (int, error) {
	bp := u.bufs.Get().(*[]byte)
	n, from, err := u.conn.ReadFromUDPAddrPort(*bp)
	if err != nil {
		u.bufs.Put(bp)
		return 0, err
	}
	dgs[0] = datagram{bp: bp, n: n, from: from}
	return 1, nil
}

// readReplies reads one datagram from the session's target.
func (s *udpSession) readReplies(_ *batchIO, dgs []datagram) (int, error) {
	n, bp, err := s.readReply()
	if err != nil {
		return 0, err
	}
	dgs[0] = datagram{bp: bp, n: n}
	return 1, nil
}

// writeUp writes the client's datagrams to the session's target, and
// returns how many were written.
func (s *udpSession) writeUp(_ *batchIO, dgs []datagram) (int, error) {
	for i := range dgs {
		if _, err := s.up.Write(dgs[i].bytes()); err != nil {
			return i, err
		}
	}
	return len(dgs), nil
}

// enableDstInfo would have the listener learn each datagram's destination:
// not done here, so a wildcard listener's replies leave from the address
// the route picks.
func enableDstInfo(*net.UDPConn) bool { return false }

// writeClient writes replies to the client through the listener, and
// returns how many were written.
func (u *udpRunner) writeClient(_ *batchIO, to netip.AddrPort, _ netip.Addr, dgs []datagram) (int, error) {
	for i := range dgs {
		if _, err := u.conn.WriteToUDPAddrPort(dgs[i].bytes(), to); err != nil {
			return i, err
		}
	}
	return len(dgs), nil
}
