package forward

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchIO is the arguments of one recvmmsg or sendmmsg, kept by the
// goroutine that reads or writes so that a batch allocates nothing.
type batchIO struct {
	hdrs  [udpBatch]unix.Mmsghdr
	iovs  [udpBatch]unix.Iovec
	names [udpBatch]unix.RawSockaddrInet6 // room for an IPv4 one too
	oob   [udpBatch][oobSize]byte         // IP_PKTINFO or IPV6_PKTINFO
}

// oobSize holds one struct in6_pktinfo control message, the larger of the
// two, with room to spare.
const oobSize = 64

// enableDstInfo asks the kernel for each datagram's destination address
// (IP_PKTINFO; on an IPv6 socket IPV6_RECVPKTINFO too, for both families
// of a dual-stack one).
func enableDstInfo(c *net.UDPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	rc.Control(func(fd uintptr) {
		v4 := unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1) == nil
		v6 := true
		if c.LocalAddr().(*net.UDPAddr).IP.To4() == nil {
			v6 = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1) == nil
		}
		ok = v4 && v6
	})
	return ok
}

// readClients reads up to len(dgs) datagrams from the listener, with their
// senders, waiting for the first.
func (u *udpRunner) readClients(io *batchIO, dgs []datagram) (int, error) {
	rc, err := u.conn.SyscallConn()
	if err != nil {
		return 0, err
	}
	return u.recv(rc, io, dgs, true, u.dstInfo)
}

// readReplies reads up to len(dgs) datagrams from the session's target,
// waiting for the first.
func (s *udpSession) readReplies(io *batchIO, dgs []datagram) (int, error) {
	rc, err := s.up.SyscallConn()
	if err != nil {
		return 0, err
	}
	return s.u.recv(rc, io, dgs, false, false)
}

// recv is one recvmmsg into pooled buffers, taken only once the socket is
// readable: an idle session holds none.
func (u *udpRunner) recv(rc syscall.RawConn, io *batchIO, dgs []datagram, names, dst bool) (int, error) {
	var (
		n     int
		errno syscall.Errno
	)
	err := rc.Read(func(fd uintptr) bool {
		for i := range dgs {
			bp := u.bufs.Get().(*[]byte)
			dgs[i].bp = bp
			io.iovs[i].Base = &(*bp)[0]
			io.iovs[i].SetLen(len(*bp))
			h := &io.hdrs[i].Hdr
			*h = unix.Msghdr{Iov: &io.iovs[i]}
			h.SetIovlen(1)
			if names {
				h.Name = (*byte)(unsafe.Pointer(&io.names[i]))
				h.Namelen = unix.SizeofSockaddrInet6
			}
			if dst {
				h.Control = &io.oob[i][0]
				h.SetControllen(oobSize)
			}
		}
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&io.hdrs[0])), uintptr(len(dgs)), 0, 0, 0)
		n, errno = int(r), e
		if e != 0 {
			n = 0
		}
		u.release(dgs[n:])
		return e != unix.EAGAIN && e != unix.EINTR
	})
	if err == nil && errno != 0 {
		err = errno
	}
	if err != nil {
		return 0, err
	}
	for i := range n {
		dgs[i].n = int(io.hdrs[i].Len)
		if dst {
			h := &io.hdrs[i].Hdr
			dgs[i].to = pktinfoDst(io.oob[i][:h.Controllen])
		}
		if names {
			dgs[i].from = sockaddrAddrPort(&io.names[i])
		}
	}
	return n, nil
}

// sockaddrAddrPort reads a struct sockaddr_in or sockaddr_in6 as Go's
// ReadFromUDPAddrPort would: a dual-stack socket's IPv4 clients as
// IPv4-mapped addresses, link-local ones with their interface (by index).
func sockaddrAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	// sin_port and sin6_port are at the same offset, in network byte order.
	port := getPort(&sa.Port)
	if sa.Family == unix.AF_INET {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	}
	a := netip.AddrFrom16(sa.Addr)
	if sa.Scope_id != 0 {
		a = a.WithZone(strconv.FormatUint(uint64(sa.Scope_id), 10))
	}
	return netip.AddrPortFrom(a, port)
}

// getPort and putPort read and write a port in network byte order, as
// struct sockaddr holds it, whatever the machine's own order.
func getPort(p *uint16) uint16 { return binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(p))[:]) }

func putPort(p *uint16, port uint16) {
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(p))[:], port)
}

// writeUp writes the client's datagrams to the session's target, and
// returns how many were written.
func (s *udpSession) writeUp(io *batchIO, dgs []datagram) (int, error) {
	rc, err := s.up.SyscallConn()
	if err != nil {
		return 0, err
	}
	return send(rc, io, dgs, nil, nil)
}

