package knock

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// Refusal lines are rate-limited, so that a flood of junk costs parsing
// only: a log line cost more than the checks of the packet it told of,
// and a reader busy writing lines let the kernel drop what came in, valid
// packets too. Accepted attempts are always logged, and every refusal is
// counted in the metrics whatever the log says.
//
// Each source has a budget of RefusalLogPerSource lines, given back one
// every RefusalLogPerSourceEvery; all sources together have one of
// RefusalLogBurst lines, given back one every RefusalLogEvery. A refusal
// is logged when both budgets allow it: a source never seen before is
// logged until the overall budget is spent. A refusal not logged is
// counted; the count is the "suppressed" of the next refusal line, or of a
// "refusals not logged" line RefusalLogReport after, whichever comes first.
const (
	RefusalLogPerSource      = 20
	RefusalLogPerSourceEvery = 3 * time.Second // a client that tries every few seconds sees each of its lines
	RefusalLogBurst          = 100
	RefusalLogEvery          = 50 * time.Millisecond // twenty lines a second once the burst is spent
	RefusalLogReport         = 10 * time.Second
)

// logSources is how many sources the limiter follows, in a table indexed
// by a hash of the address: a source whose slot another took is new again.
// Fixed, so that spoofed sources cost no memory.
const logSources = 1024

// logLimiter decides which refusals get a line. It is safe for concurrent
// use.
type logLimiter struct {
	mu         sync.Mutex
	seed       maphash.Seed
	tokens     float64   // the overall budget
	last       time.Time // when tokens was last given back
	suppressed uint64    // refusals not logged since the last line
	sources    [logSources]sourceBudget
}

type sourceBudget struct {
	addr   netip.Addr
	tokens float64
	last   time.Time
}

func newLogLimiter(now time.Time) *logLimiter {
	return &logLimiter{seed: maphash.MakeSeed(), tokens: RefusalLogBurst, last: now}
}

// refill gives back what every has earned since *last, up to burst.
func refill(tokens *float64, last *time.Time, now time.Time, every time.Duration, burst float64) {
	if d := now.Sub(*last); d > 0 {
		*tokens = min(burst, *tokens+float64(d)/float64(every))
		*last = now
	}
}

// allow tells whether a refusal from src at now gets a line and, when it
// does, how many refusals were not logged since the last line (the count
// starts over).
func (l *logLimiter) allow(src netip.Addr, now time.Time) (suppressed uint64, ok bool) {
	a := src.As16()
	h := maphash.Bytes(l.seed, a[:])
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &l.sources[h%logSources]
	if s.addr != src || s.last.IsZero() {
		*s = sourceBudget{addr: src, tokens: RefusalLogPerSource, last: now}
	} else {
		refill(&s.tokens, &s.last, now, RefusalLogPerSourceEvery, RefusalLogPerSource)
	}
	refill(&l.tokens, &l.last, now, RefusalLogEvery, RefusalLogBurst)
	if s.tokens < 1 || l.tokens < 1 {
		l.suppressed++
		return 0, false
	}
	s.tokens--
	l.tokens--
	n := l.suppressed
	l.suppressed = 0
	return n, true
}

// takeSuppressed returns the count of refusals not logged since the last
// line and starts it over.
func (l *logLimiter) takeSuppressed() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.suppressed
	l.suppressed = 0
	return n
}
