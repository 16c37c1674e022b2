//go:build linux

package packetring

import (
	"context"
	"encoding/binary"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// receiveBuffer is the socket buffer asked for where there is no ring;
// root gets it past the sysctl limit.
const receiveBuffer = 8 << 20

type ringSys struct {
	f        *os.File
	rc       syscall.RawConn
	outgoing bool
	idle     func() // Config.Idle, or a no-op
	drops    atomic.Uint64
	closed   atomic.Bool

	// The ring the kernel writes packets into: TPACKET_V3, a block at a
	// time, or with Config.Immediate TPACKET_V2, a frame at a time; nil
	// where the kernel has none (then recvmmsg below). mu guards it
	// against close unmapping it under run.
	mu    sync.Mutex
	ring  []byte
	block int // bytes in a block
	cur   int // the block (V3) or frame (V2) to read next

	// TPACKET_V2 only: the frames, perBlock to a block (the kernel puts
	// none across a block's end), frame bytes each; frame is zero for V3.
	frame    int
	perBlock int
	frames   int
	// How fast the frames come: paceCount read since paceFrom, and
	// whether the last window was busy.
	paceFrom  time.Time
	paceCount int
	paceBusy  bool
	// The socket of a TPACKET_V2 ring is waited on with poll(2), not in
	// the runtime's poller: registered there, the kernel would wake the
	// poller's thread at every packet, even while run is busy reading
	// or pausing (see busy). wake is an eventfd that ends run's wait;
	// runMu is held by run, so close frees the descriptors only once
	// run has left them; fdMu keeps dropped off a closed descriptor.
	fd    int
	wake  int
	runMu sync.Mutex
	fdMu  sync.RWMutex

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

// The receive ring: Config.Blocks blocks of Config.BlockSize bytes, each
// handed to the reader when it is full or ringTimeout ms (a jiffy at
// least) after its first packet.
const (
	ringFrame   = 2048 // only a bound for TPACKET_V3, whose frames are packed
	ringTimeout = 1    // ms
)

// Offsets in a TPACKET_V2 frame: struct tpacket2_hdr, then at
// TPACKET_ALIGN(sizeof(struct tpacket2_hdr)) the packet's struct
// sockaddr_ll; the packet itself at tp_net.
const (
	frameStatus  = 0
	frameSnaplen = 8
	frameNet     = 14
	frameSec     = 16
	frameNsec    = 20
	frameLL      = 32
	// Where the kernel puts a packet of a SOCK_DGRAM socket in a frame:
	// TPACKET_ALIGN(TPACKET2_HDRLEN) + 16 (room it keeps for a link-layer
	// header); a frame is that and the snap length, rounded up to
	// TPACKET_ALIGNMENT, or the kernel cuts the packet short.
	frameData = 80
	// The size of an Immediate ring's blocks, when a frame fits: the
	// kernel allocates each block whole, so big ones are few allocations,
	// and it falls back to virtual memory where contiguous pages are short.
	frameBlockSize = 128 << 10
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
	llIfindex     = 4
	llPkttype     = 10
)

func (r *ringSys) open(cfg Config) error {
	filter := make([]unix.SockFilter, len(cfg.Filter))
	for i, in := range cfg.Filter {
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
	r.outgoing = cfg.Outgoing
	r.idle = cfg.Idle
	if r.idle == nil {
		r.idle = func() {}
	}
	if !cfg.Outgoing {
		// Since Linux 4.20; before it, run skips outgoing packets itself.
		unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	}
	// The ring, or a socket buffer to read with recvmmsg, before bind:
	// nothing arrives before the socket is ready to be read as it will be.
	var ring bool
	if cfg.Immediate {
		ring = r.openFrameRing(fd, cfg.Frames, cfg.Snaplen)
	} else {
		ring = r.openRing(fd, cfg.Blocks, cfg.BlockSize)
	}
	if !ring {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, receiveBuffer)
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, receiveBuffer)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: cfg.Interface}
	if err := unix.Bind(fd, sa); err != nil {
		r.unmap()
		return fail("bind", err)
	}
	if ring && r.frame > 0 {
		wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
		if err != nil {
			r.unmap()
			return fail("eventfd", err)
		}
		r.fd, r.wake = fd, wake
		return nil
	}
	// A non-blocking descriptor makes an os.File that waits in the
	// runtime's poller, so a deadline can stop a read.
	r.f = os.NewFile(uintptr(fd), "packetring")
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
func (r *ringSys) openRing(fd, blocks, blockSize int) bool {
	if unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3) != nil {
		return false
	}
	req := unix.TpacketReq3{
		Block_size: uint32(blockSize), Block_nr: uint32(blocks),
		Frame_size: ringFrame, Frame_nr: uint32(blockSize / ringFrame * blocks),
		Retire_blk_tov: ringTimeout,
	}
	ring, ok := mapRing(fd, blockSize*blocks, func(req *unix.TpacketReq3) error {
		return unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, req)
	}, &req)
	if !ok {
		return false
	}
	r.ring, r.block = ring, blockSize
	return true
}

