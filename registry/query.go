package registry

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// InputError is a query, port or protocol that cannot be read. It is the
// caller's input that is wrong, not the registry.
type InputError struct {
	Input  string
	Reason string
}

func (e *InputError) Error() string { return fmt.Sprintf("bad input %q: %s", e.Input, e.Reason) }

// BadInput marks the error as the user's input being wrong.
func (e *InputError) BadInput() bool { return true }

// NotFoundError is a well-formed query the registry has no answer for.
type NotFoundError struct {
	Query string
	What  string // "service" or "scheme"
	// Suggestions are close names (by edit distance), best first.
	Suggestions []string
}

func (e *NotFoundError) Error() string {
	msg := fmt.Sprintf("no %s named %q", e.What, e.Query)
	if len(e.Suggestions) > 0 {
		msg += "; did you mean " + strings.Join(e.Suggestions, ", ") + "?"
	}
	return msg
}

// QueryKind tells what a Query asks for.
type QueryKind uint8

const (
	PortQuery  QueryKind = iota // 5432, 53/udp
	RangeQuery                  // 6000-6010, 6000-6010/tcp
	NameQuery                   // ssh, www, domain/udp
	URLQuery                    // https://h:8443/, postgres://db/app
)

// Query is a parsed lookup question.
type Query struct {
	Kind  QueryKind
	Input string
	// Port and PortEnd for port and range queries, and for a URL with an
	// explicit port (HasPort).
	Port, PortEnd uint16
	HasPort       bool
	Proto         Proto
	Name          string // name queries; the scheme of a URL query
}

// ParsePort parses a decimal port number, 0–65535.
func ParsePort(s string) (uint16, error) {
	if s == "" {
		return 0, &InputError{Input: s, Reason: "empty port"}
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, &InputError{Input: s, Reason: "a port is a number from 0 to 65535"}
		}
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, &InputError{Input: s, Reason: "port out of range 0-65535"}
	}
	return uint16(n), nil
}

// ParseQuery reads a lookup question: a port ("5432"), a port and protocol
// ("53/udp"), a range ("6000-6010"), a service name or alias, optionally with
// a protocol ("domain/udp"), or a URL ("https://h:8443/").
func ParseQuery(s string) (Query, error) {
	in := s
	s = strings.TrimSpace(s)
	bad := func(reason string) (Query, error) { return Query{}, &InputError{Input: in, Reason: reason} }
	if s == "" {
		return bad("empty query")
	}
	if strings.Contains(s, "://") {
		return parseURLQuery(in, s)
	}
	// A port or range is digits (and a sign or a dash); a name may start
	// with a digit too (2ping, 9pfs, 802-11-iapp).
	if ports, _, _ := strings.Cut(s, "/"); strings.Trim(ports, "0123456789-+") == "" {
		return parsePortQuery(in, s)
	}
	q := Query{Kind: NameQuery, Input: in, Name: s}
	// Names may hold a slash themselves (EtherNet/IP-1), so only a known
	// protocol after the last one splits it.
	if i := strings.LastIndexByte(s, '/'); i > 0 {
		if p, err := ParseProto(s[i+1:]); err == nil && p != AnyProto {
			q.Name, q.Proto = s[:i], p
		}
	}
	return q, nil
}

func parsePortQuery(in, s string) (Query, error) {
	q := Query{Kind: PortQuery, Input: in, HasPort: true}
	if ports, proto, ok := strings.Cut(s, "/"); ok {
		p, err := ParseProto(proto)
		if err != nil || p == AnyProto {
			return Query{}, &InputError{Input: in, Reason: fmt.Sprintf("unknown protocol %q (want tcp, udp, sctp or dccp)", proto)}
		}
		q.Proto, s = p, ports
	}
	lo, hi, isRange := strings.Cut(s, "-")
	switch {
	case strings.HasPrefix(s, "-"):
		return Query{}, &InputError{Input: in, Reason: "a port is a number from 0 to 65535, not negative"}
	case isRange && hi == "":
		return Query{}, &InputError{Input: in, Reason: "range has no end (want A-B)"}
	}
	var err error
	if q.Port, err = ParsePort(lo); err != nil {
		return Query{}, &InputError{Input: in, Reason: err.(*InputError).Reason}
	}
	q.PortEnd = q.Port
	if isRange {
		if q.PortEnd, err = ParsePort(hi); err != nil {
			return Query{}, &InputError{Input: in, Reason: err.(*InputError).Reason}
		}
		if q.PortEnd < q.Port {
			return Query{}, &InputError{Input: in, Reason: "range ends before it starts"}
		}
		q.Kind = RangeQuery
	}
	return q, nil
}

func parseURLQuery(in, s string) (Query, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return Query{}, &InputError{Input: in, Reason: "not a URL"}
	}
	q := Query{Kind: URLQuery, Input: in, Name: strings.ToLower(u.Scheme), Proto: TCP}
	if p := u.Port(); p != "" {
		if q.Port, err = ParsePort(p); err != nil {
			return Query{}, &InputError{Input: in, Reason: "URL port: " + err.(*InputError).Reason}
		}
		q.PortEnd, q.HasPort = q.Port, true
	}
	return q, nil
}

// Answer is what the registry says of one query.
type Answer struct {
	Query Query
	// Port is the port the query is about: the queried port, the first of a
	// range, the URL's port or its scheme's default. Zero for name queries.
	Port uint16
	// DefaultPort is a URL scheme's default port.
	DefaultPort uint16
	Services    []Service
}

// Lookup answers q. A name or URL scheme the registry does not know is a
// *NotFoundError with suggestions.
func (r *Registry) Lookup(q Query) (Answer, error) {
	a := Answer{Query: q, Port: q.Port}
	switch q.Kind {
	case PortQuery:
		a.Services = r.AppendByPort(nil, q.Port, q.Proto)
	case RangeQuery:
		a.Services = r.AppendByRange(nil, q.Port, q.PortEnd, q.Proto)
	case NameQuery:
		a.Services = r.AppendByName(nil, q.Name, q.Proto)
		if len(a.Services) == 0 {
			return a, &NotFoundError{Query: q.Name, What: "service", Suggestions: r.Suggest(q.Name, 3)}
		}
	case URLQuery:
		port, service, ok := r.SchemePort(q.Name)
		if !ok && !q.HasPort {
			return a, &NotFoundError{Query: q.Name, What: "URL scheme", Suggestions: r.Suggest(q.Name, 3)}
		}
		a.DefaultPort = port
		if !q.HasPort {
			a.Port = port
		}
		if ok {
			for _, s := range r.AppendByName(nil, service, TCP) {
				if s.HasPort && s.Port == port {
					a.Services = append(a.Services, s)
				}
			}
		}
		if len(a.Services) == 0 {
			// An unknown scheme with an explicit port: say what the port is.
			a.Services = r.AppendByPort(nil, a.Port, TCP)
		}
	}
	return a, nil
}
