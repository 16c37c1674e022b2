package cli

import (
	"net"
	"strconv"

	"github.com/rogpeppe/go-internal/testscript"
)

// cmdServeBanner: `serve-banner NAME TEXT` listens on 127.0.0.1:0 and
// sends TEXT (Go-quoted escapes read: \r\n) to every connection, then
// reads until the client closes.
func cmdServeBanner(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: serve-banner NAME TEXT")
	}
	text, err := strconv.Unquote(`"` + args[1] + `"`)
	ts.Check(err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	ts.Defer(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write([]byte(text))
				buf := make([]byte, 512)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	setAddr(ts, args[0], l.Addr())
}
