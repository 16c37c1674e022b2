package knock

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/portkit/portkit/knock/access"
	"github.com/portkit/portkit/knock/replay"
	"github.com/portkit/portkit/knock/spa"
)

// DefaultSPAPort is fwknopd's UDP port.
const DefaultSPAPort = 62201

// Config is what the server acts on: SPA rules and knock doors. Build it
// with LoadConfig (a TOML file), from fwknop's access.conf with
// SPARulesFromAccess, or by hand.
type Config struct {
	// SPAPort is the UDP port SPA packets are sent to; 0 takes no SPA.
	SPAPort    uint16
	SPA        []SPARule
	Doors      []*Door
	MaxSources int // DefaultMaxSources when 0
}

// SPARule is an access.Stanza with the age a packet may have.
type SPARule struct {
	access.Stanza
	MaxAge time.Duration // replay.DefaultMaxAge when 0
	// Name says where the rule was read, for the log: "file:line" of an
	// access.conf stanza, "file spa[N]" of a TOML one.
	Name string
}

// SPARulesFromAccess makes rules of fwknop's stanzas.
func SPARulesFromAccess(st []access.Stanza) []SPARule {
	rules := make([]SPARule, len(st))
	for i, s := range st {
		rules[i] = SPARule{Stanza: s, Name: fmt.Sprintf("%s:%d", s.File, s.Line)}
	}
	return rules
}

// ConfigError is a problem of a config file: the file, the line when
// known, the key ("spa[1].open_ports") when known.
type ConfigError struct {
	Path string
	Line int
	Key  string
	Err  error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

// BadInput marks the error as the user's input being wrong.
func (e *ConfigError) BadInput() bool { return true }

type tomlFile struct {
	SPAPort    *int       `toml:"spa_port"`
	MaxSources int        `toml:"max_sources"`
	SPA        []tomlSPA  `toml:"spa"`
	Sequence   []tomlDoor `toml:"sequence"`
}

type tomlSPA struct {
	Source               []string `toml:"source"`
	OpenPorts            []string `toml:"open_ports"`
	KeyBase64            string   `toml:"key_base64"`
	HMACKeyBase64        string   `toml:"hmac_key_base64"`
	HMACDigest           string   `toml:"hmac_digest"`
	AccessTimeout        string   `toml:"access_timeout"`
	RequireSourceAddress bool     `toml:"require_source_address"`
	MaxAge               string   `toml:"max_age"`
}

type tomlDoor struct {
	Name             string    `toml:"name"`
	Source           []string  `toml:"source"`
	Sequence         string    `toml:"sequence"`
	OneTimeSequences string    `toml:"one_time_sequences"`
	TOTP             *tomlTOTP `toml:"totp"`
	SeqTimeout       string    `toml:"seq_timeout"`
	OpenPorts        []string  `toml:"open_ports"`
	AccessTimeout    string    `toml:"access_timeout"`
}

type tomlTOTP struct {
	SecretBase64 string `toml:"secret_base64"`
	Ports        string `toml:"ports"`
	Length       int    `toml:"length"`
	Step         string `toml:"step"`
	Proto        string `toml:"proto"`
}

// LoadConfig reads a TOML config file (docs/KNOCK.md describes it).
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(path, data)
}

