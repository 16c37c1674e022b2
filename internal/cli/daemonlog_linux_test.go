package cli

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/portkit/portkit/internal/netnstest"
)

// daemonLog reads a daemon's output (a stock fwknopd, portkit knockd) line
// by line as it comes, so that a test can wait for what the daemon says.
type daemonLog struct {
	name  string
	lines chan string
	seen  []string
}

func readDaemonLog(name string, r io.Reader) *daemonLog {
	d := &daemonLog{name: name, lines: make(chan string, 100)}
	go func() {
		defer close(d.lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			d.lines <- sc.Text()
		}
	}()
	return d
}

// wait returns once a line contains what; the test fails if the daemon
// ends first, or 10 s pass.
func (d *daemonLog) wait(t *testing.T, what string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-d.lines:
			if !ok {
				t.Fatalf("%s ended before %q:\n%s", d.name, what, d)
			}
			d.seen = append(d.seen, l)
			if strings.Contains(l, what) {
				return
			}
		case <-timeout:
			t.Fatalf("%s did not say %q within 10s:\n%s", d.name, what, d)
		}
	}
}

// String is every line read so far.
func (d *daemonLog) String() string { return strings.Join(d.seen, "\n") }

// dialFrom makes one TCP connection to target from namespace ns and
// closes it: whether a port lets a connect through.
func dialFrom(t *testing.T, ns, target string) error {
	var err error
	netnstest.Run(t, ns, func() error {
		var c net.Conn
		c, err = net.DialTimeout("tcp", target, 500*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return nil
	})
	return err
}
