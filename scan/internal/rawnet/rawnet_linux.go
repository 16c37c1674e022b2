//go:build linux

package rawnet

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sendmmsg takes at most UIO_MAXIOV messages a call.
const maxBatch = 1024

// Socket buffer sizes asked for; root gets them past the sysctl limits.
const (
	sendBuffer    = 4 << 20
	receiveBuffer = 8 << 20
)

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

type receiverSys struct {
	f      *os.File
	rc     syscall.RawConn
	msgs   []unix.Mmsghdr
	iovs   []unix.Iovec
	names  []unix.RawSockaddrLinklayer
	buf    []byte
	snap   int
	drops  atomic.Uint64
	closed atomic.Bool

	// The read callback and its results, made once: a closure made
	// per read would be allocated per read.
	readFn func(fd uintptr) bool
	got    int
	errno  syscall.Errno
}

func (r *receiverSys) open(cfg ReceiverConfig) error {
	prog, err := replyFilter(cfg.Port, uint32(cfg.Snaplen))
	if err != nil {
		return err
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		filter[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	// Protocol zero: the socket gets nothing until bind names a protocol,
	// by which time the filter is in place.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return &OpError{Op: "socket", Err: err}
	}
	fail := func(op string, err error) error {
		unix.Close(fd)
		return &OpError{Op: op, Err: err}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return fail("setsockopt SO_ATTACH_FILTER", err)
	}
	// Since Linux 4.20; before it, run skips outgoing packets itself.
	unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	setBuffer(fd, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, receiveBuffer)
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: cfg.Interface}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	// A non-blocking descriptor makes an os.File that waits in the
	// runtime's poller, so a deadline can stop a read.
	r.f = os.NewFile(uintptr(fd), "rawnet-receiver")
	if r.rc, err = r.f.SyscallConn(); err != nil {
		r.f.Close()
		return &OpError{Op: "poll", Err: err}
	}

	n, snap := cfg.Batch, cfg.Snaplen
	r.snap = snap
	r.buf = make([]byte, n*snap)
	r.msgs = make([]unix.Mmsghdr, n)
	r.iovs = make([]unix.Iovec, n)
	r.names = make([]unix.RawSockaddrLinklayer, n)
	for i := range r.msgs {
		r.iovs[i].Base = &r.buf[i*snap]
		r.iovs[i].SetLen(snap)
		r.msgs[i].Hdr.Iov = &r.iovs[i]
		r.msgs[i].Hdr.SetIovlen(1)
		r.msgs[i].Hdr.Name = (*byte)(unsafe.Pointer(&r.names[i]))
	}
	r.readFn = r.read
	return nil
}

// htons puts v in network byte order, as struct sockaddr_ll wants it.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

func (r *receiverSys) run(ctx context.Context, deliver func([]byte, time.Time)) error {
	if err := r.f.SetReadDeadline(time.Time{}); err != nil {
		return &OpError{Op: "recvmmsg", Err: err}
	}
	// A deadline in the past wakes a read waiting in the poller.
	stop := context.AfterFunc(ctx, func() { r.f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		err := r.rc.Read(r.readFn)
		if ctx.Err() != nil || r.closed.Load() {
			return nil
		}
		if err != nil {
			return &OpError{Op: "recvmmsg", Err: err}
		}
		switch r.errno {
		case 0:
		case unix.EINTR:
			continue
		default:
			return &OpError{Op: "recvmmsg", Err: r.errno}
		}
		at := time.Now()
		for i := range r.got {
			if r.names[i].Pkttype == unix.PACKET_OUTGOING {
				continue
			}
			off := i * r.snap
			deliver(r.buf[off:off+int(r.msgs[i].Len)], at)
		}
	}
}

// read is one recvmmsg, called by the runtime's poller when the socket
// is readable; it returns false to wait for that.
func (r *receiverSys) read(fd uintptr) bool {
	for i := range r.msgs {
		r.msgs[i].Hdr.Namelen = unix.SizeofSockaddrLinklayer
	}
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd,
		uintptr(unsafe.Pointer(&r.msgs[0])), uintptr(len(r.msgs)), 0, 0, 0)
	r.got, r.errno = int(n), e
	if e != 0 {
		r.got = 0
	}
	return e != unix.EAGAIN
}

// dropped adds up the kernel's count of packets dropped for a full
// buffer, which it resets at every read.
func (r *receiverSys) dropped() (uint64, error) {
	var st *unix.TpacketStats
	var serr error
	err := r.rc.Control(func(fd uintptr) {
		st, serr = unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return r.drops.Load(), &OpError{Op: "getsockopt PACKET_STATISTICS", Err: err}
	}
	return r.drops.Add(uint64(st.Drops)), nil
}

func (r *receiverSys) close() error {
	r.closed.Store(true)
	if err := r.f.Close(); err != nil {
		return &OpError{Op: "close", Err: err}
	}
	return nil
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
