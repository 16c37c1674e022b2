//go:build linux

package netnstest

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

// A dial to a test host from the host's own namespace is refused at once
// by the fence, never sent out; from the scanner's namespace it reaches
// the target.
func TestFence(t *testing.T) {
	p := New(t, "fe")
	for _, a := range []string{Target4.String(), "[" + Target6.String() + "]"} {
		_, err := net.DialTimeout("tcp", a+":9", 2*time.Second)
		if !errors.Is(err, syscall.ENETUNREACH) && !errors.Is(err, syscall.EHOSTUNREACH) {
			t.Errorf("dial %s:9 from the host's namespace: %v; want network unreachable", a, err)
		}
	}
	Run(t, p.Scanner, func() error {
		_, err := net.DialTimeout("tcp", Target4.String()+":9", 2*time.Second)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial %v:9 from the scanner's namespace: %v; want connection refused by the target", Target4, err)
		}
		return nil
	})
}
