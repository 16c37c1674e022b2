// Package forward relays connections and datagrams arriving on a local port to
// one of a list of target addresses.
//
// TCP bytes move with io.Copy between *net.TCPConn values, which Linux turns
// into splice(2): nothing wraps the connections on the data path, so the
// kernel moves the bytes and byte counts come from io.Copy's return values.
// UDP is relayed through one socket per client session.
//
// A Forwarder runs a set of Rules; Reload swaps the set while keeping the
// listeners (and their connections) of rules that did not change.
package forward

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Protocol is the transport a rule forwards.
type Protocol string

const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

// Balance is how a rule picks among its targets.
type Balance string

const (
	// First tries the targets in order and uses the first that is up:
	// failover.
	First Balance = "first"
	// RoundRobin starts each connection at the next target in turn,
	// skipping targets that are down.
	RoundRobin Balance = "round-robin"
)

// Balances are the values of Balance, for every place that takes one by
// name: the rules file, the command line, its --help and its completion.
func Balances() []Balance { return []Balance{First, RoundRobin} }

// ParseBalance reads a balance by name, in any case.
func ParseBalance(s string) (Balance, error) {
	b := Balance(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(Balances(), b) {
		return b, nil
	}
	return "", fmt.Errorf("want %s", orList(Balances()))
}

// ProxyVersions are the PROXY protocol versions by the names
// ParseProxyVersion reads first (it takes "1" and "2" too).
func ProxyVersions() []string { return []string{"v1", "v2"} }

// LogFormats are the forms of a log line, as the rules file's log_format
// and the command line's --log-format name them.
func LogFormats() []string { return []string{"text", "json"} }

// orList writes words as "a or b", "a, b or c".
func orList[T ~string](words []T) string {
	s := make([]string, len(words))
	for i, w := range words {
		s[i] = string(w)
	}
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// Defaults applied by Rule.WithDefaults. They are chosen to hold under
// abuse with no setting at all, as HAProxy's and nginx's stream module are
// expected to be configured: a client that goes quiet does not hold its
// slot forever, and one client address cannot take every slot.
const (
	DefaultConnectTimeout = 5 * time.Second
	// DefaultTCPIdleTimeout is nginx's proxy_timeout default.
	DefaultTCPIdleTimeout = 10 * time.Minute
	DefaultUDPIdleTimeout = 60 * time.Second
	DefaultMaxSessions    = 10000
	// DefaultMaxConnsPerSource bounds one client address when MaxConns
	// does not bound it lower (see DefaultPerSource): far above what a
	// browser (6 per host) or a connection pool opens, far below the
	// descriptors a process has, so one address cannot exhaust them.
	DefaultMaxConnsPerSource = 256
)

// NoLimit switches off a bound or timeout that has a default
// (IdleTimeout, MaxConnsPerSource); 0 takes the default. A config file and
// the command line write it as 0.
const NoLimit = -1

// DefaultPerSource is the per-client-address bound of a TCP rule that sets
// none: DefaultMaxConnsPerSource, or a quarter of maxConns (at least 1)
// when that is lower, so that with max_conns alone at least four client
// addresses share the slots instead of one taking them all.
func DefaultPerSource(maxConns int) int {
	if maxConns > 0 {
		return min(DefaultMaxConnsPerSource, max(1, maxConns/4))
	}
	return DefaultMaxConnsPerSource
}

// Rule is one forwarding rule. The field comments give the key of the same
// name in a config file.
type Rule struct {
	Name     string   // name: label in logs and metrics; default "PROTO/LISTEN"
	Protocol Protocol // protocol: tcp (default) or udp
	Listen   string   // listen: [host]:port; port 0 picks a free port
	Targets  []string // targets: host:port each; host names resolve per dial
	Balance  Balance  // balance: first (default) or round-robin

	ConnectTimeout time.Duration // connect_timeout: per target dial (TCP)
	// IdleTimeout closes a TCP connection after this long with no bytes in
	// either direction (default 10 min) and ends a UDP session (default
	// 60 s); NoLimit: never.
	IdleTimeout time.Duration // idle_timeout

	MaxConns int // max_conns: TCP connections at once (0: no bound)
	// MaxConnsPerSource bounds a client address's TCP connections at once
	// (default DefaultPerSource(MaxConns); NoLimit: no bound).
	MaxConnsPerSource int // max_conns_per_source
	MaxSessions       int // max_sessions: UDP sessions (default 10,000)

	// Allow and Deny are checked against the client's address before any
	// target is dialled: a match in Deny refuses; a non-empty Allow refuses
	// every address outside it.
	Allow []netip.Prefix // allow
	Deny  []netip.Prefix // deny

	ProxyProtocol int // proxy_protocol: send a PROXY header v1 or v2 to the target (0: none)
	// AcceptProxyProtocol reads a PROXY header (v1 or v2) from each client
	// and takes the client address from it. Only TrustedProxies may send
	// one; it is required from them.
	AcceptProxyProtocol bool           // accept_proxy_protocol
	TrustedProxies      []netip.Prefix // trusted_proxies
}

// FieldError is a rule field with a bad value. Field is the config key.
type FieldError struct {
	Rule  string // the rule's name or listen address
	Field string
	Value string
	Err   error
}

func (e *FieldError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("rule %s: %s: %v", e.Rule, e.Field, e.Err)
	}
	return fmt.Sprintf("rule %s: %s %q: %v", e.Rule, e.Field, e.Value, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// BadInput marks the error as the user's input, not the system's.
func (e *FieldError) BadInput() bool { return true }

// ParseProtoListen splits the command line's "[PROTO/]LISTEN" into its parts:
// "udp/127.0.0.1:5353", "tcp/:8080", ":8080", or a bare port "8080" (every
// address).
func ParseProtoListen(s string) (Protocol, string, error) {
	proto := TCP
	if p, rest, ok := strings.Cut(s, "/"); ok {
		switch strings.ToLower(p) {
		case "tcp":
		case "udp":
			proto = UDP
		default:
			return "", "", &FieldError{Rule: s, Field: "protocol", Value: p, Err: errors.New("want tcp or udp")}
		}
		s = rest
	}
	if _, err := strconv.ParseUint(s, 10, 16); err == nil {
		s = ":" + s
	}
	if err := checkHostPort(s, true); err != nil {
		return "", "", &FieldError{Rule: s, Field: "listen", Value: s, Err: err}
	}
	return proto, s, nil
}

// WithDefaults returns the rule with its unset fields given their defaults.
func (r Rule) WithDefaults() Rule {
	if r.Protocol == "" {
		r.Protocol = TCP
	}
	if r.Balance == "" {
		r.Balance = First
	}
	if r.Name == "" {
		r.Name = string(r.Protocol) + "/" + r.Listen
	}
	if r.ConnectTimeout == 0 {
		r.ConnectTimeout = DefaultConnectTimeout
	}
	if r.Protocol == UDP {
		if r.IdleTimeout == 0 {
			r.IdleTimeout = DefaultUDPIdleTimeout
		}
		if r.MaxSessions == 0 {
			r.MaxSessions = DefaultMaxSessions
		}
		return r
	}
	if r.IdleTimeout == 0 {
		r.IdleTimeout = DefaultTCPIdleTimeout
	}
	if r.MaxConnsPerSource == 0 {
		r.MaxConnsPerSource = DefaultPerSource(r.MaxConns)
	}
	return r
}

// Validate checks every field and returns the first bad one as a
// *FieldError.
func (r Rule) Validate() error {
	label := r.Name
	if label == "" {
		label = r.Listen
	}
	bad := func(field, value string, err error) error {
		return &FieldError{Rule: label, Field: field, Value: value, Err: err}
	}
	switch r.Protocol {
	case "", TCP, UDP:
	default:
		return bad("protocol", string(r.Protocol), errors.New("want tcp or udp"))
	}
	if strings.IndexFunc(r.Name, unicode.IsControl) >= 0 {
		return bad("name", r.Name, errors.New("control characters would garble logs and metrics"))
	}
	if r.Listen == "" {
		return bad("listen", "", errors.New("missing"))
	}
	if err := checkHostPort(r.Listen, true); err != nil {
		return bad("listen", r.Listen, err)
	}
	if len(r.Targets) == 0 {
		return bad("targets", "", errors.New("at least one target is needed"))
	}
	for _, t := range r.Targets {
		if err := checkHostPort(t, false); err != nil {
			return bad("targets", t, err)
		}
	}
	if r.Balance != "" && !slices.Contains(Balances(), r.Balance) {
		return bad("balance", string(r.Balance), fmt.Errorf("want %s", orList(Balances())))
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"connect_timeout", r.ConnectTimeout}, {"idle_timeout", r.IdleTimeout}} {
		if d.v < 0 && !(d.field == "idle_timeout" && d.v == NoLimit) {
			return bad(d.field, d.v.String(), errors.New("must not be negative"))
		}
	}
	for _, n := range []struct {
		field string
		v     int
	}{{"max_conns", r.MaxConns}, {"max_conns_per_source", r.MaxConnsPerSource}, {"max_sessions", r.MaxSessions}} {
		if n.v < 0 && !(n.field == "max_conns_per_source" && n.v == NoLimit) {
			return bad(n.field, strconv.Itoa(n.v), errors.New("must not be negative"))
		}
	}
	if r.ProxyProtocol != 0 && r.ProxyProtocol != 1 && r.ProxyProtocol != 2 {
		return bad("proxy_protocol", strconv.Itoa(r.ProxyProtocol), errors.New("want v1 or v2"))
	}
	if r.Protocol == UDP {
		if r.ProxyProtocol != 0 || r.AcceptProxyProtocol {
			return bad("proxy_protocol", "", errors.New("PROXY protocol is for TCP rules, not udp"))
		}
		if r.MaxConns != 0 || r.MaxConnsPerSource != 0 {
			return bad("max_conns", "", errors.New("UDP rules bound sessions with max_sessions, not connections"))
		}
	}
	if r.AcceptProxyProtocol && len(r.TrustedProxies) == 0 {
		return bad("trusted_proxies", "", errors.New("accept_proxy_protocol needs the addresses of the trusted load balancers"))
	}
	if len(r.TrustedProxies) > 0 && !r.AcceptProxyProtocol {
		// Believed headers are only read with accept_proxy_protocol: alone,
		// the list would do nothing while seeming to.
		return bad("trusted_proxies", "", errors.New("trusted_proxies means nothing without accept_proxy_protocol = true"))
	}
	return nil
}

func checkHostPort(s string, listen bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("want host:port")
	}
	if !listen && host == "" {
		return errors.New("the target needs a host")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || (n == 0 && !listen) {
		return fmt.Errorf("bad port %q", port)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("bad host %q", host)
	}
	return nil
}

// ParsePrefix reads a CIDR block for allow, deny and trusted_proxies; a bare
// address is a block of one (/32 or /128). IPv4-mapped IPv6 is read as the
// IPv4 it maps, as client addresses are matched unmapped.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad CIDR %q: %s", s, strings.TrimPrefix(err.Error(), "netip.ParsePrefix("+strconv.Quote(s)+"): "))
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		// 10.1.2.3/8 matches what 10.0.0.0/8 matches; keep the plain
		// spelling for logs.
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad address %q: %s", s, strings.TrimPrefix(err.Error(), "ParseAddr("+strconv.Quote(s)+"): "))
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("bad address %q: an address to match clients cannot have a zone", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ParseProxyVersion reads a PROXY protocol version: a name of
// ProxyVersions ("v1", "v2") or its number ("1", "2").
func ParseProxyVersion(s string) (int, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	for i, name := range ProxyVersions() {
		if v == name || v == strings.TrimPrefix(name, "v") {
			return i + 1, nil
		}
	}
	return 0, fmt.Errorf("bad PROXY protocol version %q (want %s)", s, orList(ProxyVersions()))
}
