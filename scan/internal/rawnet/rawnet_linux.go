//go:build linux

package rawnet

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sendmmsg takes at most UIO_MAXIOV messages a call.
const maxBatch = 1024

// The socket buffer size asked for; root gets it past the sysctl limit.
const sendBuffer = 4 << 20

type senderSys struct {
	fd4, fd6 int // -1 when closed or not available
	msgs     []unix.Mmsghdr
	iovs     []unix.Iovec
	sa4      []unix.RawSockaddrInet4
	sa6      []unix.RawSockaddrInet6
}

func (s *senderSys) open() error {
	s.fd4, s.fd6 = -1, -1
	// IPPROTO_RAW implies IP_HDRINCL for IPv4 and, since Linux 4.5, the
	// same for IPv6: the packets carry their own IP header.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return &OpError{Op: "socket", Err: err}
	}
	s.fd4 = fd
	setBuffer(fd, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, sendBuffer)
	fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	switch {
	case err == nil:
		s.fd6 = fd
		setBuffer(fd, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, sendBuffer)
	case errors.Is(err, unix.EAFNOSUPPORT):
		// No IPv6 here; sending to IPv6 says so.
	default:
		s.close()
		return &OpError{Op: "socket", Err: err}
	}
	return nil
}

// setBuffer asks for a socket buffer of size bytes, past the sysctl limit
// when allowed (force), else as large as the limit lets it be.
func setBuffer(fd, force, opt, size int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, size) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, size)
	}
}

func (s *senderSys) send(pkts [][]byte, dsts []netip.Addr) (int, error) {
	sent := 0
	for sent < len(pkts) {
		v4 := dsts[sent].Unmap().Is4()
		end := sent + 1
		for end < len(pkts) && end-sent < maxBatch && dsts[end].Unmap().Is4() == v4 {
			end++
		}
		n, err := s.sendRun(pkts[sent:end], dsts[sent:end], v4)
		sent += n
		if err != nil {
			return sent, &OpError{Op: "sendmmsg", Addr: dsts[sent], Err: err}
		}
	}
	return sent, nil
}

// sendRun sends packets of one address family.
func (s *senderSys) sendRun(pkts [][]byte, dsts []netip.Addr, v4 bool) (int, error) {
	if s.fd4 < 0 {
		return 0, net.ErrClosed
	}
	fd := s.fd4
	if !v4 {
		fd = s.fd6
	}
	if fd < 0 {
		return 0, unix.EAFNOSUPPORT
	}
	n := len(pkts)
	if len(s.msgs) < n {
		s.msgs = make([]unix.Mmsghdr, n)
		s.iovs = make([]unix.Iovec, n)
		s.sa4 = make([]unix.RawSockaddrInet4, n)
		s.sa6 = make([]unix.RawSockaddrInet6, n)
	}
	for i, p := range pkts {
		iov := &s.iovs[i]
		iov.Base = &p[0]
		iov.SetLen(len(p))
		m := &s.msgs[i]
		*m = unix.Mmsghdr{}
		m.Hdr.Iov = iov
		m.Hdr.SetIovlen(1)
		if v4 {
			s.sa4[i] = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dsts[i].Unmap().As4()}
			m.Hdr.Name = (*byte)(unsafe.Pointer(&s.sa4[i]))
			m.Hdr.Namelen = unix.SizeofSockaddrInet4
		} else {
			s.sa6[i] = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dsts[i].As16(), Scope_id: scopeID(dsts[i])}
			m.Hdr.Name = (*byte)(unsafe.Pointer(&s.sa6[i]))
			m.Hdr.Namelen = unix.SizeofSockaddrInet6
		}
	}
	done := 0
	for done < n {
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd),
			uintptr(unsafe.Pointer(&s.msgs[done])), uintptr(n-done), 0, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			runtime.KeepAlive(pkts)
			return done, errno
		}
		done += int(r)
	}
	runtime.KeepAlive(pkts)
	return done, nil
}

func scopeID(a netip.Addr) uint32 {
	if a.Zone() == "" {
		return 0
	}
	ifi, err := net.InterfaceByName(a.Zone())
	if err != nil {
		return 0
	}
	return uint32(ifi.Index)
}

func (s *senderSys) close() error {
	var err error
	for _, fd := range []*int{&s.fd4, &s.fd6} {
		if *fd >= 0 {
			if e := unix.Close(*fd); e != nil && err == nil {
				err = &OpError{Op: "close", Err: e}
			}
			*fd = -1
		}
	}
	return err
}

type reservationSys struct {
	tcp int
	udp *net.UDPConn
}

func (r *reservationSys) reserve(port uint16) (uint16, error) {
	for range 32 {
		fd, p, err := bindTCP(port)
		if err != nil {
			return 0, err
		}
		u, err := net.ListenUDP("udp", &net.UDPAddr{Port: int(p)})
		if err == nil {
			// Never read: a small buffer that fills and drops.
			u.SetReadBuffer(1)
			r.tcp, r.udp = fd, u
			return p, nil
		}
		unix.Close(fd)
		if port != 0 || !errors.Is(err, unix.EADDRINUSE) {
			return 0, &OpError{Op: "bind udp", Err: err}
		}
	}
	return 0, &OpError{Op: "bind", Err: errors.New("no port free for both TCP and UDP")}
}

// bindTCP binds a TCP socket on all addresses, IPv6 and IPv4 when the
// kernel has IPv6, without listening.
func bindTCP(port uint16) (int, uint16, error) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	var sa unix.Sockaddr = &unix.SockaddrInet6{Port: int(port)}
	if errors.Is(err, unix.EAFNOSUPPORT) {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		sa = &unix.SockaddrInet4{Port: int(port)}
	} else if err == nil {
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
	}
	if err != nil {
		return -1, 0, &OpError{Op: "socket", Err: err}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, 0, &OpError{Op: "bind tcp", Err: err}
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return -1, 0, &OpError{Op: "getsockname", Err: err}
	}
	switch a := got.(type) {
	case *unix.SockaddrInet6:
		return fd, uint16(a.Port), nil
	case *unix.SockaddrInet4:
		return fd, uint16(a.Port), nil
	}
	unix.Close(fd)
	return -1, 0, &OpError{Op: "getsockname", Err: unix.EAFNOSUPPORT}
}

func (r *reservationSys) close() error {
	err := unix.Close(r.tcp)
	if e := r.udp.Close(); err == nil {
		err = e
	}
	if err != nil {
		return &OpError{Op: "close", Err: err}
	}
	return nil
}
