// Package service tells what answers on an open port: the protocol, the
// product and its version where the protocol reveals them, and the TLS
// certificate of a port that speaks TLS, directly or after STARTTLS.
//
// Detection is a pipeline of probes, each on its own connection and each
// bounded by a deadline and a byte cap: the detector the port number
// suggests first, then a short wait for a banner (protocols where the
// server speaks first), then a TLS handshake and the same pipeline inside
// it, then the client-first probes in order of likelihood. Every detector
// is written from its protocol's specification and from what servers were
// seen to send; no other tool's fingerprint data is used.
package service

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Result is what answered on one port.
type Result struct {
	// Service is the protocol's short name ("ssh", "http", "smtp"), or
	// "unknown" when the port answered with nothing a detector knows, or
	// sent nothing at all.
	Service string `json:"service"`
	Product string `json:"product,omitempty"`
	Version string `json:"version,omitempty"`
	// Info is what else the protocol said of itself: "protocol 2.0",
	// an HTTP page's title, a distribution's tag.
	Info string `json:"info,omitempty"`
	// TLS is the TLS session of the port, direct or after STARTTLS.
	TLS *TLSInfo `json:"tls,omitempty"`
	// Confidence: 10 a handshake parsed whole, 8 the protocol's own
	// reply recognised, 5 a weaker sign, 0 nothing recognised.
	Confidence int `json:"confidence"`
	// Evidence is what decided it, quoted from the wire where it is text.
	Evidence string `json:"evidence"`
	// CPE names the product in CPE 2.3, where it is known.
	CPE []string `json:"cpe,omitempty"`
	// Banner is the first bytes the port sent, escaped, when nothing
	// recognised them.
	Banner string `json:"banner,omitempty"`
}

// Unknown is the service name of a port no detector recognised.
const Unknown = "unknown"

// Known reports whether a detector recognised the port.
func (r *Result) Known() bool { return r != nil && r.Service != "" && r.Service != Unknown }

// Defaults of Options.
const (
	DefaultTimeout     = 5 * time.Second
	DefaultConcurrency = 64
	DefaultMaxBytes    = 16 << 10
)

// Options tunes an Identifier. The zero value works.
type Options struct {
	// Timeout bounds the whole identification of one port, every probe
	// included (DefaultTimeout when 0).
	Timeout time.Duration
	// MaxBytes is the most read from one connection (DefaultMaxBytes
	// when 0): a peer streaming without end is cut off there.
	MaxBytes int
	// SNMP allows the SNMP probe, which sends the community "public":
	// some consider that an intrusion, so it is only sent when asked.
	SNMP bool
	// Dial opens connections; nil means a net.Dialer. Tests and the
	// scanner's rate limit come in through it.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// ServerName is the name sent in TLS SNI and HTTP Host; the address
	// when empty.
	ServerName string
}

func (o *Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return DefaultTimeout
}

func (o *Options) maxBytes() int {
	if o.MaxBytes > 0 {
		return o.MaxBytes
	}
	return DefaultMaxBytes
}

// Identifier identifies services. Its zero value uses the defaults.
type Identifier struct {
	Options
}

// Identify identifies the TCP service at addr with default options.
func Identify(ctx context.Context, addr netip.AddrPort) Result {
	var id Identifier
	return id.TCP(ctx, addr)
}

// Error is a failure to identify a service at an address.
type Error struct {
	Op   string // "dial", "read", "tls"
	Addr string
	Err  error
}

func (e *Error) Error() string { return e.Op + " " + e.Addr + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// TCP identifies the service on the TCP port addr. It always returns a
// Result: Service Unknown with the evidence when nothing was recognised.
func (id *Identifier) TCP(ctx context.Context, addr netip.AddrPort) Result {
	ctx, cancel := context.WithTimeout(ctx, id.timeout())
	defer cancel()
	t := &target{opts: &id.Options, addr: addr, host: id.ServerName}
	if t.host == "" {
		t.host = addr.Addr().String()
	}
	r := t.run(ctx)
	finish(&r)
	return r
}

// finish fills what every result carries: a service name, CPE names.
func finish(r *Result) {
	if r.Service == "" {
		r.Service = Unknown
	}
	if r.Evidence == "" {
		r.Evidence = "no reply to any probe"
	}
	if r.Product != "" && r.CPE == nil {
		if c := cpeFor(r.Product, r.Version); c != "" {
			r.CPE = []string{c}
		}
	}
}

// String is "product version (info)" for a line of text.
func (r *Result) String() string {
	s := r.Product
	if r.Version != "" {
		s += " " + r.Version
	}
	if r.Info != "" {
		if s != "" {
			s += " "
		}
		s += "(" + r.Info + ")"
	}
	return s
}

// portOf returns the port of addr for messages.
func portOf(addr netip.AddrPort) string { return strconv.Itoa(int(addr.Port())) }
