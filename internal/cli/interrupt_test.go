package cli

import (
	"errors"
	"net"
	"os"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// cmdHold: `hold NAME` listens on 127.0.0.1:0 and holds every connection
// it accepts without a byte in answer, as a hung server does; the first
// accepted connection creates $WORK/.NAME.accepted, for await-conn.
func cmdHold(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: hold NAME")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	ts.Defer(func() { l.Close() })
	mark := ts.MkAbs("." + args[0] + ".accepted")
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
			os.WriteFile(mark, nil, 0o644)
		}
	}()
	setAddr(ts, args[0], l.Addr())
}

// cmdAwaitConn: `await-conn NAME` returns once the hold listener NAME has
// accepted a connection: the command under test is then past its start,
// with its signal handling in place, and in the middle of its work.
func cmdAwaitConn(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: await-conn NAME")
	}
	mark := ts.MkAbs("." + args[0] + ".accepted")
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(mark); !errors.Is(err, os.ErrNotExist) {
			ts.Check(err)
			return
		}
	}
	ts.Fatalf("%s accepted no connection in 30s", args[0])
}

// cmdBlackhole: `blackhole NAME` names a loopback port whose listener's
// accept queue is full, so the kernel drops every further SYN: a connect
// to it gets no answer at all, as to a filtered port.
func cmdBlackhole(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: blackhole NAME")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	ts.Defer(func() { l.Close() })
	ts.Check(shrinkBacklog(l.(*net.TCPListener)))
	// The one connection a backlog of 0 lets in, never accepted.
	c, err := net.DialTimeout("tcp", l.Addr().String(), 10*time.Second)
	ts.Check(err)
	ts.Defer(func() { c.Close() })
	setAddr(ts, args[0], l.Addr())
}