// ParseConfig parses a config file's contents; path names it in errors
// and is where relative file names in it start from. It returns a Config
// only when the whole file is right; otherwise every problem found,
// joined.
func ParseConfig(path string, data []byte) (*Config, error) {
	var f tomlFile
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, tomlError(path, err)
	}
	l := &loader{path: path, dir: filepath.Dir(path)}
	cfg := &Config{SPAPort: DefaultSPAPort, MaxSources: f.MaxSources}
	if f.SPAPort != nil {
		if *f.SPAPort < 0 || *f.SPAPort > 65535 {
			l.failf("spa_port", "%d is not 0-65535", *f.SPAPort)
		} else {
			cfg.SPAPort = uint16(*f.SPAPort)
		}
	}
	if f.MaxSources < 0 {
		l.failf("max_sources", "%d is negative", f.MaxSources)
	}
	for i, s := range f.SPA {
		if r, ok := l.spaRule(fmt.Sprintf("spa[%d]", i+1), s); ok {
			cfg.SPA = append(cfg.SPA, r)
		}
	}
	for i, d := range f.Sequence {
		if door := l.door(fmt.Sprintf("sequence[%d]", i+1), d); door != nil {
			cfg.Doors = append(cfg.Doors, door)
		}
	}
	if len(f.SPA) == 0 && len(f.Sequence) == 0 {
		l.failf("", "no [[spa]] and no [[sequence]]: nothing to watch for")
	}
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	return cfg, nil
}

func tomlError(path string, err error) error {
	var se *toml.StrictMissingError
	if errors.As(err, &se) && len(se.Errors) > 0 {
		errs := make([]error, len(se.Errors))
		for i := range se.Errors {
			line, _ := se.Errors[i].Position()
			errs[i] = &ConfigError{Path: path, Line: line, Key: strings.Join(se.Errors[i].Key(), "."), Err: errors.New("unknown key")}
		}
		return errors.Join(errs...)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, _ := de.Position()
		return &ConfigError{Path: path, Line: line, Err: errors.New(strings.TrimPrefix(de.Error(), "toml: "))}
	}
	return &ConfigError{Path: path, Err: err}
}

type loader struct {
	path, dir string
	errs      []error
}

func (l *loader) failf(key, format string, args ...any) {
	l.errs = append(l.errs, &ConfigError{Path: l.path, Key: key, Err: fmt.Errorf(format, args...)})
}

func (l *loader) duration(key, s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		l.failf(key, "%q is not a positive duration like \"30s\"", s)
		return def
	}
	return d
}

func (l *loader) source(key string, src []string) (bool, []netip.Prefix) {
	if len(src) == 0 {
		l.failf(key, "no source: say [\"ANY\"] to take every address")
		return false, nil
	}
	anySrc, prefixes, err := access.ParseSource(strings.Join(src, ","))
	if err != nil {
		l.failf(key, "%v", err)
	}
	return anySrc, prefixes
}

func (l *loader) openPorts(key string, ports []string) []spa.ProtoPort {
	var out []spa.ProtoPort
	for _, s := range ports {
		p, err := ParseOpenPort(s)
		if err != nil {
			l.failf(key, "%v", err)
			continue
		}
		out = append(out, p)
	}
	return out
}

func (l *loader) spaRule(key string, s tomlSPA) (SPARule, bool) {
	n := len(l.errs)
	r := SPARule{Name: l.path + " " + key}
	r.SourceAny, r.Source = l.source(key+".source", s.Source)
	r.OpenPorts = l.openPorts(key+".open_ports", s.OpenPorts)
	var err error
	if r.Keys.Encryption, err = spa.DecodeKeyBase64(s.KeyBase64); err != nil || s.KeyBase64 == "" {
		l.failf(key+".key_base64", "want the base64 Rijndael key (portkit knock keygen makes one)")
	}
	if r.Keys.HMAC, err = spa.DecodeKeyBase64(s.HMACKeyBase64); err != nil || s.HMACKeyBase64 == "" {
		l.failf(key+".hmac_key_base64", "want the base64 HMAC key (portkit knock keygen makes one)")
	}
	if s.HMACDigest != "" {
		if r.Keys.HMACDigest, err = spa.ParseDigest(s.HMACDigest); err != nil {
			l.failf(key+".hmac_digest", "%v", err)
		}
	}
	r.FWAccessTimeout = l.duration(key+".access_timeout", s.AccessTimeout, access.DefaultFWAccessTimeout)
	r.RequireSourceAddress = s.RequireSourceAddress
	r.MaxAge = l.duration(key+".max_age", s.MaxAge, replay.DefaultMaxAge)
	if len(l.errs) > n {
		return r, false
	}
	if err := r.Check(); err != nil {
		l.failf(key, "%v", err)
		return r, false
	}
	return r, true
}

