// Package registry answers what a port number or service name means, from
// IANA's Service Name and Transport Protocol Port Number Registry, embedded in
// the binary, with an optional local overlay in /etc/services format.
//
// The embedded table is read in place: opening a Registry decodes nothing, and
// the Append… lookups do not allocate when dst has room.
package registry

import (
	_ "embed"
	"fmt"
	"strings"

	"github.com/portkit/portkit/registry/internal/table"
)

//go:embed iana.bin
var ianaData string

// Proto is a transport protocol. AnyProto matches every protocol as a filter
// and, on a Service, marks an IANA row that names no protocol (unassigned and
// reserved ranges apply to all of them).
type Proto uint8

const (
	AnyProto Proto = iota
	TCP
	UDP
	SCTP
	DCCP
)

var protoNames = [...]string{"any", "tcp", "udp", "sctp", "dccp"}

func (p Proto) String() string {
	if int(p) < len(protoNames) {
		return protoNames[p]
	}
	return fmt.Sprintf("proto(%d)", p)
}

// ParseProto parses "tcp", "udp", "sctp", "dccp" (any case), or "any".
func ParseProto(s string) (Proto, error) {
	for i, n := range protoNames {
		if strings.EqualFold(s, n) {
			return Proto(i), nil
		}
	}
	return 0, &InputError{Input: s, Reason: "unknown protocol (want tcp, udp, sctp or dccp)"}
}

// matches reports whether a service row of protocol p answers a question
// filtered by want.
func (p Proto) matches(want Proto) bool {
	return want == AnyProto || p == AnyProto || p == want
}

// Source tells where a Service came from.
type Source uint8

const (
	IANA Source = iota
	EtcServices
)

func (s Source) String() string {
	if s == EtcServices {
		return "etc-services"
	}
	return "iana"
}

// Range is IANA's class of a port number (RFC 6335, section 6).
type Range uint8

const (
	WellKnown  Range = iota // 0–1023, also called system ports
	Registered              // 1024–49151, user ports
	Dynamic                 // 49152–65535, dynamic and/or private ports
)

func (r Range) String() string {
	switch r {
	case WellKnown:
		return "well-known"
	case Registered:
		return "registered"
	}
	return "dynamic"
}

// RangeOf returns the IANA range class of port.
func RangeOf(port uint16) Range {
	switch {
	case port < 1024:
		return WellKnown
	case port < 49152:
		return Registered
	}
	return Dynamic
}

// Service is one row of the registry: a service name (empty for unassigned
// and reserved ports) on a port or port range, for one protocol.
type Service struct {
	Name string
	// Port and PortEnd are the first and last port of the row; they are
	// equal for a single port. HasPort is false for names registered
	// without a port (DNS-SD service names).
	Port, PortEnd uint16
	HasPort       bool
	Proto         Proto
	Source        Source

	Description string
	// References is IANA's raw reference field, e.g. "[RFC5321][RFC6409]";
	// ReferenceList splits it.
	References      string
	Assignee        string
	Contact         string
	Registered      string
	Modified        string
	ServiceCode     string
	UnauthorizedUse string
	Notes           string
	// AliasOf names the service this row is an alias or duplicate of.
	AliasOf string
}

// Unassigned reports whether the row marks ports that are not assigned.
func (s *Service) Unassigned() bool {
	return s.Name == "" && strings.EqualFold(s.Description, "Unassigned")
}

// Reserved reports whether the row marks reserved ports.
func (s *Service) Reserved() bool {
	return s.Name == "" && strings.EqualFold(s.Description, "Reserved")
}

// Status says what the row says of its ports: "assigned" for a service, and
// for a nameless row what its description says, however worded: besides
// the plain "Unassigned" and "Reserved" rows, a few say it their own way
// ("IANA Reserved", "Unassigned [was netstat]", "De-Commissioned Port").
// Nameless rows such as "any private mail system" are assignments.
func (s *Service) Status() string {
	if s.Name != "" {
		return "assigned"
	}
	d := strings.ToLower(s.Description)
	switch {
	case strings.HasPrefix(d, "unassigned"):
		return "unassigned"
	case strings.Contains(d, "reserved"):
		return "reserved"
	case d == "de-registered", d == "removed", d == "deprecated":
		return d
	case strings.HasPrefix(d, "de-commissioned"):
		return "decommissioned"
	}
	return "assigned"
}

// ReferenceList splits References into its bracketed parts, without the
// brackets: "[RFC5321][RFC6409]" gives RFC5321 and RFC6409.
func (s *Service) ReferenceList() []string {
	var refs []string
	rest := strings.TrimSpace(s.References)
	for rest != "" {
		if rest[0] != '[' {
			// Not bracketed: keep the remainder as one reference.
			refs = append(refs, rest)
			break
		}
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			refs = append(refs, rest[1:])
			break
		}
		if r := strings.TrimSpace(rest[1:end]); r != "" {
			refs = append(refs, r)
		}
		rest = strings.TrimSpace(rest[end+1:])
	}
	return refs
}

// Registry answers lookups. Its zero value is not usable; use New or Open.
// A Registry is safe for concurrent use.
type Registry struct {
	t          *table.Table
	local      []ServicesEntry    // the overlay, sorted by port
	localNames func() []localName // the overlay's names, sorted ignoring case; see overlayNames
}

// New returns a registry of IANA's data alone.
func New() *Registry {
	t, err := table.Open(ianaData)
	if err != nil {
		// The table is generated and embedded at build time; a bad one is a
		// build defect, caught by the package's tests.
		panic("registry: embedded table: " + err.Error())
	}
	return &Registry{t: t}
}

// service decodes record i of the table.
func (r *Registry) service(i int) Service {
	lo, hi, proto, hasPort := r.t.RecordHeader(i)
	f := r.t.Info(i)
	return Service{
		Name: r.t.Name(i), Port: lo, PortEnd: hi, HasPort: hasPort, Proto: Proto(proto),
		Description:     f[table.InfoDescription],
		References:      f[table.InfoReference],
		Assignee:        f[table.InfoAssignee],
		Contact:         f[table.InfoContact],
		Registered:      f[table.InfoRegistered],
		Modified:        f[table.InfoModified],
		ServiceCode:     f[table.InfoServiceCode],
		UnauthorizedUse: f[table.InfoUnauthorized],
		Notes:           f[table.InfoNotes],
		AliasOf:         f[table.InfoAliasOf],
	}
}

// ByPort returns IANA's rows for port; proto AnyProto returns every protocol.
func ByPort(port uint16, proto Proto) []Service { return New().AppendByPort(nil, port, proto) }

// ByName returns IANA's rows for a service name or alias, ignoring case.
func ByName(name string, proto Proto) []Service { return New().AppendByName(nil, name, proto) }
