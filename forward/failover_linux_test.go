package forward

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/portkit/portkit/internal/silentport"
)

// TestFailoverSilentTarget: a first target that never answers does not
// hold the client for connect_timeout: the next is tried beside it after a
// moment, and once the silent one's own dial times out it is marked down.
func TestFailoverSilentTarget(t *testing.T) {
	echo, _ := echoServer(t)
	silent := silentport.New(t).String()
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

// TestShutdownDuringDial: a dial that a drain cuts short ends the client's
// connection with a reset and logs end=shutdown, without Go's "operation
// was canceled", and does not mark the target down.
func TestShutdownDuringDial(t *testing.T) {
	silent := silentport.New(t).String()
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Name: "cut", Listen: "127.0.0.1:0", Targets: []string{silent}, ConnectTimeout: 20 * time.Second})
	c := dial(t, "tcp", addr)
	io.WriteString(c, "x")
	deadline := time.Now().Add(10 * time.Second)
	for fx.m.rule("cut", TCP).active.Load() == 0 { // the handler is dialling
		if time.Now().After(deadline) {
			t.Fatal("the connection never reached its dial")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fx.fw.Shutdown(ctx)
	rec := fx.log.waitLines(t, "connection end", 1)[0]
	if rec["end"] != "shutdown" || rec["err"] != nil {
		t.Fatalf("log: %v", rec)
	}
	if n := len(fx.log.lines("target down")); n != 0 {
		t.Fatalf("target marked down for a dial the drain cut")
	}
}
