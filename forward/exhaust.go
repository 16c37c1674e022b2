package forward

import (
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// localExhaustion reports whether err is the forwarder's own lack of
// resources — out of file descriptors (EMFILE for the process, ENFILE for
// the system) or of kernel memory — rather than anything a target did. A
// dial that fails so says nothing about the target's health.
func localExhaustion(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// exhaustQuiet is how long accepts and dials must go without running out
// before an episode is over: under a limit, accepts and dials fail and
// succeed by turns as connections come and go, and that is one episode.
const exhaustQuiet = 5 * time.Second

// Operations that run out of descriptors, the "op" label of
// portkit_forward_resource_errors_total.
const (
	opAccept = iota
	opDial
	numOps
)

var opNames = [numOps]string{"accept", "dial"}

// exhaustion follows the forwarder's episodes of running out of
// descriptors, for one log line at the start of each and one at its end,
// whatever the number of accepts and dials that fail in between.
type exhaustion struct {
	on atomic.Bool // an episode is on: what the hot path reads

	mu       sync.Mutex
	active   bool
	start    time.Time
	last     time.Time // the last failure
	failures int64
}

// failed records a failure; it reports whether it starts an episode.
func (e *exhaustion) failed(now time.Time) (starts bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	starts = !e.active
	if starts {
		e.active, e.start, e.failures = true, now, 0
		e.on.Store(true)
	}
	e.last = now
	e.failures++
	return starts
}

// succeeded records an accept or dial that got its descriptor; when it
// ends an episode it returns how long that lasted and how many failed.
func (e *exhaustion) succeeded(now time.Time) (ended bool, lasted time.Duration, failures int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.active || now.Sub(e.last) < exhaustQuiet {
		return false, 0, 0
	}
	e.active = false
	e.on.Store(false)
	return true, e.last.Sub(e.start), e.failures
}

// outOfResources records an accept or dial that failed for lack of
// descriptors, saying so once per episode.
func (f *Forwarder) outOfResources(op int, rule string, err error) {
	f.metrics.resourceErrors[op].Add(1)
	if f.exhaust.failed(time.Now()) {
		f.log.Warn("out of file descriptors: accepts wait and dials fail until some close; targets are not marked down for it",
			"op", opNames[op], "rule", rule, "err", err.Error())
	}
}

// gotResources records an accept or dial that succeeded, saying so when it
// ends an episode.
func (f *Forwarder) gotResources() {
	if !f.exhaust.on.Load() {
		return
	}
	if ended, lasted, n := f.exhaust.succeeded(time.Now()); ended {
		f.log.Info("file descriptors available again", "failures", n, "duration_ms", millis(lasted))
	}
}

// acceptBackoff is how long to wait before accepting again after the
// failure that follows one of delay (0: the first): net/http's server
// does the same, 5 ms doubling to 1 s, so a listener out of descriptors
// neither spins nor stalls long once one is free.
func acceptBackoff(delay time.Duration) time.Duration {
	if delay == 0 {
		return 5 * time.Millisecond
	}
	return min(2*delay, time.Second)
}
