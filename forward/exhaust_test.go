package forward

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// TestExhaustionEpisode: failures and successes that alternate within
// exhaustQuiet are one episode; it ends at the first success after a quiet
// spell, and the next failure starts another.
func TestExhaustionEpisode(t *testing.T) {
	var e exhaustion
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	if !e.failed(at(0)) {
		t.Fatal("first failure does not start an episode")
	}
	if e.failed(at(1)) {
		t.Fatal("second failure starts another episode")
	}
	if ended, _, _ := e.succeeded(at(2)); ended {
		t.Fatal("a success 1 s after a failure ends the episode")
	}
	if e.failed(at(3)) {
		t.Fatal("a failure after a success within the episode starts another")
	}
	ended, lasted, n := e.succeeded(at(3).Add(exhaustQuiet))
	if !ended || lasted != 3*time.Second || n != 3 {
		t.Fatalf("succeeded after a quiet spell = %v, %v, %d; want true, 3s, 3", ended, lasted, n)
	}
	if ended, _, _ := e.succeeded(at(100)); ended {
		t.Fatal("an episode ended twice")
	}
	if !e.failed(at(101)) {
		t.Fatal("a failure after the episode ended does not start one")
	}
}

func TestLocalExhaustion(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("dial tcp: socket: %w", syscall.EMFILE), true},
		{fmt.Errorf("accept4: %w", syscall.ENFILE), true},
		{syscall.ENOBUFS, true},
		{syscall.ECONNREFUSED, false},
		{syscall.ETIMEDOUT, false},
		{syscall.EHOSTUNREACH, false},
	} {
		if got := localExhaustion(tc.err); got != tc.want {
			t.Errorf("localExhaustion(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestAcceptBackoff(t *testing.T) {
	var d time.Duration
	var seen []time.Duration
	for range 10 {
		d = acceptBackoff(d)
		seen = append(seen, d)
	}
	if seen[0] != 5*time.Millisecond || seen[1] != 10*time.Millisecond || seen[9] != time.Second {
		t.Fatalf("back-off %v: want 5ms doubling to a cap of 1s", seen)
	}
}
