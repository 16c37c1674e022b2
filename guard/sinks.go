package guard

import (
	"encoding/json"
	"fmt"
	"io"
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
// at info.
type Syslog struct {
	conn net.Conn
	tag  string
	now  func() time.Time
}

// DialSyslog connects to the unix datagram socket at path.
func DialSyslog(path, tag string) (*Syslog, error) {
	c, err := net.Dial("unixgram", path)
	if err != nil {
		return nil, err
	}
	return &Syslog{conn: c, tag: fmt.Sprintf("%s[%d]", tag, os.Getpid()), now: time.Now}, nil
}

// Event writes one event as one datagram.
func (s *Syslog) Event(ev Event) error {
	pri := 3*8 + 6 // daemon.info
	if ev.Alert != nil {
		pri = 3*8 + 4 // daemon.warning
	}
	_, err := fmt.Fprintf(s.conn, "<%d>%s %s: %s", pri, s.now().Format(time.Stamp), s.tag, ev.SyslogLine())
	return err
}

// Close closes the socket.
func (s *Syslog) Close() error { return s.conn.Close() }
