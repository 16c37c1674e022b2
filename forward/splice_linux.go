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

// maxFreePipes bounds the pipes kept open between uses (16 descriptors). A
// pipe is held for two splice calls, so few are out at once however many
// connections there are; the rest are closed as they come back.
const maxFreePipes = 8

// maxSplice is the most one splice(2) call is asked to move, and the size
// of the pipes, as Go's own splice has them.
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
	// As Go's own splice: a pipe as large as one splice call asks for, so
	// a bulk transfer moves up to 1 MiB per pair of calls, not 64 KiB. The
	// pages are taken as bytes pass, not now; a smaller pipe (the
	// system's limit refused) only costs more calls.
	unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, maxSplice)
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
	// The poller's callbacks are made once per direction, not per batch.
	d := &spliceDir{pipes: pipes}
	d.spliceIn, d.spliceOut = d.in, d.out
	var total int64
	for {
		d.have, d.n, d.moved, d.err, d.perr = false, 0, 0, nil, nil
		err := rc.Read(d.spliceIn)
		switch {
		case err != nil:
			return total, err // closed by the other direction, mostly
		case d.perr != nil:
			n, eof, err := copyOnce(dst, src, count)
			total += n
			if err != nil || eof {
				return total, err
			}
			continue
		case d.err != nil:
			pipes.put(d.sp, true) // a failed splice moved nothing into it
			if d.err == unix.EINVAL || d.err == unix.ENOSYS {
				// splice refused for these sockets: copy the rest.
				n, err := copyPlain(dst, src, count)
				return total + n, err
			}
			return total, d.err
		case d.n == 0:
			pipes.put(d.sp, true)
			return total, nil // EOF
		}
		err = wc.Write(d.spliceOut)
		if err == nil {
			err = d.err
		}
		total += d.moved
		count.Add(d.moved)
		pipes.put(d.sp, d.moved == d.n)
		if err != nil {
			return total, err
		}
	}
}

// spliceDir is one direction's state across the poller's callbacks.
type spliceDir struct {
	pipes               *pipePool
	spliceIn, spliceOut func(fd uintptr) bool // d.in, d.out

	sp       splicePipe
	have     bool  // sp is taken from pipes
	n, moved int64 // spliced into the pipe; out of it
	err      error // of splice
	perr     error // no pipe to be had
}

// in splices what the socket fd has queued into a pipe; it returns false,
// holding no pipe, to wait in the poller while nothing is queued.
func (d *spliceDir) in(fd uintptr) bool {
	if !d.have {
		if d.sp, d.perr = d.pipes.get(); d.perr != nil {
			return true
		}
		d.have = true
	}
	for {
		d.n, d.err = unix.Splice(int(fd), nil, d.sp.w, nil, maxSplice, unix.SPLICE_F_NONBLOCK)
		if d.err != unix.EINTR {
			break
		}
	}
	if d.err == unix.EAGAIN {
		d.pipes.put(d.sp, true)
		d.have, d.err = false, nil
		return false
	}
	return true
}

// out splices the pipe's n bytes to the socket fd; it returns false to wait
// in the poller while the socket's send buffer is full.
func (d *spliceDir) out(fd uintptr) bool {
	for d.moved < d.n {
		m, err := unix.Splice(d.sp.r, nil, int(fd), nil, int(d.n-d.moved), unix.SPLICE_F_NONBLOCK)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return false
		case err != nil:
			d.err = err
			return true
		case m == 0:
			d.err = io.ErrUnexpectedEOF // the pipe ran dry before n: cannot be
			return true
		}
		d.moved += m
	}
	return true
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
