package guard

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"
)

// JSONLines returns a sink that writes each event as one JSON line, in
// one write. sync, when not nil, runs after each alert (fsync of a file),
// so a detected scan survives a crash.
func JSONLines(w io.Writer, sync func() error) func(Event) error {
	return func(ev Event) error {
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		if _, err := w.Write(append(b, '\n')); err != nil {
			return err
		}
		if sync != nil && ev.Alert != nil {
			return sync()
		}
		return nil
	}
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

// Dropped is how many lines could not be written.
func (s *Syslog) Dropped() uint64 { return s.dropped }

// Close closes the socket.
func (s *Syslog) Close() error { return s.conn.Close() }
