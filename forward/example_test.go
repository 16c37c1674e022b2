package forward_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/portkit/portkit/forward"
)

// A forwarder started and shut down in code: a rule that relays a free
// loopback port to an echo server, one connection through it, and a
// shutdown that lets connections drain for up to a second.
func ExampleForwarder() {
	// The target: an echo server.
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()

	f := forward.New(forward.Options{})
	rule := forward.Rule{Listen: "127.0.0.1:0", Targets: []string{echo.Addr().String()}}
	if err := f.Reload([]forward.Rule{rule}); err != nil {
		fmt.Println(err)
		return
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		f.Shutdown(ctx)
	}()

	// Port 0 picked a free port: Addr says which.
	c, err := net.Dial("tcp", f.Addr(forward.TCP, rule.Listen).String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	fmt.Fprint(c, "hello through portkit")
	c.(*net.TCPConn).CloseWrite() // a FIN passes on as a FIN
	reply, err := io.ReadAll(c)
	fmt.Printf("%s %v\n", reply, err)
	// Output: hello through portkit <nil>
}
