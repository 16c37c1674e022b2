// Package access reads fwknop's access.conf: the stanzas that say which
// sources may knock, with which keys, to open which ports, so that an
// existing fwknopd configuration works with portkit's knockd unchanged.
//
// Parse returns []Stanza. Stanza holds plain values (addresses, ports,
// key bytes, durations), not access.conf text, so that another format (a
// TOML file) can fill the same type through ParseSource, ParseOpenPorts
// and Stanza.Check.
package access

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/portkit/portkit/knock/spa"
)

// DefaultFWAccessTimeout is how long an opening lasts when a stanza does
// not say (fwknopd's default).
const DefaultFWAccessTimeout = 30 * time.Second

// MaxFWAccessTimeout is the longest FW_ACCESS_TIMEOUT fwknopd takes.
const MaxFWAccessTimeout = (2 << 22) * time.Second

// MaxLineLen bounds a line of the file (fwknop's is 1024 bytes).
const MaxLineLen = 4096

// maxErrors bounds the errors one Parse reports.
const maxErrors = 50

// Stanza is one access rule: packets from Source, under Keys, may open
// OpenPorts for FWAccessTimeout.
type Stanza struct {
	File string // where the stanza was read; empty when not from a file
	Line int    // the line of its SOURCE

	// SourceAny is SOURCE ANY: every source address matches.
	SourceAny bool
	// Source are the addresses and networks a packet may come from.
	Source []netip.Prefix
	// OpenPorts are the ports a packet may ask for. Empty means any
	// port, as in fwknopd.
	OpenPorts []spa.ProtoPort
	// Keys are the Rijndael and HMAC keys, and the HMAC's digest.
	Keys spa.Keys
	// FWAccessTimeout is how long the opening lasts.
	FWAccessTimeout time.Duration
	// RequireSourceAddress refuses packets asking for 0.0.0.0 (the
	// source address) rather than naming the address to let in.
	RequireSourceAddress bool
}

