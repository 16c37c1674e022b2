package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Exit codes, one table for every command.
const (
	ExitOK          = 0   // success, positive answer
	ExitNegative    = 1   // negative answer: nothing found, port free, target not open; other failures
	ExitUsage       = 2   // bad usage or bad input
	ExitPartial     = 3   // partial: of several arguments, some answered positively, some not
	ExitIO          = 74  // an output or state file could not be written (disk full, ...): sysexits' EX_IOERR
	ExitTimeout     = 124 // timed out (wait), as timeout(1) and wait-for-it
	ExitInterrupted = 130 // interrupted by a signal
)

// tally counts the arguments a command answered positively and
// negatively, for its exit code: 0 when all were positive, 1 when none was,
// 3 (partial) for a mix.
type tally struct{ pos, neg int }

func (t *tally) add(ok bool) {
	if ok {
		t.pos++
	} else {
		t.neg++
	}
}

func (t tally) code() int {
	switch {
	case t.neg == 0:
		return ExitOK
	case t.pos == 0:
		return ExitNegative
	}
	return ExitPartial
}

// err is nil or the exit code as an error whose message is already said.
func (t tally) err() error {
	if c := t.code(); c != ExitOK {
		return &exitError{code: c}
	}
	return nil
}

// exitError carries an exit code. With a nil err the command has already
// said all there is to say on stderr.
type exitError struct {
	code  int
	err   error
	child bool // a command's own status, which stands even after an interrupt
}

func (e *exitError) Error() string {
	if e.err == nil {
		return "exit status " + strconv.Itoa(e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// commandError marks an error as coming from a command's body rather than
// from cobra's parsing of the command line.
type commandError struct{ err error }

func (e *commandError) Error() string { return e.err.Error() }
func (e *commandError) Unwrap() error { return e.err }

func isCommandError(err error) bool {
	var ce *commandError
	return errors.As(err, &ce)
}

// usagef is bad usage or bad input (exit 2), said in the message; every
// command makes its usage errors with it.
func usagef(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// flagValueError is a flag's bad value said as every flag error is:
// `--flag "value": reason` (exit 2). A library's own naming of the value
// at the head of its message (portspec's `bad port spec "V": `) is left
// out, as the flag and value say it.
func flagValueError(flag, value string, err error) error {
	reason := err.Error()
	q := strconv.Quote(value) + ": "
	if i := strings.Index(reason, q); strings.HasPrefix(reason, "bad ") && i >= 0 {
		reason = reason[i+len(q):]
	}
	return usagef("%s %q: %s", flag, value, reason)
}

// ioError is output that could not be written: a file or stdout named
// for the user. Its exit code is ExitIO, not ExitNegative, which a script
// would read as "nothing found".
type ioError struct {
	name string // "--out FILE", "stdout", "the resume file FILE"
	err  error
}

func (e *ioError) Error() string { return e.name + ": " + e.err.Error() }
func (e *ioError) Unwrap() error { return e.err }

// badInput is implemented by the library errors that blame the user's input.
type badInput interface{ BadInput() bool }

// ExitCode maps an error to portkit's exit code. It is the only place that
// does.
func ExitCode(err error) int {
	var (
		ee *exitError
		ie *ioError
		bi badInput
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ie):
		return ExitIO
	case errors.As(err, &bi) && bi.BadInput():
		return ExitUsage
	case errors.Is(err, context.DeadlineExceeded):
		return ExitTimeout
	case errors.Is(err, context.Canceled):
		return ExitInterrupted
	case !isCommandError(err):
		return ExitUsage // cobra: unknown command or flag, wrong arguments
	}
	return ExitNegative
}

// plainWords replaces Go's names for an ended context in a diagnostic with
// what they mean to a user: a cancelled context is the interrupt (or, with
// no interrupt, something stopped), a deadline is a timeout. Library errors
// carry these texts inside their own (a dial "operation was canceled");
// errors.Is finds them where they are wrapped, this where they were
// flattened into a message.
func plainWords(msg string, interrupted bool) string {
	cancelled := "cancelled"
	if interrupted {
		cancelled = "interrupted"
	}
	return strings.NewReplacer(
		"context canceled", cancelled,
		"operation was canceled", cancelled,
		"context deadline exceeded", "timed out",
	).Replace(msg)
}
