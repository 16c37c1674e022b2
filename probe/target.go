package probe

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Kind is what a Target is reached by.
type Kind uint8

const (
	TCP  Kind = iota + 1 // a TCP connect to Host:Port
	Unix                 // a connect to the Unix socket at Path
	HTTP                 // a GET of URL (http or https), after a TCP connect to Host:Port
)

func (k Kind) String() string {
	switch k {
	case TCP:
		return "tcp"
	case Unix:
		return "unix"
	case HTTP:
		return "http"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// MarshalText writes the kind as its name, for JSON output.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Target is something to check. Build it with ParseTarget; a Target is
// comparable, so it can key a map.
type Target struct {
	Kind Kind
	// Host is a name or an IP literal (IPv6 without brackets, perhaps with a
	// zone) and Port the port, for TCP and HTTP targets; an HTTP URL without
	// a port gets its scheme's (80, 443).
	Host string
	Port uint16
	// Path is the socket of a Unix target.
	Path string
	// URL is the URL of an HTTP target, as given.
	URL string
}

// String is the target in a form ParseTarget reads back to the same Target.
func (t Target) String() string {
	switch t.Kind {
	case Unix:
		if strings.HasPrefix(t.Path, "//") {
			return "unix://" + t.Path // "unix:" would read as unix://host/…
		}
		return "unix:" + t.Path
	case HTTP:
		return t.URL
	}
	return net.JoinHostPort(t.Host, strconv.Itoa(int(t.Port)))
}

// TargetError is a target that cannot be read. It is the caller's input
// that is wrong.
type TargetError struct {
	Input  string
	Reason string
}

func (e *TargetError) Error() string { return fmt.Sprintf("bad target %q: %s", e.Input, e.Reason) }

// BadInput marks the error as the user's input being wrong.
func (e *TargetError) BadInput() bool { return true }

// ParseTarget reads a target:
//
//	host:port, [v6]:port, tcp://host:port   TCP
//	unix:/path, unix:///path, unix:relative  Unix socket
//	http://host[:port]/…, https://…          HTTP GET
//
// Ports are numbers from 1 to 65535. A leading "unix:" always means a Unix
// socket, never a host named unix. Schemes are matched without regard to
// case.
func ParseTarget(s string) (Target, error) {
	bad := func(reason string) (Target, error) {
		return Target{}, &TargetError{Input: s, Reason: reason}
	}
	if s == "" {
		return bad("empty")
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
		return bad("control character at byte " + strconv.Itoa(i))
	}
	if len(s) >= 5 && strings.EqualFold(s[:5], "unix:") {
		path := s[5:]
		if rest, ok := strings.CutPrefix(path, "//"); ok {
			if !strings.HasPrefix(rest, "/") {
				return bad("unix:// takes an absolute path (unix:///path); unix:path for a relative one")
			}
			path = rest
		}
		if path == "" {
			return bad("missing socket path")
		}
		return Target{Kind: Unix, Path: path}, nil
	}
	if scheme, rest, ok := strings.Cut(s, "://"); ok && isScheme(scheme) {
		switch strings.ToLower(scheme) {
		case "tcp":
			return parseHostPort(strings.TrimSuffix(rest, "/"), bad)
		case "http", "https":
			return parseURL(s, bad)
		}
		return bad("unknown scheme " + strconv.Quote(scheme) + "; want tcp, unix, http or https")
	}
	return parseHostPort(s, bad)
}

// isScheme reports whether s has the shape of a URL scheme (RFC 3986), so
// that "://" further into a target is not taken for one.
func isScheme(s string) bool {
	for i, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || i > 0 && ('0' <= r && r <= '9' || r == '+' || r == '-' || r == '.')) {
			return false
		}
	}
	return s != ""
}

func parseHostPort(hostport string, bad func(string) (Target, error)) (Target, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return bad(ae.Err)
		}
		return bad(err.Error())
	}
	t := Target{Kind: TCP, Host: host}
	if reason := checkHost(host); reason != "" {
		return bad(reason)
	}
	if t.Port, err = parsePort(port); err != nil {
		return bad(err.Error())
	}
	return t, nil
}

func parseURL(s string, bad func(string) (Target, error)) (Target, error) {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return bad(err.Error())
	}
	if u.Opaque != "" {
		return bad("missing // after the scheme")
	}
	t := Target{Kind: HTTP, Host: u.Hostname(), URL: s}
	if reason := checkHost(t.Host); reason != "" {
		return bad(reason)
	}
	switch p := u.Port(); {
	case p != "":
		if t.Port, err = parsePort(p); err != nil {
			return bad(err.Error())
		}
	case u.Scheme == "https":
		t.Port = 443
	default:
		t.Port = 80
	}
	return t, nil
}

func parsePort(s string) (uint16, error) {
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil || p == 0 || s[0] == '+' {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return uint16(p), nil
}

// checkHost says what is wrong with a host, or "" if nothing is: it must be
// an IP literal or a name made of letters, digits, '-', '_' and '.'.
func checkHost(h string) string {
	switch {
	case h == "":
		return "missing host"
	case strings.Contains(h, ":"):
		if _, err := netip.ParseAddr(h); err != nil {
			return "bad IPv6 address " + strconv.Quote(h)
		}
		return ""
	case len(h) > 254:
		return "host name longer than 254 bytes"
	}
	for _, r := range h {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Sprintf("bad character %q in host %q", r, h)
		}
	}
	return ""
}
