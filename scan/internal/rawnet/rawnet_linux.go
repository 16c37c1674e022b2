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
	"sync"
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
	drops  atomic.Uint64
	closed atomic.Bool

	// The TPACKET_V3 ring the kernel writes replies into, a block at a
	// time; nil where the kernel has none (then recvmmsg below). mu
	// guards it against close unmapping it under run.
	mu    sync.Mutex
	ring  []byte
	block int // bytes in a block
	cur   int // the block to read next

	// recvmmsg, without a ring.
	msgs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrLinklayer
	buf   []byte
	snap  int

	// The read callback and its results, made once: a closure made
	// per read would be allocated per read.
	readFn func(fd uintptr) bool
	got    int
	errno  syscall.Errno
}

// The receive ring: ringBlocks blocks of ringBlock bytes (4 MiB: some
// 29,000 replies of a SYN scan), each handed to the reader when it is full
// or ringTimeout ms (a jiffy at least) after its first packet. The reader is woken
// once a block, not once a packet: at a hundred thousand replies a second,
// waking a thread for each cost more CPU than the kernel's whole work on
// the probes and their answers.
const (
	ringBlock   = 64 << 10
	ringBlocks  = 64
	ringFrame   = 2048 // only a bound for TPACKET_V3, whose frames are packed
	ringTimeout = 1    // ms
)

// Offsets in the ring: struct tpacket_block_desc (its tpacket_hdr_v1) and
// struct tpacket3_hdr, followed by the struct sockaddr_ll of the packet.
const (
	blockStatus   = 8
	blockNumPkts  = 12
	blockFirstPkt = 16
	pktNext       = 0
	pktSec        = 4
	pktNsec       = 8
	pktSnaplen    = 12
	pktNet        = 26
	pktLL         = 48 // TPACKET_ALIGN(sizeof(struct tpacket3_hdr))
	llPkttype     = 10
)

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
	// The ring, or a socket buffer to read with recvmmsg, before bind:
	// nothing arrives before the socket is ready to be read as it will be.
	ring := r.openRing(fd)
	if !ring {
		setBuffer(fd, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, receiveBuffer)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: cfg.Interface}
	if err := unix.Bind(fd, sa); err != nil {
		r.unmap()
		return fail("bind", err)
	}
	// A non-blocking descriptor makes an os.File that waits in the
	// runtime's poller, so a deadline can stop a read.
	r.f = os.NewFile(uintptr(fd), "rawnet-receiver")
	if r.rc, err = r.f.SyscallConn(); err != nil {
		r.f.Close()
		r.unmap()
		return &OpError{Op: "poll", Err: err}
	}
	if ring {
		r.readFn = r.readRing
		return nil
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

// openRing sets up a TPACKET_V3 receive ring on fd and maps it; false
// where the kernel cannot, and the socket is read with recvmmsg.
func (r *receiverSys) openRing(fd int) bool {
	if unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3) != nil {
		return false
	}
	req := unix.TpacketReq3{
		Block_size: ringBlock, Block_nr: ringBlocks,
		Frame_size: ringFrame, Frame_nr: ringBlock / ringFrame * ringBlocks,
		Retire_blk_tov: ringTimeout,
	}
	if unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req) != nil {
		unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V1)
		return false
	}
	ring, err := unix.Mmap(fd, 0, ringBlock*ringBlocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		// The ring stays, unread: take it down again.
		unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &unix.TpacketReq3{})
		unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V1)
		return false
	}
	r.ring, r.block = ring, ringBlock
	return true
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
		if r.block > 0 {
			if !r.readBlock(deliver) {
				return nil
			}
			continue
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

// unmap unmaps the ring, once run no longer reads it.
func (r *receiverSys) unmap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ring != nil {
		unix.Munmap(r.ring)
		r.ring = nil
	}
}

// status is the block status word of block b of the ring.
func (r *receiverSys) status(b int) *uint32 {
	return (*uint32)(unsafe.Pointer(&r.ring[b*r.block+blockStatus]))
}

// readRing tells the runtime's poller whether the next block of the ring
// is the reader's; false to wait until the kernel hands one over.
func (r *receiverSys) readRing(uintptr) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ring == nil || atomic.LoadUint32(r.status(r.cur))&unix.TP_STATUS_USER != 0
}

// readBlock delivers the packets of the ring's next block, with the times
// the kernel took them, and hands the block back. It returns false when
// the ring is gone (closed).
func (r *receiverSys) readBlock(deliver func([]byte, time.Time)) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ring == nil {
		return false
	}
	status := r.status(r.cur)
	if atomic.LoadUint32(status)&unix.TP_STATUS_USER == 0 {
		return true
	}
	blk := r.ring[r.cur*r.block : (r.cur+1)*r.block]
	n := binary.NativeEndian.Uint32(blk[blockNumPkts:])
	off := int(binary.NativeEndian.Uint32(blk[blockFirstPkt:]))
	for range n {
		if off <= 0 || off+pktLL+llPkttype >= len(blk) {
			break // not a block the kernel wrote: skip the rest
		}
		h := blk[off:]
		net, snap := int(binary.NativeEndian.Uint16(h[pktNet:])), int(binary.NativeEndian.Uint32(h[pktSnaplen:]))
		if h[pktLL+llPkttype] != unix.PACKET_OUTGOING && net+snap <= len(h) {
			at := time.Unix(int64(binary.NativeEndian.Uint32(h[pktSec:])), int64(binary.NativeEndian.Uint32(h[pktNsec:])))
			deliver(h[net:net+snap], at)
		}
		next := int(binary.NativeEndian.Uint32(h[pktNext:]))
		if next == 0 {
			break
		}
		off += next
	}
	atomic.StoreUint32(status, unix.TP_STATUS_KERNEL)
	r.cur = (r.cur + 1) % (len(r.ring) / r.block)
	return true
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
	err := r.f.Close()
	r.unmap()
	if err != nil {
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
