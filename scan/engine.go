package scan

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// An Engine puts probes on the wire and reports what comes back. It knows
// packets or sockets; the Scanner knows time: it decides what to send and
// when, times out silence, retransmits, and turns silence into the final
// Filtered (TCP) or OpenFiltered (UDP). An engine never waits for an answer
// and never decides that a probe has failed for lack of one.
//
// The Scanner calls Start once, then Send and Done from one goroutine, then
// Close once. Engines run their own receiving goroutines and report on the
// replies channel that Start was given.
type Engine interface {
	// Name names the engine in output and errors: "connect", "syn", "udp".
	Name() string

	// Proto is the protocol of the probes the engine sends.
	Proto() Proto

	// Start prepares the engine (sockets, filters) and starts its receivers,
	// which send every answer they see on replies until ctx is done. Every
	// send on replies must also select on ctx.Done(): the Scanner cancels
	// ctx before Close, and stops reading replies after Close returns.
	// The engine does not close replies.
	Start(ctx context.Context, replies chan<- Reply) error

	// Send sends one attempt at p; attempt is 1 for the first send and counts
	// up for each retransmission. It does not wait for an answer, and must
	// not block on replies: the Scanner reads them on the goroutine that
	// calls Send. An answer the engine learns at once (a refused connect, no
	// route) is still reported on replies, not returned.
	//
	// An error wrapping ErrBusy means the engine cannot take the probe now
	// (out of sockets or buffers); the Scanner keeps it and tries again
	// later. Any other error ends the scan.
	Send(p Probe, attempt int) error

	// Done tells the engine that the Scanner no longer waits for the attempt
	// it last sent at p: it was answered, it timed out (a retransmission may
	// follow), or the probe is final. Every Send is followed by exactly one
	// Done for its probe before the next Send of that probe, except that
	// Close ends whatever is still in flight. An engine that holds something
	// per attempt (the connect engine's socket) releases it; a stateless one
	// ignores it. An answer reported afterwards still counts while the
	// probe is outstanding: a late answer is an answer.
	Done(p Probe)

	// Close stops the engine and releases what it holds. After it returns
	// the engine sends nothing more on replies.
	Close() error
}

// Reply is one answer an engine saw. The Scanner matches it by Probe to a
// probe it has outstanding, and ignores it if there is none (a duplicate, a
// late answer to a finished probe, a stray packet that passed the filter).
type Reply struct {
	Probe
	State  State
	Reason string // as Result.Reason: "syn-ack", "reset", "port-unreach", …
	TTL    uint8  // of the answer, if the engine sees it; 0 otherwise

	// Attempt is the attempt answered, as passed to Send, when the engine
	// can tell (a raw engine may encode it in the probe); 0 when it cannot.
	// The Scanner samples the RTT only from answers it can pin to one send
	// (Karn's rule). An answer to the first attempt that comes after a
	// retransmission is such a sample, and the one that tells the Scanner
	// its timeout is too short; with Attempt 0 it would be lost.
	Attempt int

	// At is when the answer arrived (a kernel timestamp where there is one);
	// zero means when the Scanner reads it.
	At time.Time
}

// ErrBusy is wrapped by an Engine's Send when it has no room for another
// probe now; see Engine.Send.
var ErrBusy = errors.New("engine busy")

// ErrEngineClosed is returned by Start of an engine that has run its scan:
// an engine holds its sockets for one Run, so a Scanner run again needs
// new ones.
var ErrEngineClosed = errors.New("engine closed: it runs one scan; make a new one for the next")

// Bounded is implemented by an engine that can hold only so many probes in
// flight, such as the connect engine with one socket per probe. The Scanner
// keeps its outstanding probes within MaxInFlight, and reports in Stats when
// that bound, not the rate or the network, held the scan back.
type Bounded interface {
	// MaxInFlight is the bound, and what sets it ("open-file limit 1024").
	MaxInFlight() (n int, why string)
}

// Flusher is implemented by an engine that batches what Send queues (a raw
// engine filling sendmmsg or a TX ring). The Scanner calls Flush whenever it
// is about to wait, so nothing sits in a batch while the scan is idle.
type Flusher interface {
	Flush() error
}

// HostPacer is implemented by an engine that learns how fast each host may
// be probed, such as the UDP engine when a target rate-limits its ICMP
// errors (a faster scan would see closed ports fall silent).
//
// The Scanner asks before every attempt it sends to a host, so a pace can
// be set, changed or lifted at any time. It keeps a token bucket for each
// host with a pace (in a bounded table), on top of the scan's Rate. An
// attempt whose host has no token is parked: it stays outstanding, and
// counts against MaxOutstanding, while the Scanner sends to other hosts,
// and goes out, in the order it was parked, when the host's next token
// comes. Only when nothing else can go does the Scanner wait, for the
// earliest token. Stats.HostsPaced counts the hosts paced.
type HostPacer interface {
	// HostRate is the most attempts a second to send to ip; 0 (or less)
	// means the engine sets no bound of its own. It is called from the
	// Scanner's goroutine, concurrently with the engine's receivers, and
	// should be cheap: it is asked for every attempt.
	HostRate(ip netip.Addr) float64
}

// ICMPLimitLister is implemented by an engine that measures targets'
// limits on the ICMP errors they send (the UDP engine). At the end of a
// scan the Scanner puts the limits in force in Stats.ICMPLimits.
type ICMPLimitLister interface {
	// ICMPLimits lists the hosts paced for their limits now.
	ICMPLimits() []ICMPLimit
}
