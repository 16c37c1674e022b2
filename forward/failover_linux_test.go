package forward

import (
	"bytes"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// silentTarget is a loopback address whose SYNs go unanswered, as a
// firewalled host's would: a listener with a backlog of 0 that never
// accepts, its queue filled by one connection, so Linux drops further SYNs.
func silentTarget(t *testing.T) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(sa.(*unix.SockaddrInet4).Port)
	for range 2 { // the first fills the queue; the second proves it is full
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	if c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond); err == nil {
		c.Close()
		t.Skip("this kernel answers SYNs on a full accept queue")
	}
	return addr
}

// TestFailoverSilentTarget: a first target that never answers does not
// hold the client for connect_timeout: the next is tried beside it after a
// moment, and once the silent one's own dial times out it is marked down.
func TestFailoverSilentTarget(t *testing.T) {
	echo, _ := echoServer(t)
	silent := silentTarget(t)
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Name: "fo", Listen: "127.0.0.1:0", Targets: []string{silent, echo}, ConnectTimeout: 3 * time.Second})
	if got := roundTrip(t, addr, "x"); got != "x" {
		t.Fatalf("got %q", got)
	}
	rec := fx.log.waitLines(t, "connection end", 1)[0]
	if rec["target"] != echo {
		t.Fatalf("log: %v", rec)
	}
	// Served before the silent target's own dial gave up on it.
	if n := len(fx.log.lines("target down")); n != 0 {
		t.Fatal("the client was held until the silent target timed out")
	}
	down := fx.log.waitLines(t, "target down", 1)[0]
	if down["target"] != silent || !strings.Contains(down["err"].(string), "timeout") {
		t.Fatalf("log: %v", down)
	}
	var text bytes.Buffer
	fx.m.WriteText(&text)
	if !strings.Contains(text.String(), `portkit_forward_target_up{rule="fo",target="`+silent+`"} 0`) {
		t.Fatalf("metrics:\n%s", text.String())
	}
}
