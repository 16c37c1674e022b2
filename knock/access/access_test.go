package access

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portkit/portkit/knock/spa"
)

func TestParseFile(t *testing.T) {
	st, err := ParseFile("testdata/access.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 {
		t.Fatalf("%d stanzas", len(st))
	}
	a, b := st[0], st[1]
	if !a.SourceAny || a.Line != 4 || a.File != "testdata/access.conf" || len(a.OpenPorts) != 2 ||
		a.OpenPorts[1] != (spa.ProtoPort{Proto: "udp", Port: 53}) || len(a.Keys.Encryption) != 32 ||
		len(a.Keys.HMAC) != 64 || a.FWAccessTimeout != time.Minute || !a.RequireSourceAddress || a.Keys.HMACDigest != 0 {
		t.Errorf("first: %+v", a)
	}
	if b.SourceAny || len(b.Source) != 2 || b.Source[0] != netip.MustParsePrefix("198.18.0.0/24") ||
		string(b.Keys.Encryption) != "a plain passphrase" || string(b.Keys.HMAC) != "another secret" ||
		b.Keys.HMACDigest != spa.SHA512 || b.FWAccessTimeout != DefaultFWAccessTimeout || len(b.OpenPorts) != 0 {
		t.Errorf("second: %+v", b)
	}
	if !b.Matches(netip.MustParseAddr("198.18.0.77")) || !b.Matches(netip.MustParseAddr("::ffff:198.18.0.1")) ||
		b.Matches(netip.MustParseAddr("198.18.1.1")) || !b.Matches(netip.MustParseAddr("2001:2::1")) {
		t.Error("Matches")
	}
	if !a.Allows(spa.ProtoPort{Proto: "tcp", Port: 22}) || a.Allows(spa.ProtoPort{Proto: "tcp", Port: 23}) ||
		!b.Allows(spa.ProtoPort{Proto: "tcp", Port: 23}) {
		t.Error("Allows")
	}
}

const keys = "KEY k\nHMAC_KEY h\n"

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		conf string
		line int
		want error
		text string // in the message
	}{
		{"unknown key", "SOURCE ANY\n" + keys + "FOO bar\n", 4, ErrUnknownKey, `t.conf:4: FOO: unknown key: "FOO"`},
		{"fwknop only", "SOURCE ANY\n" + keys + "GPG_HOME_DIR /x\n", 4, ErrUnsupported, "GPG_HOME_DIR"},
		{"include", "%include other.conf\n", 1, ErrUnsupported, "%include"},
		{"before source", "KEY k\n", 1, ErrSyntax, "before the first SOURCE"},
		{"no value", "SOURCE ANY\n" + keys + "OPEN_PORTS\n", 4, ErrSyntax, "no value"},
		{"bad port", "SOURCE ANY\n" + keys + "OPEN_PORTS tcp/99999\n", 4, ErrValue, "tcp/99999"},
		{"bad proto", "SOURCE ANY\n" + keys + "OPEN_PORTS sctp/1\n", 4, ErrValue, "sctp"},
		{"bad source", "SOURCE 1.2.3\n" + keys, 1, ErrValue, "1.2.3"},
		{"bad base64", "SOURCE ANY\nKEY_BASE64 !!!\nHMAC_KEY h\n", 2, ErrValue, "not base64"},
		{"changeme", "SOURCE ANY\nKEY_BASE64 __CHANGEME__\nHMAC_KEY h\n", 2, ErrValue, "__CHANGEME__"},
		{"both key forms", "SOURCE ANY\nKEY k\nKEY_BASE64 aGVsbG8=\nHMAC_KEY h\n", 3, ErrSyntax, "first at line 2"},
		{"no hmac", "SOURCE ANY\nKEY k\n", 1, ErrStanza, "HMAC"},
		{"no key", "SOURCE ANY\nHMAC_KEY h\n", 1, ErrStanza, "KEY"},
		{"long key", "SOURCE ANY\nKEY " + strings.Repeat("k", 33) + "\nHMAC_KEY h\n", 1, ErrStanza, "33 bytes"},
		{"bad digest", "SOURCE ANY\n" + keys + "HMAC_DIGEST_TYPE sha999\n", 4, ErrValue, "sha999"},
		{"bad mode", "SOURCE ANY\n" + keys + "ENCRYPTION_MODE CTR\n", 4, ErrUnsupported, "CTR"},
		{"zero timeout", "SOURCE ANY\n" + keys + "FW_ACCESS_TIMEOUT 0\n", 4, ErrValue, "0"},
		{"huge timeout", "SOURCE ANY\n" + keys + "FW_ACCESS_TIMEOUT 99999999\n", 4, ErrValue, "99999999"},
		{"bad bool", "SOURCE ANY\n" + keys + "REQUIRE_SOURCE_ADDRESS maybe\n", 4, ErrValue, "maybe"},
		{"long line", "SOURCE ANY\n" + keys + "# " + strings.Repeat("x", MaxLineLen) + "\n", 4, ErrSyntax, "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Parse(strings.NewReader(tc.conf), "t.conf")
			if st != nil || !errors.Is(err, tc.want) {
				t.Fatalf("got %v, %v; want %v", st, err, tc.want)
			}
			var e *Error
			if !errors.As(err, &e) || e.Line != tc.line || e.File != "t.conf" {
				t.Fatalf("error %v: want line %d", err, tc.line)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("%q does not say %q", err, tc.text)
			}
		})
	}
}

