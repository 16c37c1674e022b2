// Package evict frees a port: it signals the processes holding its listening
// socket, waits, and checks that the port is free afterwards.
//
// Only listeners (TCP sockets in LISTEN, bound UDP sockets) are considered,
// so the clients connected to a server are never signalled. Before each
// signal the process's start time is read again, and on Linux the signal
// goes through a pidfd opened before that check, so a PID reused by another
// process in the meantime is never hit. PID 1 and the calling process are
// refused.
package evict

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/portkit/portkit/sockets"
)

// Target is a port to free, or a range of them (Port to PortEnd), for TCP,
// UDP or both (Proto 0).
type Target struct {
	Port    uint16
	PortEnd uint16 // the range's last port; 0 means Port alone
	Proto   sockets.Proto
}

func (t Target) String() string {
	s := fmt.Sprint(t.Port)
	if t.PortEnd != 0 && t.PortEnd != t.Port {
		s += fmt.Sprintf("-%d", t.PortEnd)
	}
	if t.Proto != 0 {
		s += "/" + t.Proto.String()
	}
	return s
}

// Options tune Port. The zero value sends SIGTERM, waits up to 5 s, and
// leaves holders that outlive it alone.
type Options struct {
	Signal  syscall.Signal // the first signal; zero means SIGTERM
	Timeout time.Duration  // wait after a signal for the port to be free; zero means 5 s
	Force   bool           // send SIGKILL to holders still there after Timeout
	DryRun  bool           // find and report the holders, signal nothing
	// Table lists sockets and reads processes; nil means the running system.
	Table *sockets.Table
	// Poll is how often the port is checked while waiting; zero means 50 ms.
	Poll time.Duration
}

// Action is a signal sent, or refused, to one holder.
type Action struct {
	Process sockets.Process
	Signal  syscall.Signal
	// Err is why the signal was not sent: a *RefusedError, or the error of
	// the system call. A holder that exited before it was signalled is not
	// an error.
	Err error
}

// Report says what Port found and did.
type Report struct {
	Target  Target
	Sockets []sockets.Entry   // the listeners found first
	Holders []sockets.Process // their processes, each once
	// HiddenUIDs are the owners of listeners whose process could not be
	// seen for want of permission; they cannot be signalled.
	HiddenUIDs []uint32
	// Orphans counts sockets no process holds that could be seen (the
	// kernel's own, or one in flight between processes).
	Orphans int
	Actions []Action
	WasFree bool // nothing listened on the port (or range) to begin with
	Free    bool // nothing listens on the port (or range) now
}

// RefusedError is a holder Port will not signal, whatever the signal:
// --force changes nothing for it.
type RefusedError struct {
	PID    int
	What   string // what the process is: "init", "portkit itself", …
	Advice string // what to do instead; may be empty
}

func (e *RefusedError) Error() string {
	s := fmt.Sprintf("pid %d is %s: portkit never signals it", e.PID, e.What)
	if e.Advice != "" {
		s += "; " + e.Advice
	}
	return s
}

// ErrPortZero is returned for port 0, which no socket listens on: to the
// socket table it would mean every port.
var ErrPortZero = errors.New("port 0 is not a port anything listens on")

// ErrBadRange is a Target whose range ends before it starts.
var ErrBadRange = errors.New("port range ends before it starts")

// ErrNotHolder is a process that no longer holds the port's sockets (it
// closed them, or its PID names another process that started in the
// moment between the listing and the check): it is not signalled.
var ErrNotHolder = errors.New("no longer holds the port; not signalled")

// ErrPIDReused is a holder whose PID now names another process.
var ErrPIDReused = errors.New("the process exited and its pid was reused; not signalled")

