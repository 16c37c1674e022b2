// Package portspec parses what portkit's commands are told to look at: port
// numbers, ranges and lists ("22,80,443", "T:1-1024,U:53", "ssh,https"), the
// ranked list of commonly open ports behind --top (see TOP.md), and scan
// targets (addresses, CIDR blocks, nmap-style IPv4 ranges, hostnames, files
// of them, exclusions), kept as address intervals rather than expanded.
package portspec

import (
	"fmt"
	"strings"

	"github.com/portkit/portkit/registry"
)

// Range is an inclusive range of ports.
type Range struct{ Lo, Hi uint16 }

func (r Range) String() string {
	if r.Lo == r.Hi {
		return fmt.Sprint(r.Lo)
	}
	return fmt.Sprintf("%d-%d", r.Lo, r.Hi)
}

// Error is a spec that cannot be read; Part is the piece that is wrong.
type Error struct {
	Input  string
	Part   string
	Reason string
	// File and Line say where Input was read, for specs from a file
	// (ReadTargetFile, ReadPortsFile); File is empty otherwise.
	File string
	Line int

	what string // what Input is: "target", "targets"; "" is a port spec
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	}
	what := e.what
	if what == "" {
		what = "port spec"
	}
	b.WriteString("bad " + what)
	if e.Input != "" {
		fmt.Fprintf(&b, " %q", e.Input)
	}
	if e.Part != "" && e.Part != e.Input {
		fmt.Fprintf(&b, ": %q", e.Part)
	}
	b.WriteString(": " + e.Reason)
	return b.String()
}

// BadInput marks the error as the user's input being wrong.
func (e *Error) BadInput() bool { return true }

// ParsePort reads one port number, 0–65535.
func ParsePort(s string) (uint16, error) {
	p, err := registry.ParsePort(strings.TrimSpace(s))
	if err != nil {
		return 0, &Error{Input: s, Part: s, Reason: reason(err)}
	}
	return p, nil
}

// ParseRange reads "A-B" (inclusive, A <= B) or a single port "A".
func ParseRange(s string) (Range, error) {
	lo, hi, isRange := strings.Cut(strings.TrimSpace(s), "-")
	bad := func(part, why string) (Range, error) { return Range{}, &Error{Input: s, Part: part, Reason: why} }
	a, err := registry.ParsePort(lo)
	if err != nil {
		return bad(lo, reason(err))
	}
	if !isRange {
		return Range{a, a}, nil
	}
	b, err := registry.ParsePort(hi)
	if err != nil {
		return bad(hi, reason(err))
	}
	if b < a {
		return bad(s, "range ends before it starts")
	}
	return Range{a, b}, nil
}

// reason is the why of a registry input error, without its own framing.
func reason(err error) string {
	if ie, ok := err.(*registry.InputError); ok {
		return ie.Reason
	}
	return err.Error()
}

// PortProto is a port with an optional protocol: "3000", "53/udp".
type PortProto struct {
	Port  uint16
	Proto registry.Proto // AnyProto when none was given
}

// ParsePortProto reads "PORT" or "PORT/PROTO".
func ParsePortProto(s string) (PortProto, error) {
	portStr, protoStr, hasProto := strings.Cut(strings.TrimSpace(s), "/")
	port, err := registry.ParsePort(portStr)
	if err != nil {
		return PortProto{}, &Error{Input: s, Part: portStr, Reason: reason(err)}
	}
	pp := PortProto{Port: port}
	if hasProto {
		if pp.Proto, err = registry.ParseProto(protoStr); err != nil || pp.Proto == registry.AnyProto {
			return PortProto{}, &Error{Input: s, Part: protoStr, Reason: "unknown protocol (want tcp, udp, sctp or dccp)"}
		}
	}
	return pp, nil
}
