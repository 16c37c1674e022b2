package guard

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Config is the detection engine's settings. Zero fields take the
// defaults (DefaultConfig).
type Config struct {
	// The short window, after scanlogd: a scan is PrivWeight per
	// distinct port below 1024 and HighWeight per other port, adding up
	// to ShortThreshold, each probe within ShortGap of the one before.
	// A FIN, NULL or Xmas probe weighs StealthWeight at least, whatever
	// its port: no TCP sends one outside a scan (every segment after a
	// SYN carries ACK), so fewer of them make one.
	ShortGap       time.Duration
	ShortThreshold int
	PrivWeight     int
	HighWeight     int
	StealthWeight  int
	// The long window, for slow scans: LongPorts distinct ports within
	// LongWindow.
	LongWindow time.Duration
	LongPorts  int
	// A sweep: one port on SweepHosts of this host's addresses within
	// the long window.
	SweepHosts int
	// A distributed scan: DistPorts distinct ports within DistWindow,
	// probed by DistSources or more sources that are not scans by
	// themselves; or sources that are, on other ports of the same
	// targets within DistWindow.
	DistWindow  time.Duration
	DistPorts   int
	DistSources int
	// AnswerWait is how long an attempt waits for this host's answer
	// (a reset, an ICMP error) before it is decided unanswered.
	AnswerWait time.Duration
	// UpdateEvery is the least time between two reports of one scan;
	// EndAfter the quiet time that ends it.
	UpdateEvery time.Duration
	EndAfter    time.Duration
	// MaxSources caps the sources tracked (the oldest go first);
	// attempts awaiting an answer are capped at four times that, alerts
	// at MaxAlerts.
	MaxSources int
	MaxAlerts  int
	// Each source's attempts are logged at LogRate a second at most,
	// after a burst of LogBurst; all sources' together at LogTotalRate
	// (a burst of as many).
	LogRate      float64
	LogBurst     int
	LogTotalRate float64
	// LogAll logs accepted attempts too.
	LogAll bool
	// Allow are sources that never alert (and are never blocked).
	Allow []netip.Prefix
	// UDP datagrams to this range (the host's ephemeral ports) count as
	// probes only when refused: replies to the host's own queries land
	// there.
	EphemeralLow, EphemeralHigh uint16
}

// defaultConfig is read only: the settings of zero fields.
var defaultConfig = Config{
	ShortGap: 3 * time.Second, ShortThreshold: 21, PrivWeight: 3, HighWeight: 1, StealthWeight: 3,
	LongWindow: 10 * time.Minute, LongPorts: 30,
	SweepHosts: 8,
	DistWindow: 5 * time.Minute, DistPorts: 100, DistSources: 4,
	AnswerWait: 2 * time.Second, UpdateEvery: 10 * time.Second, EndAfter: 30 * time.Second,
	MaxSources: 65536, MaxAlerts: 1024,
	LogRate: 5, LogBurst: 20, LogTotalRate: 1000,
	EphemeralLow: 32768, EphemeralHigh: 60999,
}

// DefaultConfig returns the default settings.
func DefaultConfig() Config { return defaultConfig }

func (c Config) withDefaults() Config {
	d := defaultConfig
	set := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	seti := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	set(&c.ShortGap, d.ShortGap)
	seti(&c.ShortThreshold, d.ShortThreshold)
	seti(&c.PrivWeight, d.PrivWeight)
	seti(&c.HighWeight, d.HighWeight)
	seti(&c.StealthWeight, d.StealthWeight)
	set(&c.LongWindow, d.LongWindow)
	seti(&c.LongPorts, d.LongPorts)
	seti(&c.SweepHosts, d.SweepHosts)
	set(&c.DistWindow, d.DistWindow)
	seti(&c.DistPorts, d.DistPorts)
	seti(&c.DistSources, d.DistSources)
	set(&c.AnswerWait, d.AnswerWait)
	set(&c.UpdateEvery, d.UpdateEvery)
	set(&c.EndAfter, d.EndAfter)
	seti(&c.MaxSources, d.MaxSources)
	seti(&c.MaxAlerts, d.MaxAlerts)
	seti(&c.LogBurst, d.LogBurst)
	if c.LogRate == 0 {
		c.LogRate = d.LogRate
	}
	if c.LogTotalRate == 0 {
		c.LogTotalRate = d.LogTotalRate
	}
	if c.EphemeralLow == 0 && c.EphemeralHigh == 0 {
		c.EphemeralLow, c.EphemeralHigh = d.EphemeralLow, d.EphemeralHigh
	}
	return c
}

func (c Config) maxPending() int { return 4 * c.MaxSources }

// File is guard's TOML configuration file. Durations are strings
// time.ParseDuration reads ("3s", "10m").
type File struct {
	Engine     Config
	Interfaces []string // empty: every interface but lo
	IncludeLo  bool
	AllowLocal bool // this host's own addresses never alert (default true)
	Block      time.Duration
}

// ConfigError is a configuration file that cannot be used.
type ConfigError struct {
	Path string
	Line int // 0 when unknown
	Key  string
	Err  error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, ": %s", e.Key)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

