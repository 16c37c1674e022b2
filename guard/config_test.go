package guard

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

const sampleConfig = `
interfaces = ["eth0", "eth1"]
include_lo = true
allow = ["10.0.0.0/8", "2001:db8::1"]
allow_local = false
max_sources = 1000
log_all = true
log_rate = 2.5
answer_wait = "1s"
update_every = "5s"
end_after = "20s"
block = "1h"

[short]
gap = "2s"
threshold = 30

[long]
window = "1m"
ports = 15

[sweep]
hosts = 4

[distributed]
window = "2m"
ports = 50
sources = 3
`

func TestParseFile(t *testing.T) {
	f, err := ParseFile("guard.toml", []byte(sampleConfig))
	if err != nil {
		t.Fatal(err)
	}
	c := f.Engine
	if len(f.Interfaces) != 2 || !f.IncludeLo || f.AllowLocal || f.Block != time.Hour {
		t.Errorf("file %+v", f)
	}
	if c.ShortGap != 2*time.Second || c.ShortThreshold != 30 || c.LongWindow != time.Minute || c.LongPorts != 15 ||
		c.SweepHosts != 4 || c.DistWindow != 2*time.Minute || c.DistPorts != 50 || c.DistSources != 3 ||
		c.AnswerWait != time.Second || c.UpdateEvery != 5*time.Second || c.EndAfter != 20*time.Second ||
		c.MaxSources != 1000 || !c.LogAll || c.LogRate != 2.5 || len(c.Allow) != 2 || c.Allow[1].Bits() != 128 {
		t.Errorf("engine %+v", c)
	}
}

func TestParseFileErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"max_sorces = 3", "g.toml:1: max_sorces: unknown key"},
		{"[short]\ngap = \"soon\"", "short.gap: \"soon\": want a positive duration"},
		{"[long]\nwindow = \"-1m\"", "long.window"},
		{"allow = [\"10.0.0.300/8\"]", "allow: \"10.0.0.300/8\": not an address"},
		{"max_sources = -1", "max_sources -1: must not be negative"},
		{"log_rate = \"x\"", "g.toml:1"},
		{"interfaces = ", "g.toml:1"},
	} {
		_, err := ParseFile("g.toml", []byte(c.in))
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one with %q", c.in, err, c.want)
		}
	}
}

func FuzzParseFile(f *testing.F) {
	f.Add(sampleConfig)
	f.Add("max_sources = 1\n[short]\nthreshold = 2")
	f.Add("[long]\nwindow = \"1h\"")
	f.Fuzz(func(t *testing.T, s string) {
		file, err := ParseFile("f.toml", []byte(s))
		if err == nil && file.Engine.Validate() != nil {
			t.Fatalf("accepted an invalid config: %q", s)
		}
	})
}

// TestExampleFile: the documented example parses, and its values are the
// defaults it claims.
func TestExampleFile(t *testing.T) {
	f, err := LoadFile("testdata/example.toml")
	if err != nil {
		t.Fatal(err)
	}
	got, want := f.Engine.withDefaults(), DefaultConfig()
	got.EphemeralLow, got.EphemeralHigh = want.EphemeralLow, want.EphemeralHigh
	if got.Allow != nil || !f.AllowLocal || f.IncludeLo || len(f.Interfaces) != 0 {
		t.Errorf("file %+v", f)
	}
	got.Allow = nil
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("example's values\n %+v\nare not the defaults\n %+v", got, want)
	}
}