// mapRing asks the kernel for the receive ring req (through set) and maps
// its size bytes; where either fails, the ring is taken down again (set
// with a zero request) and the socket goes back to TPACKET_V1, to be read
// with recvmmsg.
func mapRing[R any](fd, size int, set func(*R) error, req *R) ([]byte, bool) {
	if set(req) == nil {
		ring, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err == nil {
			return ring, true
		}
		// The ring stays, unread: take it down again.
		set(new(R))
	}
	unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V1)
	return nil, false
}

// openFrameRing sets up a TPACKET_V2 receive ring of at least frames
// frames, each with room for snaplen bytes, on fd and maps it; false where
// the kernel cannot, and the socket is read with recvmmsg.
func (r *ringSys) openFrameRing(fd, frames, snaplen int) bool {
	if unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2) != nil {
		return false
	}
	frame := (frameData + snaplen + unix.TPACKET_ALIGNMENT - 1) &^ (unix.TPACKET_ALIGNMENT - 1)
	page := os.Getpagesize()
	// frameBlockSize, or less for a small ring, or more for a big frame.
	blockSize := min(frameBlockSize, frames*frame)
	blockSize = (max(blockSize, frame) + page - 1) / page * page
	perBlock := blockSize / frame
	blocks := (frames + perBlock - 1) / perBlock
	req := unix.TpacketReq{
		Block_size: uint32(blockSize), Block_nr: uint32(blocks),
		Frame_size: uint32(frame), Frame_nr: uint32(blocks * perBlock),
	}
	ring, ok := mapRing(fd, blockSize*blocks, func(req *unix.TpacketReq) error {
		return unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, req)
	}, &req)
	if !ok {
		return false
	}
	r.ring, r.block = ring, blockSize
	r.frame, r.perBlock, r.frames = frame, perBlock, blocks*perBlock
	return true
}

// htons puts v in network byte order, as struct sockaddr_ll wants it.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

func (r *ringSys) run(ctx context.Context, h Handler) error {
	if r.frame > 0 {
		return r.runFrames(ctx, h)
	}
	if err := r.f.SetReadDeadline(time.Time{}); err != nil {
		if r.closed.Load() {
			return nil // closed before Run began: as if during it
		}
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
			if !r.readBlock(h) {
				return nil
			}
			if !r.readRing(0) {
				r.idle()
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
		info := Info{At: time.Now()}
		for i := range r.got {
			info.Outgoing = r.names[i].Pkttype == unix.PACKET_OUTGOING
			if info.Outgoing && !r.outgoing {
				continue
			}
			info.Interface = int(r.names[i].Ifindex)
			off := i * r.snap
			h(r.buf[off:off+int(r.msgs[i].Len)], info)
		}
		if r.got < len(r.msgs) {
			r.idle() // a short batch: nothing more was queued
		}
	}
}

// read is one recvmmsg, called by the runtime's poller when the socket
// is readable; it returns false to wait for that.
func (r *ringSys) read(fd uintptr) bool {
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
func (r *ringSys) unmap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ring != nil {
		unix.Munmap(r.ring)
		r.ring = nil
	}
}

// status is the block status word of block b of the ring.
func (r *ringSys) status(b int) *uint32 {
	return (*uint32)(unsafe.Pointer(&r.ring[b*r.block+blockStatus]))
}

// readRing tells the runtime's poller whether the next block of the ring
// is the reader's; false to wait until the kernel hands one over.
func (r *ringSys) readRing(uintptr) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ring == nil || atomic.LoadUint32(r.status(r.cur))&unix.TP_STATUS_USER != 0
}

