package forward

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fdFiller fills the process's descriptor table under a lowered
// RLIMIT_NOFILE, restored (and the descriptors closed) when the test ends.
type fdFiller struct {
	t   *testing.T
	fds []int
}

func newFDFiller(t *testing.T) *fdFiller {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	open, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	// Room above what is open now for the filler to take; the limit must
	// still be above the highest descriptor number in use, or nothing new
	// could be opened even once the filler lets go.
	highest := 0
	for _, e := range open {
		if n, err := strconv.Atoi(e.Name()); err == nil && n > highest {
			highest = n
		}
	}
	low := old
	low.Cur = uint64(highest + 64)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	f := &fdFiller{t: t}
	t.Cleanup(func() {
		f.release(len(f.fds))
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
			t.Errorf("restoring RLIMIT_NOFILE: %v", err)
		}
	})
	return f
}

// fill opens descriptors until the process has none left.
func (f *fdFiller) fill() {
	f.t.Helper()
	for range 1 << 16 {
		fd, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == syscall.EMFILE {
			return
		}
		if err != nil {
			f.t.Fatal(err)
		}
		f.fds = append(f.fds, fd)
	}
	f.t.Fatal("the descriptor table never filled")
}

// release frees n descriptors.
func (f *fdFiller) release(n int) {
	for range n {
		syscall.Close(f.fds[len(f.fds)-1])
		f.fds = f.fds[:len(f.fds)-1]
	}
}

// rawClient is a TCP socket made before the descriptor table fills, so it
// can connect after: the test's client must not be the one out of
// descriptors.
type rawClient struct{ fd int }

func newRawClient(t *testing.T) rawClient {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	tv := syscall.Timeval{Sec: 10}
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	return rawClient{fd}
}

func (c rawClient) connect(t *testing.T, addr string) {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	if host != "127.0.0.1" {
		t.Fatalf("raw client: %s is not 127.0.0.1", addr)
	}
	p, _ := strconv.Atoi(port)
	if err := syscall.Connect(c.fd, &syscall.SockaddrInet4{Port: p, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
}

// readAll reads until EOF or an error and returns what came and how it
// ended.
func (c rawClient) readAll() (string, error) {
	var b []byte
	buf := make([]byte, 512)
	for {
		n, err := syscall.Read(c.fd, buf)
		if err != nil {
			return string(b), err
		}
		if n == 0 {
			return string(b), nil
		}
		b = append(b, buf[:n]...)
	}
}

// TestOutOfDescriptors: the forwarder's own EMFILE, on a dial and then on
// accepts, is said once for the episode, counted as such, and never marks
// the target down; once descriptors are free the rule works again.
func TestOutOfDescriptors(t *testing.T) {
	echo, _ := echoServer(t)
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Name: "fd", Listen: "127.0.0.1:0", Targets: []string{echo}})
	if got := roundTrip(t, addr, "warm"); got != "warm" {
		t.Fatalf("before: %q", got)
	}
	// Its line comes once the forwarder and the echo server have closed
	// their sockets: none is freed behind the filler's back.
	fx.log.waitLines(t, "connection end", 1)
	dialer, accepter := newRawClient(t), newRawClient(t)
	f := newFDFiller(t)

	// One descriptor left: the forwarder accepts with it, and its dial to
	// the target fails with EMFILE.
	f.fill()
	f.release(1)
	dialer.connect(t, addr)
	if got, err := dialer.readAll(); got != "" || err != syscall.ECONNRESET {
		t.Fatalf("client whose dial failed read %q, %v; want a reset", got, err)
	}
	rec := fx.log.waitLines(t, "connection end", 2)[1]
	if rec["end"] != "dial failed" || !strings.Contains(rec["err"].(string), "too many open files") {
		t.Fatalf("log: %v", rec)
	}

	// None left: accepts fail, the forwarder backs off and retries.
	f.fill()
	accepter.connect(t, addr) // the kernel completes the handshake; accept cannot
	deadline := time.Now().Add(10 * time.Second)
	for fx.m.resourceErrors[opAccept].Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d failed accepts", fx.m.resourceErrors[opAccept].Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.release(len(f.fds))
	syscall.Write(accepter.fd, []byte("late"))
	syscall.Shutdown(accepter.fd, syscall.SHUT_WR)
	if got, err := accepter.readAll(); got != "late" || err != nil {
		t.Fatalf("client accepted after the episode read %q, %v", got, err)
	}

	if recs := fx.log.lines("out of file descriptors: accepts wait and dials fail until some close; targets are not marked down for it"); len(recs) != 1 {
		t.Errorf("%d out-of-descriptors lines for one episode of %d failed accepts and %d failed dials, want 1",
			len(recs), fx.m.resourceErrors[opAccept].Load(), fx.m.resourceErrors[opDial].Load())
	}
	if recs := fx.log.lines("target down"); len(recs) != 0 {
		t.Errorf("target marked down for the forwarder's own EMFILE: %v", recs)
	}
	var text bytes.Buffer
	fx.m.WriteText(&text)
	for _, want := range []string{
		`portkit_forward_target_up{rule="fd",target="` + echo + `"} 1`,
		`portkit_forward_resource_errors_total{op="dial"} 1`,
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("metrics lack %s:\n%s", want, text.String())
		}
	}
	if strings.Contains(text.String(), "portkit_forward_dial_errors_total{") {
		t.Errorf("a dial error counted against the target:\n%s", text.String())
	}
}