type fileTOML struct {
	Interfaces  []string `toml:"interfaces"`
	IncludeLo   bool     `toml:"include_lo"`
	Allow       []string `toml:"allow"`
	AllowLocal  *bool    `toml:"allow_local"`
	MaxSources  int      `toml:"max_sources"`
	LogAll      bool     `toml:"log_all"`
	LogRate     float64  `toml:"log_rate"`
	LogBurst    int      `toml:"log_burst"`
	LogTotal    float64  `toml:"log_total_rate"`
	AnswerWait  string   `toml:"answer_wait"`
	UpdateEvery string   `toml:"update_every"`
	EndAfter    string   `toml:"end_after"`
	Block       string   `toml:"block"`
	Short       struct {
		Gap        string `toml:"gap"`
		Threshold  int    `toml:"threshold"`
		PrivWeight int    `toml:"priv_weight"`
		HighWeight int    `toml:"high_weight"`
		Stealth    int    `toml:"stealth_weight"`
	} `toml:"short"`
	Long struct {
		Window string `toml:"window"`
		Ports  int    `toml:"ports"`
	} `toml:"long"`
	Sweep struct {
		Hosts int `toml:"hosts"`
	} `toml:"sweep"`
	Distributed struct {
		Window  string `toml:"window"`
		Ports   int    `toml:"ports"`
		Sources int    `toml:"sources"`
	} `toml:"distributed"`
}

// LoadFile reads and checks a configuration file.
func LoadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseFile(path, data)
}

// ParseFile reads a configuration file's contents; path names it in
// errors. Unknown keys are errors: a misspelt threshold must not silently
// leave the default in place.
func ParseFile(path string, data []byte) (*File, error) {
	var t fileTOML
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		ce := &ConfigError{Path: path, Err: err}
		var de *toml.DecodeError
		var sm *toml.StrictMissingError
		switch {
		case errors.As(err, &sm) && len(sm.Errors) > 0:
			row, _ := sm.Errors[0].Position()
			ce.Line, ce.Key = row, strings.Join(sm.Errors[0].Key(), ".")
			ce.Err = errors.New("unknown key")
		case errors.As(err, &de):
			row, _ := de.Position()
			ce.Line, ce.Key = row, strings.Join(de.Key(), ".")
			ce.Err = errors.New(de.Error())
		}
		return nil, ce
	}
	f := &File{Interfaces: t.Interfaces, IncludeLo: t.IncludeLo, AllowLocal: true}
	if t.AllowLocal != nil {
		f.AllowLocal = *t.AllowLocal
	}
	c := &f.Engine
	c.MaxSources, c.LogAll, c.LogRate, c.LogBurst, c.LogTotalRate = t.MaxSources, t.LogAll, t.LogRate, t.LogBurst, t.LogTotal
	c.ShortThreshold, c.PrivWeight, c.HighWeight, c.StealthWeight = t.Short.Threshold, t.Short.PrivWeight, t.Short.HighWeight, t.Short.Stealth
	c.LongPorts, c.SweepHosts = t.Long.Ports, t.Sweep.Hosts
	c.DistPorts, c.DistSources = t.Distributed.Ports, t.Distributed.Sources
	for _, d := range []struct {
		key string
		in  string
		out *time.Duration
	}{
		{"answer_wait", t.AnswerWait, &c.AnswerWait}, {"update_every", t.UpdateEvery, &c.UpdateEvery},
		{"end_after", t.EndAfter, &c.EndAfter}, {"block", t.Block, &f.Block},
		{"short.gap", t.Short.Gap, &c.ShortGap}, {"long.window", t.Long.Window, &c.LongWindow},
		{"distributed.window", t.Distributed.Window, &c.DistWindow},
	} {
		if d.in == "" {
			continue
		}
		v, err := time.ParseDuration(d.in)
		if err != nil || v <= 0 {
			return nil, &ConfigError{Path: path, Key: d.key, Err: fmt.Errorf("%q: want a positive duration such as 3s or 10m", d.in)}
		}
		*d.out = v
	}
	for _, s := range t.Allow {
		p, err := ParsePrefix(s)
		if err != nil {
			return nil, &ConfigError{Path: path, Key: "allow", Err: err}
		}
		c.Allow = append(c.Allow, p)
	}
	if err := c.Validate(); err != nil {
		return nil, &ConfigError{Path: path, Err: err}
	}
	return f, nil
}

// ParsePrefix reads a CIDR prefix or a bare address (a /32 or /128).
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("%q: not an address or CIDR prefix", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q: not an address or CIDR prefix", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Validate checks the settings that have no sensible meaning when
// negative or out of range.
func (c Config) Validate() error {
	for _, v := range []struct {
		name string
		n    int
	}{
		{"short threshold", c.ShortThreshold}, {"priv_weight", c.PrivWeight}, {"high_weight", c.HighWeight}, {"stealth_weight", c.StealthWeight},
		{"long ports", c.LongPorts}, {"sweep hosts", c.SweepHosts}, {"distributed ports", c.DistPorts},
		{"distributed sources", c.DistSources}, {"max_sources", c.MaxSources}, {"log_burst", c.LogBurst},
	} {
		if v.n < 0 {
			return fmt.Errorf("%s %d: must not be negative", v.name, v.n)
		}
	}
	if c.MaxSources > 1<<24 {
		return fmt.Errorf("max_sources %d: at most %d", c.MaxSources, 1<<24)
	}
	if c.LogRate < 0 {
		return fmt.Errorf("log_rate %v: must not be negative", c.LogRate)
	}
	if c.LogTotalRate < 0 {
		return fmt.Errorf("log_total_rate %v: must not be negative", c.LogTotalRate)
	}
	for _, d := range []time.Duration{c.ShortGap, c.LongWindow, c.DistWindow, c.AnswerWait, c.UpdateEvery, c.EndAfter} {
		if d < 0 {
			return fmt.Errorf("duration %v: must not be negative", d)
		}
	}
	if c.EphemeralLow > c.EphemeralHigh {
		return fmt.Errorf("ephemeral range %d-%d: low above high", c.EphemeralLow, c.EphemeralHigh)
	}
	return nil
}
