package scan

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

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

// TestRawEngineRunsOnce: a raw engine closes with its scan; Close again is
// harmless and Start again says the engine must be made anew.
func TestRawEngineRunsOnce(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: opens raw sockets")
	}
	e, err := NewSYN(SYNOptions{})
	if err != nil {
		t.Fatal(err)
	}
	replies := make(chan Reply, 1)
	if err := e.Start(t.Context(), replies); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := e.Start(t.Context(), replies); !errors.Is(err, ErrEngineClosed) {
		t.Fatalf("Start after Close: %v, want ErrEngineClosed", err)
	}
}