// readBlock delivers the packets of the ring's next block, with the times
// the kernel took them, and hands the block back. It returns false when
// the ring is gone (closed).
func (r *ringSys) readBlock(h Handler) bool {
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
		p := blk[off:]
		net, snap := int(binary.NativeEndian.Uint16(p[pktNet:])), int(binary.NativeEndian.Uint32(p[pktSnaplen:]))
		out := p[pktLL+llPkttype] == unix.PACKET_OUTGOING
		if (!out || r.outgoing) && net+snap <= len(p) {
			h(p[net:net+snap], Info{
				At:        time.Unix(int64(binary.NativeEndian.Uint32(p[pktSec:])), int64(binary.NativeEndian.Uint32(p[pktNsec:]))),
				Interface: int(int32(binary.NativeEndian.Uint32(p[pktLL+llIfindex:]))),
				Outgoing:  out,
			})
		}
		next := int(binary.NativeEndian.Uint32(p[pktNext:]))
		if next == 0 {
			break
		}
		off += next
	}
	atomic.StoreUint32(status, unix.TP_STATUS_KERNEL)
	r.cur = (r.cur + 1) % (len(r.ring) / r.block)
	return true
}

// frameBatch bounds how many frames readFrames delivers before run looks
// at its context again.
const frameBatch = 256

// frameAt is frame i of the TPACKET_V2 ring.
func (r *ringSys) frameAt(i int) []byte {
	off := i/r.perBlock*r.block + i%r.perBlock*r.frame
	return r.ring[off : off+r.frame]
}

// frameStatusOf is the status word of frame f.
func frameStatusOf(f []byte) *uint32 { return (*uint32)(unsafe.Pointer(&f[frameStatus])) }

// runFrames is run for a TPACKET_V2 ring: it reads the frames the kernel
// has filled and waits in poll(2) for more.
func (r *ringSys) runFrames(ctx context.Context, h Handler) error {
	r.runMu.Lock()
	defer r.runMu.Unlock()
	stop := context.AfterFunc(ctx, r.wakeUp)
	defer stop()
	fds := []unix.PollFd{{Fd: int32(r.fd), Events: unix.POLLIN}, {Fd: int32(r.wake), Events: unix.POLLIN}}
	var buf [8]byte
	read := false // since idle was called
	for {
		if ctx.Err() != nil || r.closed.Load() {
			return nil
		}
		n, drained, ok := r.readFrames(h)
		if !ok {
			return nil
		}
		read = read || n > 0
		if !drained {
			continue
		}
		if read {
			r.idle()
			read = false
		}
		if r.busy(n, time.Now()) {
			// Let a flood gather in the ring rather than wake per
			// packet: a wake-up costs more than reading a frame.
			time.Sleep(paceDelay)
			continue
		}
		// The kernel reports the socket readable while the frame it
		// filled last is not handed back, so a frame filled since
		// readFrames looked is not missed.
		fds[0].Revents, fds[1].Revents = 0, 0
		if _, err := unix.Poll(fds, -1); err != nil && err != unix.EINTR {
			return &OpError{Op: "poll", Err: err}
		}
		if fds[1].Revents != 0 {
			unix.Read(r.wake, buf[:])
		}
	}
}

// wakeUp ends a wait of runFrames in poll(2).
// It may come from ctx after run has returned, even after close.
func (r *ringSys) wakeUp() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	r.fdMu.RLock()
	defer r.fdMu.RUnlock()
	if r.wake >= 0 {
		unix.Write(r.wake, one[:])
	}
}

