package forward

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// pipePool keeps a few splice pipes for the relays to share. A relay holds
// one only while it moves a batch of bytes, from the moment the socket has
// them queued to the moment they are written on: an idle direction holds
// none (two descriptors per idle connection, not six), and a connection
// that moves a request and a response takes a pipe from here rather than
// making one (pipe2, and with Go's own pool a finalizer and a garbage
// collection before it is closed).
type pipePool struct {
	mu     sync.Mutex
	free   []splicePipe
	out    int  // handed out now
	closed bool // by Shutdown: pipes given back are closed
}

type splicePipe struct{ r, w int }

// maxFreePipes bounds the pipes kept open between uses. A pipe is held for
// two splice calls, so few are out at once however many connections there
// are; the rest are closed as they come back.
const maxFreePipes = 16

// maxSplice is the most one splice(2) call is asked to move, as Go's own
// splice asks: the pipe's capacity (64 KiB by default) bounds it anyway.
const maxSplice = 1 << 20

// get returns a pipe from the pool or a new one.
func (p *pipePool) get() (splicePipe, error) {
	p.mu.Lock()
	p.out++
	if n := len(p.free); n > 0 {
		sp := p.free[n-1]
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return sp, nil
	}
	p.mu.Unlock()
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		p.mu.Lock()
		p.out--
		p.mu.Unlock()
		return splicePipe{}, os.NewSyscallError("pipe2", err)
	}
	return splicePipe{r: fds[0], w: fds[1]}, nil
}

// put gives a pipe back. One that still holds bytes (a write that failed
// part way) is closed, never reused: its bytes would go to the next
// connection.
func (p *pipePool) put(sp splicePipe, empty bool) {
	p.mu.Lock()
	p.out--
	if empty && !p.closed && len(p.free) < maxFreePipes {
		p.free = append(p.free, sp)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	sp.close()
}

// close closes the pipes kept, and those given back from now on.
func (p *pipePool) close() {
	p.mu.Lock()
	free := p.free
	p.free, p.closed = nil, true
	p.mu.Unlock()
	for _, sp := range free {
		sp.close()
	}
}

func (sp splicePipe) close() {
	unix.Close(sp.r)
	unix.Close(sp.w)
}

// copyTCP moves src to dst with splice(2) until src's EOF. It waits for
// src in the poller holding no pipe, takes one from pipes only once the
// socket has bytes for it, splices them in and on to dst, and gives the
// pipe back. A plain io.Copy would park inside splice holding a pipe: two
// descriptors and a pipe buffer per idle direction. Without a pipe (the
// process out of descriptors) a batch goes through a buffer instead.
//
// count gets the bytes as each batch is moved, so the metrics are live. The
// idle watch asks the kernel (TCP_INFO), so copyTCP has nothing to tell it.
func copyTCP(dst, src *net.TCPConn, _ *idleWatch, pipes *pipePool, count *atomic.Int64) (int64, error) {
	rc, err := src.SyscallConn()
	if err != nil {
		return copyPlain(dst, src, count)
	}
	wc, err := dst.SyscallConn()
	if err != nil {
		return copyPlain(dst, src, count)
	}
	var total int64
	for {
		var (
			sp         splicePipe
			have       bool
			in         int64
			serr, perr error
		)
		err := rc.Read(func(fd uintptr) bool {
			if !have {
				if sp, perr = pipes.get(); perr != nil {
					return true
				}
				have = true
			}
			for {
				in, serr = unix.Splice(int(fd), nil, sp.w, nil, maxSplice, unix.SPLICE_F_NONBLOCK)
				if serr != unix.EINTR {
					break
				}
			}
			if serr == unix.EAGAIN {
				// Nothing queued: wait in the poller without the pipe.
				pipes.put(sp, true)
				have = false
				return false
			}
			return true
		})
		switch {
		case err != nil:
			return total, err // closed by the other direction, mostly
		case perr != nil:
			n, eof, err := copyOnce(dst, src, count)
			total += n
			if err != nil || eof {
				return total, err
			}
			continue
		case serr != nil:
			pipes.put(sp, true) // a failed splice moved nothing into it
			if serr == unix.EINVAL || serr == unix.ENOSYS {
				// splice refused for these sockets: copy the rest.
				n, err := copyPlain(dst, src, count)
				return total + n, err
			}
			return total, serr
		case in == 0:
			pipes.put(sp, true)
			return total, nil // EOF
		}
		out, err := spliceOut(wc, sp.r, in)
		total += out
		count.Add(out)
		pipes.put(sp, out == in)
		if err != nil {
			return total, err
		}
	}
}

// spliceOut moves n bytes from the pipe's read end to the socket behind wc,
// waiting in the poller while the socket's send buffer is full.
func spliceOut(wc interface {
	Write(func(uintptr) bool) error
}, pipe int, n int64) (int64, error) {
	var moved int64
	var serr error
	err := wc.Write(func(fd uintptr) bool {
		for moved < n {
			m, err := unix.Splice(pipe, nil, int(fd), nil, int(n-moved), unix.SPLICE_F_NONBLOCK)
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return false // the send buffer is full: wait till it drains
			case err != nil:
				serr = err
				return true
			case m == 0:
				serr = io.ErrUnexpectedEOF // the pipe ran dry before n: cannot be
				return true
			}
			moved += m
		}
		return true
	})
	if err == nil {
		err = serr
	}
	return moved, err
}

// copyOnce moves one read's worth of src to dst through a buffer; eof
// reports src's end.
func copyOnce(dst, src *net.TCPConn, count *atomic.Int64) (n int64, eof bool, err error) {
	buf := make([]byte, 16<<10)
	k, err := src.Read(buf)
	if k > 0 {
		if _, werr := dst.Write(buf[:k]); werr != nil {
			return 0, false, werr
		}
		count.Add(int64(k))
	}
	if errors.Is(err, io.EOF) {
		return int64(k), true, nil
	}
	return int64(k), false, err
}

// copyPlain copies src to dst through a buffer until src's EOF.
func copyPlain(dst, src *net.TCPConn, count *atomic.Int64) (int64, error) {
	return io.Copy(dst, countingReader{src, count})
}

type countingReader struct {
	r     io.Reader
	count *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.count.Add(int64(n))
	return n, err
}
