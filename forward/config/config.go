// Package config reads a forwarding rules file, in TOML, into forward.Rules.
//
// A file holds optional global keys, an optional [defaults] table, and one
// [[rule]] table per rule:
//
//	# Globals: before the first [table] line, or TOML puts them in that table.
//	drain_timeout = "30s"          # bound on draining connections at SIGTERM or when a rule goes
//	log_format = "text"            # "text" or "json"
//	metrics = "127.0.0.1:9100"     # Prometheus listen address
//
//	[defaults]                     # any rule key but name, listen and targets
//	connect_timeout = "3s"
//	max_conns = 1000
//
//	[[rule]]
//	name = "web"                   # default "PROTO/LISTEN", e.g. "tcp/:8080"
//	listen = ":8080"               # [host]:port, or a bare port
//	protocol = "tcp"               # "tcp" (default) or "udp"
//	targets = ["10.1.2.3:80", "[2001:db8::1]:80"]
//	balance = "round-robin"        # "first" (default) or "round-robin"
//	connect_timeout = "3s"
//	idle_timeout = "5m"            # default 10m (TCP), 60s (UDP); "0s": never
//	max_conns = 1000
//	max_conns_per_source = 50      # default 256, or max_conns/4 if lower; 0: no bound
//	allow = ["10.0.0.0/8", "2001:db8::/32"]   # a bare address is a /32 or /128
//	deny = ["10.9.0.0/16"]
//	proxy_protocol = "v2"          # "v1", "v2" (or 1, 2); "none" or 0 turns a default off
//	accept_proxy_protocol = true
//	trusted_proxies = ["10.0.0.5"]
//
//	[[rule]]
//	listen = "127.0.0.1:5353"
//	protocol = "udp"
//	targets = ["10.1.2.53:53"]
//	max_sessions = 10000
//
// The rule keys are those of forward.Rule's field comments. Durations are
// strings that time.ParseDuration reads ("3s", "5m", "1h30m") and must not
// be negative; counts are integers; allow, deny and trusted_proxies hold
// CIDRs or bare addresses. The protocol is its own key: listen does not take
// the command line's "udp/ADDR" form, though a bare port means every address
// as it does there. Only listen and targets are required. For idle_timeout
// and max_conns_per_source, which have defaults that bound a client (see
// forward.DefaultTCPIdleTimeout, forward.DefaultPerSource), 0 switches the
// bound off (forward.NoLimit); leaving the key out takes the default.
// trusted_proxies is refused in a rule without accept_proxy_protocol; in
// [defaults] it applies to the rules that accept headers.
//
// A key in [defaults] applies to every rule that does not set the key
// itself; a rule overrides it with its own value, for instance
// proxy_protocol = "none" or max_conns = 0. The keys that one protocol alone
// uses (max_conns, max_conns_per_source, proxy_protocol,
// accept_proxy_protocol and trusted_proxies for TCP; max_sessions for UDP)
// apply only to the rules of that protocol, so that a TCP default does not
// make every UDP rule invalid.
//
// Any problem fails the whole file, because a forwarder that started with
// some of its rules would quietly not forward the others. The error is an
// *Error, or an errors.Join of them in line order, each naming the file,
// the line and the key: TOML syntax errors, unknown keys (with a suggestion
// for a near miss), values of the wrong type, bad durations, addresses and
// CIDRs, everything forward.Rule.Validate rejects, duplicate rule names, and
// two rules on one protocol and address. Keys in messages number the rules
// from 0 in file order, as in rule[0].listen.
//
// testdata/example.toml is a complete file.
package config

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/portkit/portkit/forward"
)

// File is a rules file that passed every check.
type File struct {
	Path         string
	Rules        []forward.Rule // in file order, WithDefaults applied, Validate passed
	DrainTimeout *time.Duration // nil if absent; 0 closes connections at once
	LogFormat    string         // "text", "json", or "" if absent
	Metrics      string         // Prometheus listen address; "" if absent
}

// ErrNoRules is wrapped by the error of a file that defines no [[rule]].
var ErrNoRules = errors.New("no [[rule]]: the file defines no forwarding rule")

// Error is one problem in a rules file.
type Error struct {
	Path string
	Line int    // from 1; 0 when the problem is the file as a whole
	Key  string // the key as a path, e.g. "rule[1].allow" or "defaults.max_conns"; "" if none
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// BadInput marks the error as the user's input being wrong.
func (e *Error) BadInput() bool { return true }

// Load reads and parses the rules file at path. A file that cannot be read
// gives the *os.PathError; a file with problems gives what Parse does.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse parses a rules file's contents; path names the file in messages.
// It returns a File only when the whole file is right.
func Parse(path string, data []byte) (*File, error) {
	// go-toml's decoder enforces all of TOML (duplicate keys, tables defined
	// twice, malformed numbers), which its position-keeping parser leaves to
	// its caller; decoding first means buildTree only meets valid TOML.
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		return nil, syntaxError(path, err)
	}
	root, line, err := buildTree(data)
	if err != nil {
		return nil, &Error{Path: path, Line: line, Err: err}
	}
	l := &loader{path: path}
	f := l.file(root)
	if err := l.err(); err != nil {
		return nil, err
	}
	f.Path = path
	return f, nil
}

// syntaxError turns go-toml's error into an *Error with the line.
func syntaxError(path string, err error) error {
	var de *toml.DecodeError
	if !errors.As(err, &de) {
		return &Error{Path: path, Err: err}
	}
	line, col := de.Position()
	// de.Key is the TOML key ("listen"), not this package's path to it
	// ("rule[1].listen"); the message names it where it matters.
	return &Error{
		Path: path,
		Line: line,
		Err:  fmt.Errorf("%s (column %d)", strings.TrimPrefix(de.Error(), "toml: "), col),
	}
}

// loader collects the problems of one file.
type loader struct {
	path string
	errs []*Error
}

func (l *loader) fail(line int, key string, err error) {
	l.errs = append(l.errs, &Error{Path: l.path, Line: line, Key: key, Err: err})
}

func (l *loader) failf(line int, key, format string, args ...any) {
	l.fail(line, key, fmt.Errorf(format, args...))
}

// err returns nil, the one *Error, or all of them joined in line order.
func (l *loader) err() error {
	switch len(l.errs) {
	case 0:
		return nil
	case 1:
		return l.errs[0]
	}
	// A problem with no line concerns the whole file: it goes last.
	sort.SliceStable(l.errs, func(i, j int) bool {
		a, b := l.errs[i].Line, l.errs[j].Line
		if a == 0 || b == 0 {
			return b == 0 && a != 0
		}
		return a < b
	})
	errs := make([]error, len(l.errs))
	for i, e := range l.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}
