package cli

import (
	"context"
	"errors"
	"net"
	"testing"
)

// TestPacedDialer: at one connection a second, the second dial waits its
// turn, and a cancelled context ends the wait without dialling.
func TestPacedDialer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dial := pacedDialer(1.0 / 3600) // one an hour: the second cannot be due in this test
	c, err := dial(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("first dial: %v", err)
	}
	c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if c, err := dial(ctx, "tcp", ln.Addr().String()); !errors.Is(err, context.Canceled) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("second dial within the hour: %v, want it held until cancelled", err)
	}
}
