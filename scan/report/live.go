package report

import (
	"bufio"
	"io"
	"time"
)

// liveLatency is the longest a streamed result waits in the buffer while
// results keep coming.
const liveLatency = 100 * time.Millisecond

// liveWriter buffers a stream of results, flushing when the buffer fills
// or liveLatency has passed since the last flush: a full-range scan writes
// tens of thousands of lines, and a write call for each costs more than
// making them.
type liveWriter struct {
	b    *bufio.Writer
	last time.Time
}

func newLiveWriter(w io.Writer) *liveWriter {
	return &liveWriter{b: bufio.NewWriterSize(w, 64<<10), last: time.Now()}
}

func (l *liveWriter) Write(p []byte) (int, error) {
	n, err := l.b.Write(p)
	if err == nil && time.Since(l.last) >= liveLatency {
		err = l.Flush()
	}
	return n, err
}

// Flush writes out what is buffered.
func (l *liveWriter) Flush() error {
	l.last = time.Now()
	return l.b.Flush()
}
