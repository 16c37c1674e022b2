//go:build !linux

package forward

import (
	"io"
	"net"
	"sync/atomic"
	"time"
)

// activity elsewhere is counted by portkit itself: without splice, io.Copy
// reads through a buffer anyway, so a reader that notes the time costs
// nothing extra. One clock serves both sockets: either direction's bytes
// make the connection active.
type activity struct{ last *atomic.Int64 }

func newActivity() activity {
	a := activity{last: new(atomic.Int64)}
	a.last.Store(time.Now().UnixNano())
	return a
}

func (a activity) quietFor(*net.TCPConn) time.Duration {
	return time.Duration(time.Now().UnixNano() - a.last.Load())
}

type noteReader struct {
	r    io.Reader
	last *atomic.Int64
}

func (n noteReader) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	if k > 0 {
		n.last.Store(time.Now().UnixNano())
	}
	return k, err
}

func copyTCP(dst, src *net.TCPConn, w *idleWatch) (int64, error) {
	if w == nil {
		return io.Copy(dst, src)
	}
	return io.Copy(dst, noteReader{src, w.last})
}
