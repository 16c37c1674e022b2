package scan

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portkit/portkit/internal/silentport"
)

// A probe to a port that never answers is retransmitted, then filtered;
// its sockets are closed on each timeout, not left to the kernel's own
// SYN retries.
func TestConnectSilenceFiltered(t *testing.T) {
	port := silentport.New(t).Port()
	before := countFDs(t)
	s := Scanner{
		Targets: addrList{netip.MustParseAddr("127.0.0.1")},
		Ports:   portList{{port, TCP}},
		Retries: 2, InitialRTT: 50 * time.Millisecond, MinRTT: 20 * time.Millisecond,
	}
	var c collect
	st, err := s.Run(t.Context(), &c)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.results) != 1 || c.results[0].State != Filtered || c.results[0].Reason != "no-response" {
		t.Fatalf("results %+v, want filtered (no-response)", c.results)
	}
	if st.Sent != 3 || st.Retransmitted != 2 {
		t.Errorf("sent %d, retransmitted %d; want 3, 2", st.Sent, st.Retransmitted)
	}
	if after := countFDs(t); after > before {
		t.Errorf("%d files open before the scan, %d after", before, after)
	}
}

func countFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip(err)
	}
	n := 0
	for _, e := range ents {
		if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// What each outcome of a connect says of the port; a reset of a
// connection already made is an open port, not an error that stops the
// scan (it used to end a scan of a forwarder that refused by reset).
func TestClassifyErrno(t *testing.T) {
	for _, tt := range []struct {
		err    error
		state  State
		reason string
		ok     bool
	}{
		{nil, Open, "syn-ack", true},
		{unix.ECONNRESET, Open, "syn-ack", true},
		{unix.ECONNREFUSED, Closed, "conn-refused", true},
		{unix.EHOSTUNREACH, Filtered, "host-unreach", true},
		{unix.ENETUNREACH, Filtered, "host-unreach", true},
		{unix.EPERM, Filtered, "admin-prohibited", true},
		{unix.ETIMEDOUT, 0, "", false},
	} {
		st, reason, ok := classifyErrno(tt.err)
		if st != tt.state || reason != tt.reason || ok != tt.ok {
			t.Errorf("classifyErrno(%v) = %v, %q, %v; want %v, %q, %v", tt.err, st, reason, ok, tt.state, tt.reason, tt.ok)
		}
	}
}
