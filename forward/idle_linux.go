package forward

import (
	"io"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// activity on Linux asks the kernel: TCP_INFO's last_data_recv is the time
// since the socket last received data.
type activity struct{}

func newActivity() activity { return activity{} }

func (activity) quietFor(c *net.TCPConn) time.Duration {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	var (
		info *unix.TCPInfo
		gerr error
	)
	if err := rc.Control(func(fd uintptr) {
		info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || gerr != nil {
		return 0 // unknown: count as active rather than cut a live connection
	}
	return time.Duration(info.Last_data_recv) * time.Millisecond
}

// copyTCP moves src to dst with splice(2) until src's EOF, holding a splice
// pipe only while bytes are queued: it waits for src in the poller, then
// has io.Copy (splice, as both ends are *net.TCPConn) move exactly what
// the kernel has queued. A plain io.Copy would park inside splice with a
// pipe — two descriptors and a pipe buffer per idle direction, six
// descriptors per idle connection instead of two — and Go's pipe pool keeps
// them open until a garbage collection after the connections close.
//
// count gets the bytes as each batch is moved, so the metrics are live.
func copyTCP(dst, src *net.TCPConn, _ *idleWatch, count *atomic.Int64) (int64, error) {
	rc, err := src.SyscallConn()
	if err != nil {
		n, err := io.Copy(dst, src)
		count.Add(n)
		return n, err
	}
	var total int64
	for {
		queued, err := waitQueued(rc)
		if err != nil || queued == 0 {
			return total, err // queued 0 without error: EOF
		}
		n, err := io.Copy(dst, &io.LimitedReader{R: src, N: int64(queued)})
		total += n
		count.Add(n)
		if err != nil {
			return total, err
		}
	}
}

// waitQueued waits until the socket has bytes queued, or is at EOF (0), or
// has failed, and returns how many bytes are queued.
func waitQueued(rc interface {
	Read(func(uintptr) bool) error
}) (int, error) {
	var (
		queued int
		rerr   error
		peek   [1]byte
	)
	err := rc.Read(func(fd uintptr) bool {
		n, _, err := unix.Recvfrom(int(fd), peek[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			return false // park in the poller until readable
		case err != nil:
			rerr = err
		case n > 0:
			queued, err = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
			if err != nil || queued < 1 {
				queued = 1
			}
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	return queued, rerr
}