// writeClient writes replies to the client through the listener, and
// returns how many were written.
func (u *udpRunner) writeClient(io *batchIO, to netip.AddrPort, src netip.Addr, dgs []datagram) (int, error) {
	rc, err := u.conn.SyscallConn()
	if err != nil {
		return 0, err
	}
	var sa unix.RawSockaddrInet6
	if a := to.Addr(); a.Is4() {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
	} else {
		sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16()}
		if z := a.Zone(); z != "" {
			sa.Scope_id = zoneIndex(z)
		}
	}
	putPort(&sa.Port, to.Port())
	var oob []byte
	if src.IsValid() {
		oob = io.oob[0][:putPktinfo(&io.oob[0], src)]
	}
	return send(rc, io, dgs, &sa, oob)
}

// zoneIndex is the interface index of a zone, given by index or by name.
func zoneIndex(zone string) uint32 {
	if i, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(i)
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}

// send is sendmmsg, of every datagram to sa (nil on a connected socket)
// with the control message oob (none if empty), waiting while the socket's
// buffer is full.
func send(rc syscall.RawConn, io *batchIO, dgs []datagram, sa *unix.RawSockaddrInet6, oob []byte) (int, error) {
	for i := range dgs {
		b := dgs[i].bytes()
		io.iovs[i].Base = nil
		if len(b) > 0 {
			io.iovs[i].Base = &b[0]
		}
		io.iovs[i].SetLen(len(b))
		h := &io.hdrs[i].Hdr
		*h = unix.Msghdr{Iov: &io.iovs[i]}
		h.SetIovlen(1)
		if sa != nil {
			h.Name = (*byte)(unsafe.Pointer(sa))
			h.Namelen = unix.SizeofSockaddrInet6
			if sa.Family == unix.AF_INET {
				h.Namelen = unix.SizeofSockaddrInet4
			}
		}
		if len(oob) > 0 {
			h.Control = &oob[0]
			h.SetControllen(len(oob))
		}
	}
	sent := 0
	var errno syscall.Errno
	err := rc.Write(func(fd uintptr) bool {
		for sent < len(dgs) {
			r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&io.hdrs[sent])), uintptr(len(dgs)-sent), 0, 0, 0)
			switch e {
			case 0:
				sent += int(r)
			case unix.EINTR:
			case unix.EAGAIN:
				return false
			default:
				errno = e
				return true
			}
		}
		return true
	})
	if err == nil && errno != 0 {
		err = errno
	}
	return sent, err
}

// pktinfoDst reads a datagram's destination address from its control
// messages: IP_PKTINFO's ipi_addr (its ipi_spec_dst for a broadcast), or
// IPV6_PKTINFO's address, link-local ones with their interface index as
// the zone. It returns the zero Addr where there is none.
func pktinfoDst(oob []byte) netip.Addr {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		n := int(h.Len)
		if n < unix.SizeofCmsghdr || n > len(oob) {
			return netip.Addr{}
		}
		data := oob[unix.CmsgLen(0):n]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
			if a := netip.AddrFrom4(pi.Addr); !a.IsMulticast() && a != netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
				return a
			}
			return netip.AddrFrom4(pi.Spec_dst) // a broadcast is no source
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
			a := netip.AddrFrom16(pi.Addr)
			if a.IsLinkLocalUnicast() && pi.Ifindex != 0 {
				a = a.WithZone(strconv.FormatUint(uint64(pi.Ifindex), 10))
			}
			return a
		}
		oob = oob[unix.CmsgSpace(n-unix.CmsgLen(0)):]
	}
	return netip.Addr{}
}

// putPktinfo writes into b the control message that makes a reply leave
// from src, and returns its length: IP_PKTINFO for an IPv4 source (a
// dual-stack socket takes it too), IPV6_PKTINFO otherwise.
func putPktinfo(b *[oobSize]byte, src netip.Addr) int {
	clear(b[:])
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	data := unsafe.Pointer(&b[unix.CmsgLen(0)])
	if src.Is4() || src.Is4In6() {
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		(*unix.Inet4Pktinfo)(data).Spec_dst = src.Unmap().As4()
		return unix.CmsgSpace(unix.SizeofInet4Pktinfo)
	}
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	pi := (*unix.Inet6Pktinfo)(data)
	pi.Addr = src.As16()
	if z := src.Zone(); z != "" {
		pi.Ifindex = zoneIndex(z)
	}
	return unix.CmsgSpace(unix.SizeofInet6Pktinfo)
}
