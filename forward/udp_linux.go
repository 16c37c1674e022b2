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
}

// readClients reads up to len(dgs) datagrams from the listener, with their
// senders, waiting for the first.
func (u *udpRunner) readClients(io *batchIO, dgs []datagram) (int, error) {
	rc, err := u.conn.SyscallConn()
	if err != nil {
		return 0, err
	}
	return u.recv(rc, io, dgs, true)
}

// readReplies reads up to len(dgs) datagrams from the session's target,
// waiting for the first.
func (s *udpSession) readReplies(io *batchIO, dgs []datagram) (int, error) {
	rc, err := s.up.SyscallConn()
	if err != nil {
		return 0, err
	}
	return s.u.recv(rc, io, dgs, false)
}

// recv is one recvmmsg into pooled buffers, taken only once the socket is
// readable: an idle session holds none.
func (u *udpRunner) recv(rc syscall.RawConn, io *batchIO, dgs []datagram, names bool) (int, error) {
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
	return send(rc, io, dgs, nil)
}

// writeClient writes replies to the client through the listener, and
// returns how many were written.
func (u *udpRunner) writeClient(io *batchIO, to netip.AddrPort, dgs []datagram) (int, error) {
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
	return send(rc, io, dgs, &sa)
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

// send is sendmmsg, of every datagram to sa (nil on a connected socket),
// waiting while the socket's buffer is full.
func send(rc syscall.RawConn, io *batchIO, dgs []datagram, sa *unix.RawSockaddrInet6) (int, error) {
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
