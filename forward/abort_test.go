package forward

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// readToEnd reads c until it ends and returns how: nil for a clean EOF,
// else the read error.
func readToEnd(c net.Conn) error {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.ReadAll(c)
	return err
}

// abortConn closes c with an RST.
func abortConn(t *testing.T, c net.Conn) {
	t.Helper()
	if err := c.(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// TestTargetResetReachesClient: a target that resets mid-stream must not
// look, to the client, like a download that ended: the client reads
// ECONNRESET, not EOF.
func TestTargetResetReachesClient(t *testing.T) {
	target := serveOnce(t, func(c *net.TCPConn) {
		io.ReadFull(c, make([]byte, 3)) // the client's request: the relay is up
		io.WriteString(c, "partial")
		abortConn(t, c)
	})
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Listen: "127.0.0.1:0", Targets: []string{target}})
	c := dial(t, "tcp", addr)
	io.WriteString(c, "get")
	if err := readToEnd(c); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client read after the target's reset: %v, want ECONNRESET", err)
	}
	if rec := fx.log.waitLines(t, "connection end", 1)[0]; rec["end"] != "error" {
		t.Fatalf("log: %v", rec)
	}
}

// refusedWithReset checks that a client the forwarder turns away (denied,
// over a limit, no target) is reset, at once or at its first read, and
// gets no bytes: a refusal must not look like an empty, complete reply.
func refusedWithReset(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("dial: %v, want success or ECONNRESET", err)
		}
		return
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if len(b) != 0 || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("refused client read %q, %v; want nothing and ECONNRESET", b, err)
	}
}

// TestTargetFINReachesClientAsEOF: the other side of the same coin: a
// target that closes cleanly gives the client a clean EOF.
func TestTargetFINReachesClientAsEOF(t *testing.T) {
	target := serveOnce(t, func(c *net.TCPConn) { io.WriteString(c, "whole") })
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Listen: "127.0.0.1:0", Targets: []string{target}})
	c := dial(t, "tcp", addr)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "whole" {
		t.Fatalf("read %q, %v; want the whole reply and EOF", b, err)
	}
}

// TestClientResetReachesTarget: a client that resets mid-upload must not
// look, to the target, like an upload that ended.
func TestClientResetReachesTarget(t *testing.T) {
	got := make(chan error, 1)
	target := serveOnce(t, func(c *net.TCPConn) { got <- readToEnd(c) })
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Listen: "127.0.0.1:0", Targets: []string{target}})
	c := dial(t, "tcp", addr)
	if _, err := io.WriteString(c, "half an upload"); err != nil {
		t.Fatal(err)
	}
	abortConn(t, c)
	if err := <-got; !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("target read after the client's reset: %v, want ECONNRESET", err)
	}
}

// TestDrainAbortResets: connections a drain cuts when it runs out of time
// are reset at both ends, not closed as if they had finished.
func TestDrainAbortResets(t *testing.T) {
	got := make(chan error, 1)
	target := serveOnce(t, func(c *net.TCPConn) {
		io.WriteString(c, "hello")
		got <- readToEnd(c)
	})
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Listen: "127.0.0.1:0", Targets: []string{target}})
	c := dial(t, "tcp", addr)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 5)); err != nil { // the relay runs
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no time to drain: cut at once
	fx.fw.Shutdown(ctx)
	if err := readToEnd(c); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("client read after the drain ran out: %v, want ECONNRESET", err)
	}
	if err := <-got; !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("target read after the drain ran out: %v, want ECONNRESET", err)
	}
	if rec := fx.log.waitLines(t, "connection end", 1)[0]; rec["end"] != "shutdown" {
		t.Fatalf("log: %v", rec)
	}
}

// TestTargetResetMidSplice: the same with the relay busy splicing a large
// transfer when the reset comes.
func TestTargetResetMidSplice(t *testing.T) {
	chunk := make([]byte, 64<<10)
	target := serveOnce(t, func(c *net.TCPConn) {
		io.ReadFull(c, make([]byte, 3))
		for range 64 { // 4 MB: more than the socket buffers hold
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
		abortConn(t, c)
	})
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Listen: "127.0.0.1:0", Targets: []string{target}})
	c := dial(t, "tcp", addr)
	io.WriteString(c, "get")
	if err := readToEnd(c); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client read after the target's reset mid-transfer: %v, want ECONNRESET", err)
	}
}