// readFrames delivers the packets of the ring's frames the kernel has
// filled, in order, frameBatch at most, with the times the kernel took
// them, handing each frame back once it is read. It returns how many
// frames it read, whether it read all there were, and false when the ring
// is gone (closed).
func (r *ringSys) readFrames(h Handler) (n int, drained, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ring == nil {
		return 0, false, false
	}
	for ; n < frameBatch; n++ {
		f := r.frameAt(r.cur)
		status := frameStatusOf(f)
		if atomic.LoadUint32(status)&unix.TP_STATUS_USER == 0 {
			return n, true, true
		}
		net, snap := int(binary.NativeEndian.Uint16(f[frameNet:])), int(binary.NativeEndian.Uint32(f[frameSnaplen:]))
		out := f[frameLL+llPkttype] == unix.PACKET_OUTGOING
		if (!out || r.outgoing) && net >= frameLL && net+snap <= len(f) {
			h(f[net:net+snap], Info{
				At:        time.Unix(int64(binary.NativeEndian.Uint32(f[frameSec:])), int64(binary.NativeEndian.Uint32(f[frameNsec:]))),
				Interface: int(int32(binary.NativeEndian.Uint32(f[frameLL+llIfindex:]))),
				Outgoing:  out,
			})
		}
		atomic.StoreUint32(status, unix.TP_STATUS_KERNEL)
		r.cur = (r.cur + 1) % r.frames
	}
	return n, false, true
}

// An Immediate ring's reader that has read paceBusyFrames frames or more
// within paceWindow is busy: each time it has read every frame there is,
// it pauses paceDelay (in practice up to a millisecond: the runtime's
// timers) before it waits for the next, so a flood is read a batch per
// wake-up, not a packet; below that rate, as for a scan, every packet is
// read as it lands.
const (
	paceWindow     = time.Millisecond
	paceBusyFrames = 32 // 32,000 packets a second
	paceDelay      = 250 * time.Microsecond
)

// busy counts n frames read by now and tells whether the reader is busy.
func (r *ringSys) busy(n int, now time.Time) bool {
	r.paceCount += n
	if d := now.Sub(r.paceFrom); d >= paceWindow {
		r.paceBusy = r.paceCount >= int(int64(paceBusyFrames)*int64(d)/int64(paceWindow))
		r.paceFrom, r.paceCount = now, 0
	} else if r.paceCount >= paceBusyFrames {
		r.paceBusy = true
	}
	return r.paceBusy
}

// dropped adds up the kernel's count of packets dropped for a full
// buffer, which it resets at every read.
func (r *ringSys) dropped() (uint64, error) {
	var st *unix.TpacketStats
	var err error
	if r.frame > 0 {
		r.fdMu.RLock()
		if r.fd < 0 {
			err = os.ErrClosed
		} else {
			st, err = unix.GetsockoptTpacketStats(r.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
		}
		r.fdMu.RUnlock()
	} else {
		var serr error
		err = r.rc.Control(func(fd uintptr) {
			st, serr = unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS)
		})
		if err == nil {
			err = serr
		}
	}
	if err != nil {
		return r.drops.Load(), &OpError{Op: "getsockopt PACKET_STATISTICS", Err: err}
	}
	return r.drops.Add(uint64(st.Drops)), nil
}

func (r *ringSys) close() error {
	if r.frame > 0 {
		return r.closeFrames()
	}
	r.closed.Store(true)
	err := r.f.Close()
	r.unmap()
	if err != nil {
		return &OpError{Op: "close", Err: err}
	}
	return nil
}

// closeFrames is close for a TPACKET_V2 ring: it stops a run in progress
// and waits for it to leave before it frees the ring and descriptors.
func (r *ringSys) closeFrames() error {
	if r.closed.Swap(true) {
		return nil
	}
	r.wakeUp()
	r.runMu.Lock()
	defer r.runMu.Unlock()
	r.unmap()
	r.fdMu.Lock()
	defer r.fdMu.Unlock()
	err := unix.Close(r.fd)
	unix.Close(r.wake)
	r.fd, r.wake = -1, -1
	if err != nil {
		return &OpError{Op: "close", Err: err}
	}
	return nil
}
