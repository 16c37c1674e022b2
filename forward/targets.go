package forward

import (
	"sync"
	"sync/atomic"
	"time"
)

// Back-off bounds for a target that failed: retried after minBackoff, then
// twice as long after each further failure, at most maxBackoff.
const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
)

// targetSet is a rule's targets with their health. A target that fails a
// dial (or refuses UDP) is down until its back-off ends; down targets are
// still tried, after every target that is up, so a client is never turned
// away while any target might answer.
type targetSet struct {
	addrs   []string
	balance Balance
	next    atomic.Uint32

	mu   sync.Mutex
	down []downState
}

type downState struct {
	until   time.Time
	backoff time.Duration
}

func newTargetSet(addrs []string, balance Balance) *targetSet {
	return &targetSet{addrs: addrs, balance: balance, down: make([]downState, len(addrs))}
}

// order returns the indexes to try: the up targets first, starting at the
// first (First) or the next in turn (RoundRobin), then the down ones, the
// one whose back-off ends soonest first.
func (t *targetSet) order(now time.Time) []int {
	n := len(t.addrs)
	start := 0
	if t.balance == RoundRobin && n > 1 {
		start = int((t.next.Add(1) - 1) % uint32(n))
	}
	idx := make([]int, 0, n)
	var down []int
	t.mu.Lock()
	for k := range n {
		i := (start + k) % n
		if now.Before(t.down[i].until) {
			down = append(down, i)
			continue
		}
		idx = append(idx, i)
	}
	for a := 1; a < len(down); a++ { // insertion sort: a handful of targets
		for b := a; b > 0 && t.down[down[b]].until.Before(t.down[down[b-1]].until); b-- {
			down[b], down[b-1] = down[b-1], down[b]
		}
	}
	t.mu.Unlock()
	return append(idx, down...)
}

// failed marks target i down for a back-off, twice the last one if the
// target failed again after that ended; marked says it was up (or its
// back-off over) until now. A failure while it is down — a dial begun
// before it was marked, or tried because every target is down — changes
// nothing: the back-off grows once an outage retry, not once a client.
func (t *targetSet) failed(i int, now time.Time) (backoff time.Duration, marked bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := &t.down[i]
	if now.Before(d.until) {
		return d.until.Sub(now), false
	}
	d.backoff = min(max(minBackoff, 2*d.backoff), maxBackoff)
	d.until = now.Add(d.backoff)
	return d.backoff, true
}

// succeeded marks target i up; it reports whether it was down.
func (t *targetSet) succeeded(i int) (wasDown bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	wasDown = t.down[i].backoff != 0
	t.down[i] = downState{}
	return wasDown
}

// isDown reports target i's health for the metrics.
func (t *targetSet) isDown(i int, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return now.Before(t.down[i].until)
}