// Port frees t's port, or every port of its range, as Options say: every
// holder is signalled at once, then the ports are waited for together.
func Port(ctx context.Context, t Target, opts Options) (Report, error) {
	tb := opts.Table
	if tb == nil {
		tb = &sockets.Table{}
	}
	rep := Report{Target: t}
	if t.Port == 0 {
		return rep, ErrPortZero
	}
	if t.PortEnd != 0 && t.PortEnd < t.Port {
		return rep, ErrBadRange
	}
	entries, err := listeners(ctx, tb, t, true)
	if err != nil {
		return rep, err
	}
	rep.Sockets = entries
	if len(entries) == 0 {
		rep.WasFree, rep.Free = true, true
		return rep, nil
	}
	for _, e := range entries {
		switch {
		case len(e.Processes) > 0:
		case e.Hidden:
			if !slices.Contains(rep.HiddenUIDs, e.UID) {
				rep.HiddenUIDs = append(rep.HiddenUIDs, e.UID)
			}
		default:
			rep.Orphans++
		}
	}
	rep.Holders = holders(entries, nil)
	if opts.DryRun || len(rep.Holders) == 0 {
		// Nothing to signal (every holder hidden): waiting would not free
		// the port.
		return rep, nil
	}
	sig := opts.Signal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if !rep.signalAll(tb, entries, rep.Holders, sig) {
		return rep, nil // nothing was signalled: waiting would not free the port
	}
	if rep.Free, err = waitFree(ctx, tb, t, timeout, opts.Poll); err != nil || rep.Free || !opts.Force {
		return rep, err
	}
	// The holders now: a master may have started new workers since.
	if entries, err = listeners(ctx, tb, t, true); err != nil {
		return rep, err
	}
	rep.signalAll(tb, entries, holders(entries, rep.Holders), syscall.SIGKILL)
	// SIGKILL cannot be caught; the kernel closes the sockets as the
	// process dies, which takes moments, not seconds.
	rep.Free, err = waitFree(ctx, tb, t, 2*time.Second, opts.Poll)
	return rep, err
}

// holders adds the processes of entries to have, each once.
func holders(entries []sockets.Entry, have []sockets.Process) []sockets.Process {
	for _, e := range entries {
		for _, p := range e.Processes {
			if !slices.ContainsFunc(have, func(h sockets.Process) bool { return h.PID == p.PID }) {
				have = append(have, p)
			}
		}
	}
	return have
}

// inodesOf is the sockets of entries that pid holds.
func inodesOf(entries []sockets.Entry, pid int) []uint64 {
	var out []uint64
	for _, e := range entries {
		if slices.ContainsFunc(e.Processes, func(p sockets.Process) bool { return p.PID == pid }) {
			out = append(out, e.Inode)
		}
	}
	return out
}

// signalAll sends sig to each holder, recording what happened, and
// reports whether any signal was sent.
func (rep *Report) signalAll(tb *sockets.Table, entries []sockets.Entry, holders []sockets.Process, sig syscall.Signal) (sent bool) {
	for _, p := range holders {
		var err error
		if re := Refusal(p); re != nil {
			err = re
		} else {
			err = sendSignal(tb, p, inodesOf(entries, p.PID), sig)
		}
		if errors.Is(err, errGone) {
			continue // exited already: nothing to do, nothing to report
		}
		sent = sent || err == nil
		rep.Actions = append(rep.Actions, Action{Process: p, Signal: sig, Err: err})
	}
	return sent
}

// Refusal says why Port never signals p, or is nil when it may: PID 1,
// the calling process, and service managers are refused whatever the
// signal.
func Refusal(p sockets.Process) *RefusedError {
	switch {
	case p.PID == 1:
		return &RefusedError{PID: 1, What: "init"}
	case p.PID == os.Getpid():
		return &RefusedError{PID: p.PID, What: "portkit itself"}
	case p.Manager():
		// Socket activation: the manager holds the listener for a
		// service; stopping the manager would stop all of them.
		return &RefusedError{PID: p.PID, What: "a service manager (" + p.Name + ", socket activation)",
			Advice: "stop the socket unit instead (systemctl stop NAME.socket)"}
	}
	return nil
}

// errGone is a holder that exited before it could be signalled.
var errGone = errors.New("process exited")

// listeners lists the listening sockets on t's ports, with every process
// holding each when withProcs is set.
func listeners(ctx context.Context, tb *sockets.Table, t Target, withProcs bool) ([]sockets.Entry, error) {
	return tb.List(ctx, sockets.Query{
		Protos: t.Proto, Port: t.Port, PortEnd: t.PortEnd, // the sockets that hold the ports: connected UDP ones too
		WithProcesses: withProcs,
	})
}

// waitFree polls until nothing listens on t's ports or timeout passes.
func waitFree(ctx context.Context, tb *sockets.Table, t Target, timeout, poll time.Duration) (bool, error) {
	if poll <= 0 {
		poll = 50 * time.Millisecond
	}
	deadline := time.Now().Add(timeout)
	for {
		entries, err := listeners(ctx, tb, t, false)
		if err != nil {
			return false, err
		}
		if len(entries) == 0 {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(poll):
		}
	}
}