// Matches reports whether addr is one of the stanza's sources.
func (s *Stanza) Matches(addr netip.Addr) bool {
	if s.SourceAny {
		return true
	}
	addr = addr.Unmap()
	for _, p := range s.Source {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Allows reports whether the stanza lets p be opened.
func (s *Stanza) Allows(p spa.ProtoPort) bool {
	if len(s.OpenPorts) == 0 {
		return true
	}
	for _, o := range s.OpenPorts {
		if o == p {
			return true
		}
	}
	return false
}

// Check tells what a complete stanza lacks: a source, both keys.
func (s *Stanza) Check() error {
	switch {
	case !s.SourceAny && len(s.Source) == 0:
		return errors.New("no SOURCE")
	case len(s.Keys.Encryption) == 0:
		return errors.New("no KEY or KEY_BASE64")
	case len(s.Keys.Encryption) > spa.MaxEncryptionKeyLen:
		return fmt.Errorf("the encryption key is %d bytes, at most %d", len(s.Keys.Encryption), spa.MaxEncryptionKeyLen)
	case len(s.Keys.HMAC) == 0:
		return errors.New("no HMAC_KEY or HMAC_KEY_BASE64 (portkit requires an HMAC)")
	case len(s.Keys.HMAC) > spa.MaxHMACKeyLen:
		return fmt.Errorf("the HMAC key is %d bytes, at most %d", len(s.Keys.HMAC), spa.MaxHMACKeyLen)
	case s.FWAccessTimeout <= 0 || s.FWAccessTimeout > MaxFWAccessTimeout:
		return fmt.Errorf("FW_ACCESS_TIMEOUT %v is not 1s to %v", s.FWAccessTimeout, MaxFWAccessTimeout)
	}
	return nil
}

// The kinds of error of Parse.
var (
	ErrUnknownKey  = errors.New("unknown key")
	ErrUnsupported = errors.New("not supported by portkit")
	ErrSyntax      = errors.New("syntax error")
	ErrValue       = errors.New("bad value")
	ErrStanza      = errors.New("incomplete stanza")
)

// Error is one problem of the file, at File:Line.
type Error struct {
	File string
	Line int
	Key  string // the variable, when the line has one
	Err  error
}

func (e *Error) Error() string {
	if e.Key != "" {
		return fmt.Sprintf("%s:%d: %s: %v", e.File, e.Line, e.Key, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// fwknopOnly tells the access.conf variables fwknopd knows that portkit
// does not implement: reported as such, not as unknown.
func fwknopOnly(key string) bool {
	switch key {
	case "%include", "%include_folder", "%include_keys",
		"DESTINATION", "RESTRICT_PORTS", "MAX_FW_TIMEOUT",
		"ENABLE_CMD_EXEC", "ENABLE_CMD_SUDO_EXEC", "CMD_SUDO_EXEC_USER",
		"CMD_SUDO_EXEC_GROUP", "CMD_EXEC_USER", "CMD_EXEC_GROUP",
		"CMD_CYCLE_OPEN", "CMD_CYCLE_CLOSE", "CMD_CYCLE_TIMER",
		"REQUIRE_USERNAME", "GPG_HOME_DIR", "GPG_EXE", "GPG_DECRYPT_ID",
		"GPG_DECRYPT_PW", "GPG_ALLOW_NO_PW", "GPG_REQUIRE_SIG",
		"GPG_DISABLE_SIG", "GPG_IGNORE_SIG_VERIFY_ERROR", "GPG_REMOTE_ID",
		"GPG_FINGERPRINT_ID", "ACCESS_EXPIRE", "ACCESS_EXPIRE_EPOCH",
		"FORCE_NAT", "FORCE_SNAT", "FORCE_MASQUERADE", "DISABLE_DNAT",
		"FORWARD_ALL":
		return true
	}
	return false
}

// ParseFile reads the access.conf at path.
func ParseFile(path string) ([]Stanza, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse reads an access.conf from r; name is the file's name in errors.
// Lines are "VARIABLE value", the value ending at a ';' or the line's
// end; lines beginning with '#' or ';' are comments; each SOURCE line
// begins a new stanza. Every problem found is reported (errors.Join of
// *Error values, at most 50), and no stanza is returned with them.
func Parse(r io.Reader, name string) ([]Stanza, error) {
	p := &parser{name: name}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), MaxLineLen)
	for sc.Scan() && len(p.errs) < maxErrors {
		p.line++
		p.parseLine(sc.Text())
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("%w: line longer than %d bytes", ErrSyntax, MaxLineLen)
		}
		p.errs = append(p.errs, &Error{File: name, Line: p.line + 1, Err: err})
	}
	p.finish()
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return p.stanzas, nil
}

type parser struct {
	name    string
	line    int
	stanzas []Stanza
	cur     *Stanza
	// set notes the variables the current stanza has given, to refuse
	// contradictions (KEY and KEY_BASE64) and repeats.
	set map[string]int
	// curBad: the current stanza's SOURCE was wrong, already told.
	curBad bool
	errs   []error
}

func (p *parser) fail(key string, kind error, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.name, Line: p.line, Key: key, Err: fmt.Errorf("%w: "+format, append([]any{kind}, args...)...)})
}

func (p *parser) parseLine(text string) {
	text = strings.TrimRight(text, "\r")
	trimmed := strings.TrimLeft(text, " \t")
	if trimmed == "" || trimmed[0] == '#' || trimmed[0] == ';' {
		return
	}
	key, val := trimmed, ""
	if i := strings.IndexAny(trimmed, " \t"); i >= 0 {
		key, val = trimmed[:i], trimmed[i+1:]
	}
	key = strings.TrimSuffix(key, ":")
	if i := strings.IndexByte(val, ';'); i >= 0 {
		val = val[:i]
	}
	val = strings.TrimSpace(val)
	if val == "" {
		p.fail(key, ErrSyntax, "no value")
		return
	}
	if key == "SOURCE" {
		p.finish()
		p.stanzas = append(p.stanzas, Stanza{File: p.name, Line: p.line, FWAccessTimeout: DefaultFWAccessTimeout})
		p.cur = &p.stanzas[len(p.stanzas)-1]
		p.set = map[string]int{}
		anySource, prefixes, err := ParseSource(val)
		if err != nil {
			p.fail(key, ErrValue, "%v", err)
			p.curBad = true
			return
		}
		p.cur.SourceAny, p.cur.Source = anySource, prefixes
		return
	}
	if fwknopOnly(key) {
		p.fail(key, ErrUnsupported, "fwknopd's %s is not implemented", key)
		return
	}
	switch key {
	case "OPEN_PORTS", "KEY", "KEY_BASE64", "HMAC_KEY", "HMAC_KEY_BASE64", "HMAC_DIGEST_TYPE",
		"FW_ACCESS_TIMEOUT", "REQUIRE_SOURCE_ADDRESS", "REQUIRE_SOURCE", "ENCRYPTION_MODE":
	default:
		p.fail(key, ErrUnknownKey, "%q", key)
		return
	}
	if p.cur == nil {
		p.fail(key, ErrSyntax, "before the first SOURCE line")
		return
	}
	canon := key
	switch key {
	case "KEY_BASE64":
		canon = "KEY"
	case "HMAC_KEY_BASE64":
		canon = "HMAC_KEY"
	case "REQUIRE_SOURCE":
		canon = "REQUIRE_SOURCE_ADDRESS"
	}
	if at, ok := p.set[canon]; ok {
		p.fail(key, ErrSyntax, "given again (first at line %d)", at)
		return
	}
	p.set[canon] = p.line
	s := p.cur
	if strings.EqualFold(val, "__CHANGEME__") {
		p.fail(key, ErrValue, "still __CHANGEME__")
		return
	}
	switch key {
	case "OPEN_PORTS":
		ports, err := ParseOpenPorts(val)
		if err != nil {
			p.fail(key, ErrValue, "%v", err)
			return
		}
		s.OpenPorts = ports
	case "KEY":
		s.Keys.Encryption = []byte(val)
	case "HMAC_KEY":
		s.Keys.HMAC = []byte(val)
	case "KEY_BASE64", "HMAC_KEY_BASE64":
		b, err := spa.DecodeKeyBase64(val)
		if err != nil {
			p.fail(key, ErrValue, "not base64")
			return
		}
		if key == "KEY_BASE64" {
			s.Keys.Encryption = b
		} else {
			s.Keys.HMAC = b
		}
	case "HMAC_DIGEST_TYPE":
		d, err := spa.ParseDigest(val)
		if err != nil {
			p.fail(key, ErrValue, "%v", err)
			return
		}
		s.Keys.HMACDigest = d
	case "FW_ACCESS_TIMEOUT":
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil || n == 0 || time.Duration(n)*time.Second > MaxFWAccessTimeout {
			p.fail(key, ErrValue, "%q is not 1 to %d seconds", val, int64(MaxFWAccessTimeout/time.Second))
			return
		}
		s.FWAccessTimeout = time.Duration(n) * time.Second
	case "REQUIRE_SOURCE_ADDRESS", "REQUIRE_SOURCE":
		b, ok := parseBool(val)
		if !ok {
			p.fail(key, ErrValue, "%q is not Y or N", val)
			return
		}
		s.RequireSourceAddress = b
	case "ENCRYPTION_MODE":
		if !strings.EqualFold(val, "CBC") {
			p.fail(key, ErrUnsupported, "mode %q (portkit speaks CBC only)", val)
		}
	}
}

// finish checks the stanza just read.
func (p *parser) finish() {
	if p.cur == nil {
		return
	}
	if err := p.cur.Check(); err != nil && !p.curBad {
		p.errs = append(p.errs, &Error{File: p.name, Line: p.cur.Line, Key: "SOURCE", Err: fmt.Errorf("%w: %v", ErrStanza, err)})
	}
	p.cur, p.curBad = nil, false
}

// parseBool takes fwknop's Y and N, and yes and no, in any case.
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "y", "yes":
		return true, true
	case "n", "no":
		return false, true
	}
	return false, false
}

