package report

import (
	"io"
	"time"
)

// liveLatency is the longest a streamed result waits in the buffer while
// results keep coming.
const liveLatency = 100 * time.Millisecond

// liveSize is the buffer's size: it is written out when it holds this much.
const liveSize = 64 << 10

// liveWriter buffers a stream of results, flushing when the buffer fills
// or liveLatency has passed since the last flush: a full-range scan writes
// tens of thousands of lines, and a write call for each costs more than
// making them.
//
// A Write is accepted whole into the buffer or refused whole: once a
// flush fails, the error sticks, every later Write is refused with it, and
// what the failed flush did not write stays buffered (Unwritten), so a
// caller knows exactly which results reached the output and which did
// not. (bufio.Writer can accept a Write and report the failed flush in
// the same call, which leaves that Write's fate unknown.)
type liveWriter struct {
	w    io.Writer
	buf  []byte
	last time.Time
	err  error
}

func newLiveWriter(w io.Writer) *liveWriter {
	return &liveWriter{w: w, buf: make([]byte, 0, liveSize), last: time.Now()}
}

// Write buffers p. Its error is a failed earlier flush, p refused; a
// flush that fails in this call is reported by the next.
func (l *liveWriter) Write(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	l.buf = append(l.buf, p...)
	if len(l.buf) >= liveSize || time.Since(l.last) >= liveLatency {
		l.Flush()
	}
	return len(p), nil
}

// Flush writes out what is buffered.
func (l *liveWriter) Flush() error {
	if l.err != nil {
		return l.err
	}
	l.last = time.Now()
	if len(l.buf) == 0 {
		return nil
	}
	n, err := l.w.Write(l.buf)
	if err == nil && n < len(l.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		l.buf, l.err = l.buf[max(0, min(n, len(l.buf))):], err
		return err
	}
	l.buf = l.buf[:0]
	return nil
}

// Err is the failed flush's error, or nil.
func (l *liveWriter) Err() error { return l.err }

// Unwritten is what was accepted but not written, once a flush failed.
func (l *liveWriter) Unwritten() []byte {
	if l.err == nil {
		return nil
	}
	return l.buf
}
