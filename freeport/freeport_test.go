package freeport_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/portkit/portkit/freeport"
)

func hasIPv6(t *testing.T) bool {
	t.Helper()
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// holdTCP holds a TCP port on 127.0.0.1 for the length of the test.
func holdTCP(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// around is a small range containing p, clipped to the valid ports.
func around(p uint16, d uint16) freeport.Range {
	lo, hi := max(int(p)-int(d), 1), min(int(p)+int(d), 65535)
	return freeport.Range{Lo: uint16(lo), Hi: uint16(hi)}
}

func TestFindBindsEverywhere(t *testing.T) {
	ctx := t.Context()
	ports, err := freeport.Find(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint16]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Errorf("port %d returned twice in %v", p, ports)
		}
		seen[p] = true
		if p < 1024 {
			t.Errorf("port %d is below the default range", p)
		}
		addrs := []string{"tcp4 0.0.0.0", "tcp4 127.0.0.1"}
		if hasIPv6(t) {
			addrs = append(addrs, "tcp6 [::]", "tcp6 [::1]", "tcp [::]") // the last is dual-stack
		} else {
			t.Log("no IPv6 on this host: binds on [::] not checked")
		}
		for _, a := range addrs {
			network, host, _ := strings.Cut(a, " ")
			l, err := net.Listen(network, fmt.Sprintf("%s:%d", host, p))
			if err != nil {
				t.Errorf("found port %d does not bind on %s: %v", p, a, err)
				continue
			}
			l.Close()
		}
	}
}

func TestHeldPortNeverReturned(t *testing.T) {
	ctx := t.Context()
	held := holdTCP(t)
	f := freeport.Finder{Range: around(held, 3)}
	for range 40 {
		ports, err := f.Find(ctx, 1)
		if errors.Is(err, freeport.ErrNoFreePort) {
			continue // the neighbours happen to be taken too
		}
		if err != nil {
			t.Fatal(err)
		}
		if ports[0] == held {
			t.Fatalf("held port %d returned", held)
		}
	}
}

func TestHeldUDPPortNeverReturned(t *testing.T) {
	ctx := t.Context()
	c, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	held := uint16(c.LocalAddr().(*net.UDPAddr).Port)

	// Free for TCP perhaps, but not for UDP: asking for both must skip it.
	f := freeport.Finder{Protocols: freeport.TCP | freeport.UDP, Range: freeport.Range{Lo: held, Hi: held}}
	if ports, err := f.Find(ctx, 1); !errors.Is(err, freeport.ErrNoFreePort) {
		t.Fatalf("Find with UDP port %d held: %v, %v; want ErrNoFreePort", held, ports, err)
	}
}

func TestExhausted(t *testing.T) {
	held := holdTCP(t)
	r := freeport.Range{Lo: held, Hi: held}
	_, err := (&freeport.Finder{Range: r}).Find(t.Context(), 1)
	if !errors.Is(err, freeport.ErrNoFreePort) {
		t.Fatalf("err = %v, want ErrNoFreePort", err)
	}
	var fe *freeport.Error
	if !errors.As(err, &fe) || fe.Range != r || fe.Op != "find" {
		t.Errorf("err = %#v, want an *Error naming find and %v", err, r)
	}
	if want := fmt.Sprintf("no free port in range %d-%d", held, held); !strings.Contains(err.Error(), want) {
		t.Errorf("message %q does not say %q", err, want)
	}
	var bi interface{ BadInput() bool }
	if errors.As(err, &bi) && bi.BadInput() {
		t.Error("exhaustion reported as bad input")
	}

	if _, err := (&freeport.Finder{Range: r}).ListenTCP(t.Context()); !errors.Is(err, freeport.ErrNoFreePort) {
		t.Errorf("ListenTCP: %v, want ErrNoFreePort", err)
	}
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		name string
		f    freeport.Finder
		n    int
	}{
		{"inverted", freeport.Finder{Range: freeport.Range{Lo: 2000, Hi: 1000}}, 1},
		{"port zero", freeport.Finder{Range: freeport.Range{Lo: 0, Hi: 1000}}, 1},
		{"none asked", freeport.Finder{}, 0},
		{"more than the range", freeport.Finder{Range: freeport.Range{Lo: 2000, Hi: 2002}}, 4},
		{"invalid address", freeport.Finder{Addresses: []netip.Addr{{}}}, 1},
	}
	for _, tt := range tests {
		_, err := tt.f.Find(t.Context(), tt.n)
		var bi interface{ BadInput() bool }
		if !errors.As(err, &bi) || !bi.BadInput() {
			t.Errorf("%s: err = %v, want bad input", tt.name, err)
		}
		if errors.Is(err, freeport.ErrNoFreePort) {
			t.Errorf("%s: bad input reported as exhaustion", tt.name)
		}
	}
}