// ParseSource parses a SOURCE value: ANY, or addresses and networks
// (CIDR) separated by commas or spaces.
func ParseSource(s string) (anySource bool, prefixes []netip.Prefix, err error) {
	if strings.EqualFold(strings.TrimSpace(s), "ANY") {
		return true, nil, nil
	}
	for f := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		var p netip.Prefix
		if strings.Contains(f, "/") {
			p, err = netip.ParsePrefix(f)
			p = p.Masked()
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(f)
			if err == nil && a.Zone() != "" {
				err = errors.New("zone not allowed")
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if err != nil {
			return false, nil, fmt.Errorf("source %q: not an address or network", f)
		}
		prefixes = append(prefixes, p)
	}
	if len(prefixes) == 0 {
		return false, nil, errors.New("no address")
	}
	return false, prefixes, nil
}

// ParseOpenPorts parses an OPEN_PORTS value: proto/port entries
// separated by commas (and spaces).
func ParseOpenPorts(s string) ([]spa.ProtoPort, error) {
	var ports []spa.ProtoPort
	for f := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		p, err := spa.ParseProtoPort(f)
		if err != nil {
			return nil, err
		}
		ports = append(ports, p)
	}
	if len(ports) == 0 {
		return nil, errors.New("no port")
	}
	return ports, nil
}
