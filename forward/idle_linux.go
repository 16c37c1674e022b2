package forward

import (
	"net"
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