// isFree asks the package itself about a single port; it is only used to
// check Near's choice against its neighbours.
func isFree(t *testing.T, p uint16) bool {
	_, err := (&freeport.Finder{Range: freeport.Range{Lo: p, Hi: p}}).Find(t.Context(), 1)
	if err != nil && !errors.Is(err, freeport.ErrNoFreePort) {
		t.Fatal(err)
	}
	return err == nil
}

func TestNear(t *testing.T) {
	held := holdTCP(t)
	f := freeport.Finder{Range: around(held, 20), Near: held}
	ports, err := f.Find(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	got := ports[0]
	dist := func(p uint16) int { return max(int(p)-int(held), int(held)-int(p)) }
	if got == held {
		t.Fatalf("Near returned the held port %d", held)
	}
	for p := f.Range.Lo; p <= f.Range.Hi; p++ {
		if p != got && dist(p) < dist(got) && isFree(t, p) {
			t.Errorf("Near %d gave %d, but %d is nearer and free", held, got, p)
		}
	}
}

func TestListenN(t *testing.T) {
	ls, err := freeport.ListenN(t.Context(), 5)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, l := range ls {
		defer l.Close()
		a := l.Addr().(*net.TCPAddr)
		if !a.IP.Equal(net.IPv4(127, 0, 0, 1)) {
			t.Errorf("listener on %v, want 127.0.0.1", a)
		}
		if seen[a.Port] {
			t.Errorf("port %d held twice", a.Port)
		}
		seen[a.Port] = true

		// Bound and listening: a connection goes through.
		c, err := net.DialTimeout("tcp", a.String(), 5*time.Second)
		if err != nil {
			t.Errorf("dial %v: %v", a, err)
			continue
		}
		c.Close()
	}
	if len(ls) != 5 {
		t.Errorf("%d listeners, want 5", len(ls))
	}
}

func TestListenTCPInRange(t *testing.T) {
	held := holdTCP(t)
	f := freeport.Finder{Range: around(held, 10)}
	l, err := f.ListenTCP(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p := uint16(l.Addr().(*net.TCPAddr).Port)
	if p == held || p < f.Range.Lo || p > f.Range.Hi {
		t.Errorf("listener on port %d, want one in %v other than %d", p, f.Range, held)
	}
}

func TestListenUDP(t *testing.T) {
	c, err := freeport.ListenUDP(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := c.LocalAddr().(*net.UDPAddr)
	if a.Port < 1024 || !a.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("UDP socket on %v", a)
	}
	// The socket is ours: a second bind on the same address fails.
	if c2, err := net.ListenPacket("udp4", a.String()); err == nil {
		c2.Close()
		t.Errorf("%v bound twice", a)
	}
}

func TestListenAddrIPv6(t *testing.T) {
	if !hasIPv6(t) {
		t.Skip("no IPv6 on this host")
	}
	l, err := (&freeport.Finder{ListenAddr: netip.IPv6Loopback()}).ListenTCP(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if a := l.Addr().(*net.TCPAddr); !a.IP.Equal(net.IPv6loopback) {
		t.Errorf("listener on %v, want [::1]", a)
	}
}

func TestCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := freeport.Find(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Find with a canceled context: %v", err)
	}
}

// TestTimeWaitNotFree: a port whose last connection is in TIME_WAIT binds
// only with SO_REUSEADDR, which most programs outside Go do not set: it is
// not called free.
func TestTimeWaitNotFree(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no SO_REUSEADDR in the Unix sense")
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	c, err := net.Dial("tcp4", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s.Close() // the server closes first: its side, on port, goes to TIME_WAIT
	c.Read(make([]byte, 1))
	c.Close()
	l.Close()
	f := freeport.Finder{Range: freeport.Range{Lo: port, Hi: port}, Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}
	if ports, err := f.Find(t.Context(), 1); !errors.Is(err, freeport.ErrNoFreePort) {
		t.Fatalf("Find on port %d in TIME_WAIT: %v, %v; want ErrNoFreePort", port, ports, err)
	}
}
