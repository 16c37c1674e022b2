package guard

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"
)

// A Sink takes a Guard's events, in order.
type Sink interface {
	Event(Event) error
	// Flush writes what the sink holds back, if it holds anything: the
	// Guard calls it whenever no packet is waiting to be read, after
	// moving time on, and when it stops.
	Flush() error
}

// SinkFunc is a Sink that holds nothing back.
type SinkFunc func(Event) error

// Event calls f.
func (f SinkFunc) Event(ev Event) error { return f(ev) }

// Flush does nothing.
func (SinkFunc) Flush() error { return nil }

// JSONLines writes each event as one JSON line. Attempts are held back
// until Flush, an alert, or jsonLinesHeld bytes of them, and then written
// in one write with whatever follows: under a burst of refused
// connections a write per line is what delays the alert that follows
// them (measured: hundreds of microseconds before a scan's alert). An
// alert is written at once, with the attempts before it. Every write is
// of whole lines.
type JSONLines struct {
	w    io.Writer
	sync func() error
	buf  []byte
}

// jsonLinesHeld is how many bytes of attempts JSONLines holds back at
// most: some 200 lines.
const jsonLinesHeld = 32 << 10

// NewJSONLines returns a JSONLines writing to w. sync, when not nil,
// runs after each write that holds an alert (fsync of a file), so a
// detected scan survives a crash.
func NewJSONLines(w io.Writer, sync func() error) *JSONLines {
	return &JSONLines{w: w, sync: sync}
}

// Event takes one event.
func (j *JSONLines) Event(ev Event) error {
	n := len(j.buf)
	b, err := ev.AppendJSON(j.buf)
	if err != nil {
		j.buf = j.buf[:n]
		return err
	}
	j.buf = append(b, '\n')
	switch {
	case ev.Alert != nil:
		if err := j.Flush(); err != nil {
			return err
		}
		if j.sync != nil {
			return j.sync()
		}
	case len(j.buf) >= jsonLinesHeld:
		return j.Flush()
	}
	return nil
}

// Flush writes the lines held back.
func (j *JSONLines) Flush() error {
	if len(j.buf) == 0 {
		return nil
	}
	_, err := j.w.Write(j.buf)
	j.buf = j.buf[:0]
	return err
}

// Syslog writes events to a syslog socket (/dev/log) in scanlogd's
// one-line style, with the daemon facility: alerts at warning, attempts
// at info. A syslog daemon that stops reading must not stop detection:
// a line that cannot be written within WriteTimeout is dropped and
// counted, and a socket that went away (the daemon restarted) is dialled
// again.
type Syslog struct {
	path, tag string
	conn      net.Conn
	now       func() time.Time
	log       *slog.Logger

	// WriteTimeout bounds each write; zero means a second.
	WriteTimeout time.Duration

	dropped  uint64
	dropping bool
}

// DialSyslog connects to the unix datagram socket at path. log, if not
// nil, says when lines start being dropped and when they stop.
func DialSyslog(path, tag string, log *slog.Logger) (*Syslog, error) {
	c, err := net.Dial("unixgram", path)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Syslog{path: path, conn: c, tag: fmt.Sprintf("%s[%d]", tag, os.Getpid()), now: time.Now, log: log}, nil
}

// Event writes one event as one datagram. It never fails: what cannot be
// written is counted in Dropped.
func (s *Syslog) Event(ev Event) error {
	pri := 3*8 + 6 // daemon.info
	if ev.Alert != nil {
		pri = 3*8 + 4 // daemon.warning
	}
	msg := []byte(fmt.Sprintf("<%d>%s %s: %s", pri, s.now().Format(time.Stamp), s.tag, ev.SyslogLine()))
	err := s.write(msg)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		// The daemon may have restarted: its socket is a new one.
		if c, derr := net.Dial("unixgram", s.path); derr == nil {
			s.conn.Close()
			s.conn = c
			err = s.write(msg)
		}
	}
	switch {
	case err != nil:
		s.dropped++
		if !s.dropping {
			s.dropping = true
			s.log.Warn("syslog: dropping lines", "socket", s.path, "err", err.Error())
		}
	case s.dropping:
		s.dropping = false
		s.log.Info("syslog: writing again", "socket", s.path, "dropped", s.dropped)
	}
	return nil
}

func (s *Syslog) write(msg []byte) error {
	d := s.WriteTimeout
	if d <= 0 {
		d = time.Second
	}
	s.conn.SetWriteDeadline(time.Now().Add(d))
	_, err := s.conn.Write(msg)
	return err
}

// Flush does nothing: every line is written when it comes.
func (s *Syslog) Flush() error { return nil }

// Dropped is how many lines could not be written.
func (s *Syslog) Dropped() uint64 { return s.dropped }

// Close closes the socket.
func (s *Syslog) Close() error { return s.conn.Close() }
