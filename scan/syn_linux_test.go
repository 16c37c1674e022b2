package scan

import (
	"errors"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/portkit/portkit/scan/internal/rawnet"
	"golang.org/x/sys/unix"
)

// The answers to a SYN tell its attempt, up to synAttempts−1; anything
// else acknowledged is not an answer to this scan.
func TestSYNAttempt(t *testing.T) {
	key := [16]byte{1, 2, 3, 4}
	scanner := netip.AddrPortFrom(netip.MustParseAddr("198.18.0.1"), 40000)
	target := netip.AddrPortFrom(netip.MustParseAddr("198.18.0.2"), 443)
	cookie := rawnet.Cookie(key, scanner.Addr(), target.Addr(), scanner.Port(), target.Port())
	synAck := func(ack uint32) *rawnet.Reply {
		return &rawnet.Reply{
			Src: target.Addr(), Dst: scanner.Addr(), Proto: rawnet.ProtoTCP,
			SrcPort: target.Port(), DstPort: scanner.Port(),
			Ack: ack, Flags: rawnet.FlagSYN | rawnet.FlagACK,
		}
	}
	unreach := func(seq uint32) *rawnet.Reply {
		return &rawnet.Reply{
			Src: netip.MustParseAddr("198.18.0.254"), Dst: scanner.Addr(), Proto: rawnet.ProtoICMP,
			ICMPType: 3, ICMPCode: 1,
			Orig: rawnet.Original{Proto: rawnet.ProtoTCP, Src: scanner.Addr(), Dst: target.Addr(),
				SrcPort: scanner.Port(), DstPort: target.Port(), Seq: seq},
		}
	}
	for _, tc := range []struct {
		name    string
		r       *rawnet.Reply
		attempt int
		ok      bool
	}{
		{"first", synAck(cookie + synAttemptCode(1) + 1), 1, true},
		{"third", synAck(cookie + synAttemptCode(3) + 1), 3, true},
		{"last told", synAck(cookie + synAttemptCode(synAttempts-1) + 1), synAttempts - 1, true},
		{"past the last", synAck(cookie + synAttemptCode(synAttempts) + 1), 0, true},
		{"far past", synAck(cookie + synAttemptCode(1000) + 1), 0, true},
		{"zero is one", synAck(cookie + synAttemptCode(0) + 1), 1, true},
		{"unacknowledged cookie", synAck(cookie), 0, false},
		{"beyond the codes", synAck(cookie + synAttempts + 1), 0, false},
		{"another key", synAck(rawnet.Cookie([16]byte{9}, scanner.Addr(), target.Addr(), scanner.Port(), target.Port()) + 1), 0, false},
		{"no ACK flag", func() *rawnet.Reply { r := synAck(cookie + 1); r.Flags = rawnet.FlagRST; return r }(), 0, false},
		{"ICMP quoting the SYN", unreach(cookie + synAttemptCode(2)), 2, true},
		{"ICMP quoting another", unreach(cookie + 99), 0, false},
		{"UDP", &rawnet.Reply{Proto: rawnet.ProtoUDP}, 0, false},
	} {
		attempt, ok := synAttempt(key, tc.r)
		if attempt != tc.attempt || ok != tc.ok {
			t.Errorf("%s: attempt %d, %v; want %d, %v", tc.name, attempt, ok, tc.attempt, tc.ok)
		}
	}
}

// Without CAP_NET_RAW, the SYN engine says what it needs and what to use
// instead, and the UDP engine falls back to sockets. As root, the test
// drops the capability on a thread of its own, which then ends.
func TestRawEnginesUnprivileged(t *testing.T) {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if os.Geteuid() == 0 {
			if err := dropNetRaw(); err != nil {
				errc <- err
				return
			}
		}
		_, err := NewSYN(SYNOptions{})
		var perm *PrivilegeError
		switch {
		case !errors.As(err, &perm) || !errors.Is(err, os.ErrPermission):
			t.Errorf("NewSYN without CAP_NET_RAW: %v, want a *PrivilegeError", err)
		case !strings.HasPrefix(err.Error(), "SYN scan needs root or CAP_NET_RAW; use the connect scan"):
			t.Errorf("error %q", err)
		}
		if _, err := NewUDP(UDPOptions{Mode: UDPRaw}); !errors.As(err, &perm) {
			t.Errorf("NewUDP raw without CAP_NET_RAW: %v, want a *PrivilegeError", err)
		}
		e, err := NewUDP(UDPOptions{})
		if _, ok := e.(*udpSockets); !ok || err != nil {
			t.Errorf("NewUDP without CAP_NET_RAW: %T, %v; want the socket engine", e, err)
		} else {
			e.Close()
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// dropNetRaw takes CAP_NET_RAW from the calling thread's effective set.
func dropNetRaw() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	data[unix.CAP_NET_RAW/32].Effective &^= 1 << (unix.CAP_NET_RAW % 32)
	return unix.Capset(&hdr, &data[0])
}
