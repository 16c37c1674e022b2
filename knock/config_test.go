package knock

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfigExample(t *testing.T) {
	cfg, err := LoadConfig("testdata/knockd.toml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SPAPort != 62201 || cfg.MaxSources != 10000 || len(cfg.SPA) != 1 || len(cfg.Doors) != 3 {
		t.Fatalf("%+v", cfg)
	}
	r := cfg.SPA[0]
	if len(r.Source) != 2 || !r.RequireSourceAddress || r.MaxAge != 120*time.Second || r.FWAccessTimeout != 30*time.Second || len(r.Keys.HMAC) != 64 {
		t.Errorf("spa rule %+v", r)
	}
	d := cfg.Doors[0]
	if d.Name != "ssh" || FormatSequence(d.Sequence) != "7000,8000:udp,9000" || d.SeqTimeout != 10*time.Second || d.AccessTimeout != time.Minute || d.OpenPorts[0].String() != "tcp/22" || !d.SourceAny {
		t.Errorf("door %+v", d)
	}
	if tp := cfg.Doors[1].TOTP; tp == nil || tp.Low != 40000 || tp.High != 40999 || tp.Length != 4 {
		t.Errorf("totp door %+v", cfg.Doors[1])
	}
	if ot := cfg.Doors[2].OneTime; ot == nil || ot.Remaining() != 2 || FormatSequence(ot.Current()) != "7001,8001,9001" {
		t.Errorf("one-time door %+v", cfg.Doors[2])
	}
	if _, err := cfg.Filter(); err != nil {
		t.Error(err)
	}
}

func TestParseConfigErrors(t *testing.T) {
	const keys = "key_base64 = \"KbRtXCp1ZZtm4AFLuYDsNW2Dy7OFLbMlnmQxmR8TYXk=\"\nhmac_key_base64 = \"OIpymFtWsfbAf3nZT9hB8SP3l+k2aCyzbUbcXotTjJ8=\"\n"
	for _, tc := range []struct {
		name, toml string
		want       []string // in the message
	}{
		{"empty", "", []string{"nothing to watch for"}},
		{"syntax", "spa_port = \n", []string{"k.toml:1"}},
		{"unknown key", "[[spa]]\nsource = [\"ANY\"]\n" + keys + "colour = 1\n", []string{"k.toml:5", "spa.colour", "unknown key"}},
		{"spa port", "spa_port = 70000\n[[sequence]]\nsequence = \"1,2\"\nopen_ports=[\"tcp/22\"]\n", []string{"spa_port", "70000"}},
		{"no source", "[[spa]]\n" + keys, []string{"spa[1].source", "ANY"}},
		{"bad source", "[[spa]]\nsource = [\"198.18.0.300\"]\n" + keys, []string{"spa[1].source", "198.18.0.300"}},
		{"no keys", "[[spa]]\nsource = [\"ANY\"]\n", []string{"spa[1].key_base64", "spa[1].hmac_key_base64"}},
		{"bad port", "[[spa]]\nsource = [\"ANY\"]\nopen_ports = [\"tcp/0\"]\n" + keys, []string{"spa[1].open_ports", "tcp/0"}},
		{"bad digest", "[[spa]]\nsource = [\"ANY\"]\nhmac_digest = \"crc\"\n" + keys, []string{"spa[1].hmac_digest", "crc"}},
		{"bad duration", "[[spa]]\nsource = [\"ANY\"]\naccess_timeout = \"soon\"\n" + keys, []string{"spa[1].access_timeout", "soon"}},
		{"duration as a number", "[[spa]]\nsource = [\"ANY\"]\nmax_age = 30\n" + keys, []string{"k.toml:3"}},
		{"two kinds", "[[sequence]]\nsequence = \"1,2\"\none_time_sequences = \"x\"\nopen_ports=[\"tcp/22\"]\n", []string{"sequence[1]", "exactly one"}},
		{"no kind", "[[sequence]]\nopen_ports=[\"tcp/22\"]\n", []string{"sequence[1]", "exactly one"}},
		{"bad sequence", "[[sequence]]\nsequence = \"1,2:sctp\"\nopen_ports=[\"tcp/22\"]\n", []string{"sequence[1].sequence", "sctp"}},
		{"no open ports", "[[sequence]]\nsequence = \"1,2\"\n", []string{"sequence[1].open_ports"}},
		{"missing one-time file", "[[sequence]]\none_time_sequences = \"nope\"\nopen_ports=[\"tcp/22\"]\n", []string{"sequence[1].one_time_sequences", "nope"}},
		{"totp range", "[[sequence]]\nopen_ports=[\"tcp/22\"]\n[sequence.totp]\nsecret_base64=\"c2VjcmV0IHNoYXJlZCBieSBjbGllbnQgYW5kIHNlcnZlcg==\"\nports=\"5-5\"\n", []string{"sequence[1].totp.ports", "5-5"}},
		{"totp short secret", "[[sequence]]\nopen_ports=[\"tcp/22\"]\n[sequence.totp]\nsecret_base64=\"c2VjcmV0\"\nports=\"5-50\"\n", []string{"sequence[1].totp", "16 bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(filepath.Join(t.TempDir(), "k.toml"), []byte(tc.toml))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("%T is not a *ConfigError", err)
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	example, err := os.ReadFile("testdata/knockd.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte("[[spa]]\nsource = [\"ANY\"]\n"))
	f.Add([]byte("[[sequence]]\nsequence = \"7000,8000:udp\"\nopen_ports = [\"22/tcp\"]\n"))
	f.Add([]byte("[[sequence]]\nopen_ports=[\"tcp/22\"]\n[sequence.totp]\nsecret_base64=\"c2VjcmV0IHNoYXJlZCBieSBjbGllbnQgYW5kIHNlcnZlcg==\"\nports=\"1-2\"\nlength=32\n"))
	f.Add([]byte("spa_port = -1\nmax_sources = -5\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Relative file names point into testdata, where the example's
		// one-time file is.
		cfg, err := ParseConfig("testdata/fuzz.toml", data)
		if err != nil {
			if cfg != nil {
				t.Fatal("a config with an error")
			}
			return
		}
		for _, r := range cfg.SPA {
			if err := r.Check(); err != nil {
				t.Fatalf("accepted a rule that fails Check: %v", err)
			}
		}
		for _, d := range cfg.Doors {
			if len(d.OpenPorts) == 0 {
				t.Fatal("a door opens nothing")
			}
			if d.TOTP != nil {
				if err := d.TOTP.Check(); err != nil {
					t.Fatalf("accepted TOTP: %v", err)
				}
			}
		}
		if _, err := cfg.Filter(); err != nil {
			t.Fatalf("a config accepted whose filter fails: %v", err)
		}
	})
}
