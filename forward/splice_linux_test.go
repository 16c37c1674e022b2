package forward

import (
	"context"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pipeFDs counts this process's open pipe descriptors.
func pipeFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(target, "pipe:") {
			n++
		}
	}
	return n
}

// bufferedEcho is an echo server that copies through a buffer, not splice,
// so that it holds no pipe of its own.
func bufferedEcho(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, struct{ io.Reader }{c})
			}()
		}
	}()
	return l.Addr().String()
}

// TestIdleConnectionsHoldNoPipes: connections that have moved bytes both
// ways and then gone quiet hold no splice pipe; the pipes the relays shared
// are a bounded few, whatever the number of connections, and Shutdown
// closes them.
func TestIdleConnectionsHoldNoPipes(t *testing.T) {
	echo := bufferedEcho(t)
	before := pipeFDs(t)
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Listen: "127.0.0.1:0", Targets: []string{echo}})
	const conns = 3 * maxFreePipes
	for range conns {
		c := dial(t, "tcp", addr)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "ping"); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
			t.Fatal(err)
		}
	}
	// The last relay gives its pipe back just after the client has read.
	var out, free int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		fx.fw.pipes.mu.Lock()
		out, free = fx.fw.pipes.out, len(fx.fw.pipes.free)
		fx.fw.pipes.mu.Unlock()
		if out == 0 || time.Now().After(deadline) {
			break
		}
	}
	if out != 0 {
		t.Errorf("%d pipes held by %d idle connections, want 0", out, conns)
	}
	// Other tests' pipes from Go's own splice pool may close meanwhile (at
	// a garbage collection), which can only lower the count.
	if got := pipeFDs(t) - before; got > 2*maxFreePipes {
		t.Errorf("%d pipe descriptors more than before with %d idle connections (%d pipes kept free), want at most %d",
			got, conns, free, 2*maxFreePipes)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	fx.fw.Shutdown(ctx)
	if got := pipeFDs(t) - before; got > 0 {
		t.Errorf("%d pipe descriptors more than before after Shutdown, want none", got)
	}
}

// TestSpliceWithoutPipes: a relay that cannot make a splice pipe (the
// process is out of descriptors) moves the bytes through a buffer instead
// of cutting the connection.
func TestSpliceWithoutPipes(t *testing.T) {
	echo, accepted := echoServer(t)
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Listen: "127.0.0.1:0", Targets: []string{echo}})
	client := newRawClient(t)
	f := newFDFiller(t)
	// Room for the accepted socket, the dialled one and the echo server's
	// accepted one, none for a pipe (two descriptors).
	f.fill()
	f.release(3)
	client.connect(t, addr)
	for deadline := time.Now().Add(10 * time.Second); accepted() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the target never accepted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	msg := strings.Repeat("without a pipe ", 10000) // several batches each way
	go func() {
		syscall.Write(client.fd, []byte(msg))
		syscall.Shutdown(client.fd, syscall.SHUT_WR)
	}()
	got, err := client.readAll()
	if err != nil || got != msg {
		t.Fatalf("read %d bytes of %d, %v", len(got), len(msg), err)
	}
	f.release(len(f.fds))
	rec := fx.log.waitLines(t, "connection end", 1)[0]
	if rec["end"] != "closed" || rec["bytes_to_client"] != float64(len(msg)) || rec["bytes_from_client"] != float64(len(msg)) {
		t.Fatalf("log: %v", rec)
	}
}

// TestKeepAliveBothLegs: both legs of a forwarded connection send TCP
// keep-alives with Go's settings (15 s idle, 15 s interval, 9 probes); the
// accepted one has them from the listener.
func TestKeepAliveBothLegs(t *testing.T) {
	echo := bufferedEcho(t)
	fx := newFixture(t, Options{})
	listen := "127.0.0.1:0"
	addr := fx.start(Rule{Listen: listen, Targets: []string{echo}})
	c := dial(t, "tcp", addr)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "x")
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	fx.fw.mu.Lock()
	ru := fx.fw.runners[listenKey{TCP, listen}].(*tcpRunner)
	fx.fw.mu.Unlock()
	ru.mu.Lock()
	var legs []*net.TCPConn
	for tc := range ru.conns {
		tc.mu.Lock()
		legs = append(legs, tc.client, tc.target)
		tc.mu.Unlock()
	}
	ru.mu.Unlock()
	if len(legs) != 2 {
		t.Fatalf("%d sockets in the forwarder, want 2", len(legs))
	}
	for i, leg := range legs {
		rc, err := leg.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		rc.Control(func(fd uintptr) {
			for _, o := range []struct {
				name       string
				level, opt int
				want       int
			}{
				{"SO_KEEPALIVE", syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
				{"TCP_KEEPIDLE", syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, 15},
				{"TCP_KEEPINTVL", syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, 15},
				{"TCP_KEEPCNT", syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, 9},
			} {
				if got, err := syscall.GetsockoptInt(int(fd), o.level, o.opt); err != nil || got != o.want {
					t.Errorf("%s leg: %s = %d, %v; want %d", [...]string{"client", "target"}[i], o.name, got, err, o.want)
				}
			}
		})
	}
}
