// Package replay keeps SPA packets from being accepted twice: a time
// window that refuses old and future-dated packets (Window), and a cache
// of the digests of accepted packets (Cache), kept in a file so that a
// replay is refused after a restart too, and bounded by the window.
//
// The two work together: a packet is accepted only while its timestamp is
// within the window, so a digest need only be remembered for as long,
// MaxAge+Skew, and the cache forgets older ones.
package replay

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of Window, fwknopd's: it accepts a packet whose timestamp is
// within 120 seconds of its clock, either way.
const (
	DefaultMaxAge = 120 * time.Second
	DefaultSkew   = 120 * time.Second
)

// Window is how far a packet's timestamp may be from the receiver's
// clock. The zero value is the defaults.
type Window struct {
	MaxAge time.Duration // how old a packet may be
	Skew   time.Duration // how far in the future a packet may be dated
}

func (w Window) withDefaults() Window {
	if w.MaxAge <= 0 {
		w.MaxAge = DefaultMaxAge
	}
	if w.Skew <= 0 {
		w.Skew = DefaultSkew
	}
	return w
}

// Span is how long an accepted packet's digest must be remembered: from
// acceptance, a packet dated up to Skew ahead stays acceptable for MaxAge
// after its date.
func (w Window) Span() time.Duration { w = w.withDefaults(); return w.MaxAge + w.Skew }

// The ways a timestamp can be outside the window.
var (
	ErrTooOld     = errors.New("packet too old")
	ErrFromFuture = errors.New("packet dated in the future")
)

// TimeError is a timestamp outside the window.
type TimeError struct {
	Timestamp, Now time.Time
	Limit          time.Duration // the MaxAge or Skew passed
	Err            error         // ErrTooOld or ErrFromFuture
}

func (e *TimeError) Error() string {
	d := e.Now.Sub(e.Timestamp)
	if d < 0 {
		d = -d
	}
	return fmt.Sprintf("replay: %v: timestamp %s is %s from now, limit %s",
		e.Err, e.Timestamp.UTC().Format(time.RFC3339), d, e.Limit)
}

func (e *TimeError) Unwrap() error { return e.Err }

// Check tells whether a packet dated ts may be accepted at now.
func (w Window) Check(ts, now time.Time) error {
	w = w.withDefaults()
	switch {
	case now.Sub(ts) > w.MaxAge:
		return &TimeError{Timestamp: ts, Now: now, Limit: w.MaxAge, Err: ErrTooOld}
	case ts.Sub(now) > w.Skew:
		return &TimeError{Timestamp: ts, Now: now, Limit: w.Skew, Err: ErrFromFuture}
	}
	return nil
}
