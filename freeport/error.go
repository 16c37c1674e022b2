package freeport

import (
	"errors"
	"fmt"
)

// ErrNoFreePort is wrapped by the error of a search that ran out of ports.
var ErrNoFreePort = errors.New("no free port")

// Error is a search that failed: the range held too few free ports
// (ErrNoFreePort), the input was bad (an *InputError), a bind failed for a
// reason other than the port being taken, or ctx ended.
type Error struct {
	Op    string // "find" or "listen"
	Range Range  // the range searched
	Err   error
}

func (e *Error) Error() string {
	if errors.Is(e.Err, ErrNoFreePort) {
		return fmt.Sprintf("%s: %v in range %v", e.Op, e.Err, e.Range)
	}
	return fmt.Sprintf("%s in range %v: %v", e.Op, e.Range, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// InputError is a range or count that cannot be searched: the caller's input
// is wrong, not the host.
type InputError struct {
	Input  string
	Reason string
}

func (e *InputError) Error() string { return fmt.Sprintf("bad input %q: %s", e.Input, e.Reason) }

// BadInput marks the error as the user's input being wrong.
func (e *InputError) BadInput() bool { return true }
