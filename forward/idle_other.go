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

// noteReader counts what it reads and, with an idle watch, notes when.
type noteReader struct {
	r     io.Reader
	last  *atomic.Int64 // nil without an idle timeout
	count *atomic.Int64
}

func (n noteReader) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	if k > 0 {
		n.count.Add(int64(k))
		if n.last != nil {
			n.last.Store(time.Now().UnixNano())
		}
	}
	return k, err
}

// pipePool is Linux's: elsewhere there is no splice.
type pipePool struct{}

func (*pipePool) close() {}

// copyTCP copies src to dst; count gets the bytes as they are read.
func copyTCP(dst, src *net.TCPConn, w *idleWatch, _ *pipePool, count *atomic.Int64) (int64, error) {
	var last *atomic.Int64
	if w != nil {
		last = w.last
	}
	return io.Copy(dst, noteReader{src, last, count})
}
