package forward

import (
	"context"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Go's keep-alive defaults for a TCP connection, which the forwarder keeps
// on both legs of every connection: probes after 15 s of silence, every
// 15 s, 9 unanswered ones end the connection.
const (
	keepAliveIdle     = 15 * time.Second
	keepAliveInterval = 15 * time.Second
	keepAliveCount    = 9
)

// listenTCP listens on addr. A socket accepted on Linux inherits the
// listener's keep-alive settings (SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL,
// TCP_KEEPCNT; the kernel arms the accepted socket's keep-alive timer from
// them), so they are set once here rather than by Go on each accepted
// connection: the same keep-alives, four setsockopt calls fewer per
// connection.
func listenTCP(addr string) (*net.TCPListener, error) {
	lc := net.ListenConfig{
		KeepAlive: -1, // inherited from the listener instead
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				for _, o := range [...]struct{ level, opt, v int }{
					{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
					{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(keepAliveIdle / time.Second)},
					{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(keepAliveInterval / time.Second)},
					{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, keepAliveCount},
				} {
					if serr = unix.SetsockoptInt(int(fd), o.level, o.opt, o.v); serr != nil {
						return
					}
				}
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	return ln.(*net.TCPListener), nil
}
