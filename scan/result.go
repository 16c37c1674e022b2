// Package scan is portkit's port scanner: engines that probe (connect, SYN,
// UDP), the seeded permutation that orders and shards the probes, and the
// timing that paces and retransmits them. A Scanner is configured by a
// struct and reports results to a Sink as they are found.
package scan

import (
	"net/netip"
	"time"
)

// Proto is the transport protocol of a probe.
type Proto uint8

const (
	TCP Proto = iota + 1
	UDP
)

func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return "unknown"
}

// MarshalText writes the protocol's name, for JSON.
func (p Proto) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// State is what a probe learned of a port, in nmap's terms.
type State uint8

const (
	Open         State = iota + 1 // something answers: SYN-ACK, a completed connect, a UDP reply
	Closed                        // the host answers that nothing listens: RST, refused, ICMP port unreachable
	Filtered                      // no answer after every retry, or an ICMP unreachable other than port
	OpenFiltered                  // UDP silence: open and quiet, or filtered
)

func (s State) String() string {
	switch s {
	case Open:
		return "open"
	case Closed:
		return "closed"
	case Filtered:
		return "filtered"
	case OpenFiltered:
		return "open|filtered"
	}
	return "unknown"
}

// MarshalText writes the state's name, for JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Probe names one (address, port, protocol) to probe.
type Probe struct {
	IP    netip.Addr
	Port  uint16
	Proto Proto
}

// AddrPort is the probe's address and port, written [v6]:port in messages.
func (p Probe) AddrPort() netip.AddrPort { return netip.AddrPortFrom(p.IP, p.Port) }

// Result is the verdict on one probe.
type Result struct {
	Probe
	State State
	// RTT is the round trip of the answer that decided the state; zero for
	// states decided by silence.
	RTT time.Duration
	// Reason is what decided it, in nmap's words where there is one:
	// "syn-ack", "reset", "conn-refused", "udp-response",
	// "port-unreach", "host-unreach", "admin-prohibited", "no-response".
	Reason string
	// TTL of the answer, where the engine sees it (raw engines); 0 otherwise.
	TTL uint8
}

// Sink receives results as they are found, from one goroutine at a time.
type Sink interface {
	Result(Result) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(Result) error

// Result calls f.
func (f SinkFunc) Result(r Result) error { return f(r) }