func (l *loader) door(key string, t tomlDoor) *Door {
	n := len(l.errs)
	d := &Door{Name: t.Name}
	if d.Name == "" {
		d.Name = key
	}
	if len(t.Source) == 0 {
		d.SourceAny = true // knockd takes knocks from anywhere
	} else {
		d.SourceAny, d.Source = l.source(key+".source", t.Source)
	}
	kinds := 0
	if t.Sequence != "" {
		kinds++
		seq, err := ParseSequence(t.Sequence)
		if err != nil {
			l.failf(key+".sequence", "%v", err)
		}
		d.Sequence = seq
	}
	if t.OneTimeSequences != "" {
		kinds++
		p := t.OneTimeSequences
		if !filepath.IsAbs(p) {
			p = filepath.Join(l.dir, p)
		}
		ot, err := LoadOneTime(p)
		if err != nil {
			l.failf(key+".one_time_sequences", "%v", err)
		}
		d.OneTime = ot
	}
	if t.TOTP != nil {
		kinds++
		d.TOTP = l.totp(key+".totp", *t.TOTP)
	}
	if kinds != 1 {
		l.failf(key, "want exactly one of sequence, one_time_sequences and [totp]")
	}
	d.SeqTimeout = l.duration(key+".seq_timeout", t.SeqTimeout, DefaultSeqTimeout)
	if len(t.OpenPorts) == 0 {
		l.failf(key+".open_ports", "no port to open")
	}
	d.OpenPorts = l.openPorts(key+".open_ports", t.OpenPorts)
	d.AccessTimeout = l.duration(key+".access_timeout", t.AccessTimeout, access.DefaultFWAccessTimeout)
	if len(l.errs) > n {
		return nil
	}
	return d
}

func (l *loader) totp(key string, t tomlTOTP) *TOTP {
	secret, err := spa.DecodeKeyBase64(t.SecretBase64)
	if err != nil || t.SecretBase64 == "" {
		l.failf(key+".secret_base64", "want the base64 secret (portkit knock keygen --totp makes one)")
	}
	low, high, err := ParsePortRange(t.Ports)
	if err != nil {
		l.failf(key+".ports", "%v", err)
	}
	tp := TOTP{Secret: secret, Low: low, High: high, Length: t.Length,
		Step: l.duration(key+".step", t.Step, DefaultTOTPStep)}
	switch strings.ToLower(t.Proto) {
	case "", "tcp":
		tp.Proto = TCP
	case "udp":
		tp.Proto = UDP
	default:
		l.failf(key+".proto", "%q is not tcp or udp", t.Proto)
	}
	tp = tp.WithDefaults()
	if err := tp.Check(); err != nil && secret != nil && low != 0 {
		l.failf(key, "%v", err)
	}
	return &tp
}

// ParsePortRange parses "LOW-HIGH".
func ParsePortRange(s string) (low, high uint16, err error) {
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 16)
	hi, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 16)
	if !ok || err1 != nil || err2 != nil || lo == 0 || hi <= lo {
		return 0, 0, fmt.Errorf("port range %q: want LOW-HIGH, 1 <= LOW < HIGH <= 65535", s)
	}
	return uint16(lo), uint16(hi), nil
}

// ParseOpenPort parses a port to open: "tcp/22" as fwknop writes it, or
// "22/tcp" as portkit does elsewhere.
func ParseOpenPort(s string) (spa.ProtoPort, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "/")
	if ok && a != "" && a[0] >= '0' && a[0] <= '9' {
		a, b = b, a
	}
	p, err := spa.ParseProtoPort(strings.ToLower(a) + "/" + b)
	if err != nil || p.Proto == "icmp" {
		return spa.ProtoPort{}, fmt.Errorf("port %q: want tcp/PORT or udp/PORT (22/tcp works too)", s)
	}
	return p, nil
}