// Every problem is told, not only the first.
func TestParseReportsAll(t *testing.T) {
	_, err := Parse(strings.NewReader("SOURCE ANY\n"+keys+"A 1\nB 2\nSOURCE ANY\nKEY k\n"), "t.conf")
	for _, want := range []string{"t.conf:4: A", "t.conf:5: B", "t.conf:6: SOURCE"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: no %q", err, want)
		}
	}
}

func TestParseSource(t *testing.T) {
	anySrc, p, err := ParseSource("10.1.2.3/8 ,198.18.0.1")
	if err != nil || anySrc || len(p) != 2 || p[0] != netip.MustParsePrefix("10.0.0.0/8") || p[1] != netip.MustParsePrefix("198.18.0.1/32") {
		t.Fatalf("%v %v %v", anySrc, p, err)
	}
	if a, _, err := ParseSource("any"); !a || err != nil {
		t.Fatal("any")
	}
	for _, bad := range []string{",", "fe80::1%eth0", "10.0.0.0/33", "host.example"} {
		if _, _, err := ParseSource(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzParse: no input makes Parse panic; it returns stanzas or errors,
// never both; the errors are *Error with a line in the input; the stanzas
// are complete.
func FuzzParse(f *testing.F) {
	f.Add("SOURCE ANY\n" + keys + "OPEN_PORTS tcp/22\n")
	f.Add("SOURCE: 198.18.0.0/24;\nKEY_BASE64 aGVsbG8=\nHMAC_KEY_BASE64 aGVsbG8\nHMAC_DIGEST_TYPE sha3_256\nFW_ACCESS_TIMEOUT 5\n")
	f.Add("# c\n;x\n\r\nSOURCE ANY\r\n\tKEY\tk\r\nHMAC_KEY h\r\nREQUIRE_SOURCE y\r\n")
	f.Add("FOO\nSOURCE\n%include x\n")
	f.Fuzz(func(t *testing.T, conf string) {
		st, err := Parse(strings.NewReader(conf), "f.conf")
		if err != nil {
			if st != nil {
				t.Fatal("stanzas and an error")
			}
			lines := strings.Count(conf, "\n") + 1
			var e *Error
			if !errors.As(err, &e) || e.Line < 1 || e.Line > lines {
				t.Fatalf("error %v outside the input's %d lines", err, lines)
			}
			return
		}
		for _, s := range st {
			if err := s.Check(); err != nil {
				t.Fatalf("incomplete stanza %+v: %v", s, err)
			}
		}
	})
}
