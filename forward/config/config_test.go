package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portkit/portkit/forward"
)

func prefixes(ss ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		ps[i] = netip.MustParsePrefix(s)
	}
	return ps
}

type goodFile struct {
	name string
	toml string
	want File // Path "rules.toml"; its Rules without WithDefaults
}

// goodFiles are files that parse; FuzzParse seeds from them too.
func goodFiles() []goodFile {
	return []goodFile{
		{
			name: "minimal",
			toml: "[[rule]]\nlisten = \":8080\"\ntargets = [\"10.1.2.3:80\"]\n",
			want: File{Rules: []forward.Rule{{Listen: ":8080", Targets: []string{"10.1.2.3:80"}}}},
		},
		{
			name: "every key",
			toml: `
drain_timeout = "30s"
log_format = "JSON"
metrics = "127.0.0.1:9100"

[[rule]]
name = "web"
listen = "127.0.0.1:8080"
protocol = "tcp"
targets = ["10.1.2.3:80", "[2001:db8::1]:80", "backend.internal:8080"]
balance = "round-robin"
connect_timeout = "3s"
idle_timeout = "5m"
max_conns = 1_000
max_conns_per_source = 0x32
allow = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7", "2001:db8::7", "10.1.2.3/16"]
deny = ["10.9.0.0/16"]
proxy_protocol = "v2"
accept_proxy_protocol = true
trusted_proxies = ["10.0.0.5"]

[[rule]]
name = "dns"
listen = "[::1]:5353"
protocol = "UDP"
targets = ["[2001:db8::53]:53"]
idle_timeout = "0s"
max_sessions = 500
`,
			want: File{
				DrainTimeout: ptr(30 * time.Second),
				LogFormat:    "json",
				Metrics:      "127.0.0.1:9100",
				Rules: []forward.Rule{{
					Name:                "web",
					Listen:              "127.0.0.1:8080",
					Protocol:            forward.TCP,
					Targets:             []string{"10.1.2.3:80", "[2001:db8::1]:80", "backend.internal:8080"},
					Balance:             forward.RoundRobin,
					ConnectTimeout:      3 * time.Second,
					IdleTimeout:         5 * time.Minute,
					MaxConns:            1000,
					MaxConnsPerSource:   50,
					Allow:               prefixes("10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32", "2001:db8::7/128", "10.1.0.0/16"),
					Deny:                prefixes("10.9.0.0/16"),
					ProxyProtocol:       2,
					AcceptProxyProtocol: true,
					TrustedProxies:      prefixes("10.0.0.5/32"),
				}, {
					Name:        "dns",
					Listen:      "[::1]:5353",
					Protocol:    forward.UDP,
					Targets:     []string{"[2001:db8::53]:53"},
					IdleTimeout: forward.NoLimit, // "0s": never, not the default
					MaxSessions: 500,
				}},
			},
		},
		{
			name: "defaults merge by protocol",
			toml: `
[defaults]
connect_timeout = "3s"
balance = "round-robin"
max_conns = 100
max_sessions = 50
proxy_protocol = 1
deny = ["192.0.2.0/24"]

[[rule]]
listen = ":80"
targets = ["10.0.0.1:80"]

[[rule]]
listen = ":81"
targets = ["10.0.0.1:81"]
connect_timeout = "1s"
max_conns = 0
proxy_protocol = "none"
deny = []

[[rule]]
listen = ":53"
protocol = "udp"
targets = ["10.0.0.1:53"]
`,
			want: File{Rules: []forward.Rule{{
				Listen: ":80", Targets: []string{"10.0.0.1:80"},
				ConnectTimeout: 3 * time.Second, Balance: forward.RoundRobin,
				MaxConns: 100, ProxyProtocol: 1, Deny: prefixes("192.0.2.0/24"),
			}, {
				Listen: ":81", Targets: []string{"10.0.0.1:81"},
				ConnectTimeout: time.Second, Balance: forward.RoundRobin,
			}, {
				Listen: ":53", Protocol: forward.UDP, Targets: []string{"10.0.0.1:53"},
				ConnectTimeout: 3 * time.Second, Balance: forward.RoundRobin,
				MaxSessions: 50, Deny: prefixes("192.0.2.0/24"),
			}}},
		},
		{
			name: "default protocol decides the other defaults",
			toml: `
[defaults]
protocol = "udp"
max_conns = 10
max_sessions = 20

[[rule]]
listen = "127.0.0.1:5353"
targets = ["10.0.0.53:53"]

[[rule]]
listen = "127.0.0.1:5353"
protocol = "tcp"
targets = ["10.0.0.53:53"]
`,
			want: File{Rules: []forward.Rule{
				{Listen: "127.0.0.1:5353", Protocol: forward.UDP, Targets: []string{"10.0.0.53:53"}, MaxSessions: 20},
				{Listen: "127.0.0.1:5353", Protocol: forward.TCP, Targets: []string{"10.0.0.53:53"}, MaxConns: 10},
			}},
		},
		{
			name: "inline array of tables, bare port, port 0 per protocol",
			toml: `rule = [
  {listen = "8080", targets = ["[::1]:80"]},
  {listen = ":0", targets = ["[::1]:80"]},
  {listen = ":0", protocol = "udp", targets = ["[::1]:53"]},
]`,
			want: File{Rules: []forward.Rule{
				{Listen: ":8080", Targets: []string{"[::1]:80"}},
				{Listen: ":0", Targets: []string{"[::1]:80"}},
				{Listen: ":0", Protocol: forward.UDP, Targets: []string{"[::1]:53"}},
			}},
		},
		{
			name: "0 switches a default off",
			toml: "[[rule]]\nlisten = \":80\"\ntargets = [\"10.0.0.1:80\"]\nidle_timeout = \"0s\"\nmax_conns_per_source = 0\n",
			want: File{Rules: []forward.Rule{{Listen: ":80", Targets: []string{"10.0.0.1:80"},
				IdleTimeout: forward.NoLimit, MaxConnsPerSource: forward.NoLimit}}},
		},
		{
			name: "default trusted proxies only for the rules that accept headers",
			toml: `
[defaults]
trusted_proxies = ["10.0.0.5"]

[[rule]]
listen = ":80"
targets = ["10.0.0.1:80"]
accept_proxy_protocol = true

[[rule]]
listen = ":81"
targets = ["10.0.0.1:81"]
`,
			want: File{Rules: []forward.Rule{
				{Listen: ":80", Targets: []string{"10.0.0.1:80"}, AcceptProxyProtocol: true, TrustedProxies: prefixes("10.0.0.5/32")},
				{Listen: ":81", Targets: []string{"10.0.0.1:81"}},
			}},
		},
		{
			name: "CRLF, comments, multi-line arrays, literal strings",
			toml: "# rules\r\n[[rule]] # one\r\nname = 'a'\r\nlisten = ':1'\r\ntargets = [\r\n  'h:1', # first\r\n  'h:2',\r\n]\r\n",
			want: File{Rules: []forward.Rule{{Name: "a", Listen: ":1", Targets: []string{"h:1", "h:2"}}}},
		},
	}
}

func TestParseGood(t *testing.T) {
	for _, c := range goodFiles() {
		t.Run(c.name, func(t *testing.T) {
			got, err := Parse("rules.toml", []byte(c.toml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := c.want
			want.Path = "rules.toml"
			want.Rules = nil
			for _, r := range c.want.Rules {
				want.Rules = append(want.Rules, r.WithDefaults())
			}
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("Parse =\n%+v\nwant\n%+v", *got, want)
			}
		})
	}
}

// TestExample keeps the documented example file parsing.
func TestExample(t *testing.T) {
	f, err := Load("testdata/example.toml")
	if err != nil {
		t.Fatal(err)
	}
	if f.Path != "testdata/example.toml" || len(f.Rules) != 3 || f.DrainTimeout == nil || *f.DrainTimeout != 30*time.Second ||
		f.LogFormat != "text" || f.Metrics != "127.0.0.1:9100" {
		t.Fatalf("Load = %+v", f)
	}
	web, db, dns := f.Rules[0], f.Rules[1], f.Rules[2]
	if web.Name != "web" || web.ConnectTimeout != 2*time.Second || web.MaxConnsPerSource != 20 ||
		!reflect.DeepEqual(web.Targets, []string{"10.1.2.3:80", "[2001:db8::1]:80"}) {
		t.Errorf("web = %+v", web)
	}
	if db.ConnectTimeout != 3*time.Second || db.MaxConnsPerSource != 50 || db.Balance != forward.First {
		t.Errorf("db did not get the defaults: %+v", db)
	}
	if dns.Protocol != forward.UDP || dns.MaxConnsPerSource != 0 || dns.MaxSessions != 5000 {
		t.Errorf("dns = %+v", dns)
	}
}

// wantErr is one *Error expected from a bad file.
type wantErr struct {
	line int
	key  string
	msg  string // a part of Err's message
}

type badFile struct {
	name string
	toml string
	want []wantErr // in the order Parse reports them
}

// A rule that is right, to pad bad files with.
const okRule = "[[rule]]\nlisten = \":9000\"\ntargets = [\"10.0.0.1:80\"]\n"

// badFiles are files that must fail; FuzzParse seeds from them too.
func badFiles() []badFile {
	return []badFile{
		{"empty", "", []wantErr{{0, "", "no [[rule]]"}}},
		{"globals only", "drain_timeout = \"1s\"\n", []wantErr{{0, "", "no [[rule]]"}}},
		{"no rules in array", "rule = []\n", []wantErr{{1, "rule", "no [[rule]]"}}},
		{"table not array", "[rule]\nlisten = \":1\"\n", []wantErr{{1, "rule", "write [[rule]], not [rule]"}}},
		{"syntax", okRule + "name = \n", []wantErr{{4, "", "(column 8)"}}},
		{"unclosed array", okRule + "allow = [\"10.0.0.0/8\",\n", []wantErr{{4, "", "array is incomplete"}}},
		{"duplicate key", okRule + "listen = \":9001\"\n", []wantErr{{4, "", "already defined"}}},
		{"typo", okRule + "conect_timeout = \"1s\"\n", []wantErr{{4, "rule[0].conect_timeout", `did you mean "connect_timeout"`}}},
		{"hyphen", okRule + "max-conns = 5\n", []wantErr{{4, "rule[0].max-conns", `did you mean "max_conns"`}}},
		{"quoted key", okRule + "\"max conns\" = 1\n", []wantErr{{4, `rule[0]."max conns"`, `did you mean "max_conns"`}}},
		{"unknown far", okRule + "colour = \"red\"\n", []wantErr{{4, "rule[0].colour", "known keys: name, protocol"}}},
		{"unknown top", "rules_dir = \"/x\"\n" + okRule, []wantErr{{1, "rules_dir", "unknown key"}}},
		{"top typo", "log_fromat = \"json\"\n" + okRule, []wantErr{{1, "log_fromat", `did you mean "log_format"`}}},
		{"array of rules typo", "[[rules]]\nlisten = \":1\"\n" + okRule, []wantErr{{1, "rules", `did you mean "rule"`}}},
		{"rule key at top", "listen = \":1\"\n" + okRule, []wantErr{{1, "listen", "outside any rule"}}},
		{"global below rule", okRule + "drain_timeout = \"5s\"\n", []wantErr{{4, "rule[0].drain_timeout", "top-level key"}}},
		{"sub-table in rule", okRule + "[rule.extra]\nx = 1\n", []wantErr{{4, "rule[0].extra", "unknown key"}}},
		{"string for int", okRule + "max_conns = \"10\"\n", []wantErr{{4, "rule[0].max_conns", `want an integer, got a string "10"`}}},
		{"float for int", okRule + "max_sessions = 1.5\n", []wantErr{{4, "rule[0].max_sessions", "want an integer, got a float 1.5"}}},
		{"int past int64", okRule + "max_conns = 9223372036854775808\n", []wantErr{{4, "", "64-bit"}}},
		{"negative int", okRule + "max_conns_per_source = -1\n", []wantErr{{4, "rule[0].max_conns_per_source", "must not be negative"}}},
		{"int for duration", okRule + "idle_timeout = 30\n", []wantErr{{4, "rule[0].idle_timeout", `want a duration string like "30s"`}}},
		{"bad duration", okRule + "connect_timeout = \"3 s\"\n", []wantErr{{4, "rule[0].connect_timeout", `bad duration "3 s"`}}},
		{"negative duration", okRule + "idle_timeout = \"-1s\"\n", []wantErr{{4, "rule[0].idle_timeout", "must not be negative"}}},
		{"bad CIDR", okRule + "allow = [\n  \"10.0.0.0/8\",\n  \"10.0.0.0/33\",\n]\n", []wantErr{{6, "rule[0].allow", `bad CIDR "10.0.0.0/33": prefix length out of range`}}},
		{"bad address", okRule + "deny = [\"10.0.0.256\"]\n", []wantErr{{4, "rule[0].deny", `bad address "10.0.0.256"`}}},
		{"zone", okRule + "accept_proxy_protocol = true\ntrusted_proxies = [\"fe80::1%eth0\"]\n", []wantErr{{5, "rule[0].trusted_proxies", "zone"}}},
		{"not an array", okRule + "allow = \"10.0.0.0/8\"\n", []wantErr{{4, "rule[0].allow", "want an array of strings"}}},
		{"array of ints", okRule + "deny = [1, 2]\n", []wantErr{{4, "rule[0].deny", "got an integer 1"}, {4, "rule[0].deny", "got an integer 2"}}},
		{"bad target", "[[rule]]\nlisten = \":1\"\ntargets = [\n  \"[2001:db8::1]:80\",\n  \"2001:db8::1\",\n  \":80\",\n]\n", []wantErr{
			{5, "rule[0].targets", `"2001:db8::1": want host:port`},
			{6, "rule[0].targets", "needs a host"},
		}},
		{"target port 0", "[[rule]]\nlisten = \":1\"\ntargets = [\"h:0\"]\n", []wantErr{{3, "rule[0].targets", `bad port "0"`}}},
		{"empty targets", "[[rule]]\nlisten = \":1\"\ntargets = []\n", []wantErr{{3, "rule[0].targets", "at least one target"}}},
		{"no targets", "[[rule]]\nlisten = \":1\"\n", []wantErr{{1, "rule[0].targets", "at least one target"}}},
		{"no listen", "\n[[rule]]\ntargets = [\"h:1\"]\n", []wantErr{{2, "rule[0].listen", "missing"}}},
		{"listen with protocol", "[[rule]]\nlisten = \"udp/:53\"\ntargets = [\"h:53\"]\n", []wantErr{{2, "rule[0].listen", `protocol = "udp"`}}},
		{"listen with slash", "[[rule]]\nlisten = \"a/b:1\"\ntargets = [\"h:53\"]\n", []wantErr{{2, "rule[0].listen", "want [host]:port"}}},
		{"listen bad port", "[[rule]]\nlisten = \":70000\"\ntargets = [\"h:53\"]\n", []wantErr{{2, "rule[0].listen", `bad port "70000"`}}},
		{"listen int", "[[rule]]\nlisten = 8080\ntargets = [\"h:53\"]\n", []wantErr{{2, "rule[0].listen", "want a string, got an integer 8080"}}},
		{"protocol", okRule + "protocol = \"sctp\"\n", []wantErr{{4, "rule[0].protocol", `want "tcp" or "udp"`}}},
		{"balance", okRule + "balance = \"random\"\n", []wantErr{{4, "rule[0].balance", `want "first" or "round-robin"`}}},
		{"proxy_protocol 3", okRule + "proxy_protocol = 3\n", []wantErr{{4, "rule[0].proxy_protocol", `want "v1" or "v2"`}}},
		{"proxy_protocol v3", okRule + "proxy_protocol = \"v3\"\n", []wantErr{{4, "rule[0].proxy_protocol", `got a string "v3"`}}},
		{"accept not bool", okRule + "accept_proxy_protocol = \"yes\"\n", []wantErr{{4, "rule[0].accept_proxy_protocol", "want true or false"}}},
		{"empty name", okRule + "name = \"\"\n", []wantErr{{4, "rule[0].name", "must not be empty"}}},
		{"udp proxy", "[[rule]]\nprotocol = \"udp\"\nlisten = \":53\"\ntargets = [\"h:53\"]\nproxy_protocol = \"v1\"\n", []wantErr{{5, "rule[0].proxy_protocol", "PROXY protocol is for TCP rules"}}},
		{"udp accept proxy", "[[rule]]\nprotocol = \"udp\"\nlisten = \":53\"\ntargets = [\"h:53\"]\naccept_proxy_protocol = true\n", []wantErr{{5, "rule[0].accept_proxy_protocol", "PROXY protocol is for TCP rules"}}},
		{"udp max_conns", "[[rule]]\nprotocol = \"udp\"\nlisten = \":53\"\ntargets = [\"h:53\"]\nmax_conns_per_source = 3\n", []wantErr{{5, "rule[0].max_conns_per_source", "UDP rules bound sessions with max_sessions"}}},
		{"accept without trusted", okRule + "accept_proxy_protocol = true\n", []wantErr{{4, "rule[0].trusted_proxies", "trusted load balancers"}}},
		{"accept from defaults", "[defaults]\naccept_proxy_protocol = true\n" + okRule, []wantErr{{3, "rule[0].trusted_proxies", "trusted load balancers"}}},
		{"duplicate name", okRule + "name = \"a\"\n[[rule]]\nlisten = \":9001\"\ntargets = [\"h:1\"]\nname = \"a\"\n", []wantErr{{8, "rule[1].name", `"a": rule[0] on line 4 has this name too`}}},
		{"duplicate listener", okRule + "[[rule]]\nlisten = \"0.0.0.0:9000\"\ntargets = [\"h:1\"]\n", []wantErr{{5, "rule[1].listen", `tcp "0.0.0.0:9000": rule[0] on line 2 listens there too (":9000")`}}},
		{"duplicate listener v6", "[[rule]]\nlisten = \"[::1]:53\"\ntargets = [\"h:1\"]\nprotocol = \"udp\"\n[[rule]]\nprotocol = \"udp\"\nlisten = \"[0:0::1]:053\"\ntargets = [\"h:1\"]\n", []wantErr{{7, "rule[1].listen", "listens there too"}}},
		{"overlapping listener", okRule + "[[rule]]\nlisten = \"127.0.0.1:9000\"\ntargets = [\"h:1\"]\n", []wantErr{{5, "rule[1].listen", `tcp "127.0.0.1:9000": rule[0] on line 2 listens on the same port, and one of the two on every address (":9000")`}}},
		{"duplicate port 0", "rule = [{listen = \":0\", targets = [\"h:1\"]}, {listen = \":0\", targets = [\"h:1\"]}]\n", []wantErr{{1, "rule[1].listen", "listens there too"}}},
		{"rule not a table", "rule = [1]\n", []wantErr{{1, "rule[0]", "want a table, got an integer 1"}}},
		{"defaults not a table", "defaults = 1\n" + okRule, []wantErr{{1, "defaults", "want a table"}}},
		{"default for listen", "[defaults]\nlisten = \":1\"\n" + okRule, []wantErr{{2, "defaults.listen", "each rule sets its own listen"}}},
		{"default typo", "[defaults]\nconnect_timout = \"1s\"\n" + okRule, []wantErr{{2, "defaults.connect_timout", `did you mean "connect_timeout"`}}},
		{"bad default reported once", "[defaults]\nmax_conns = -5\n" + okRule + "[[rule]]\nlisten = \":9001\"\ntargets = [\"h:1\"]\n", []wantErr{{2, "defaults.max_conns", "must not be negative"}}},
		{"log_format", "log_format = \"xml\"\n" + okRule, []wantErr{{1, "log_format", `want "text" or "json"`}}},
		{"metrics", "metrics = \"9100\"\n" + okRule, []wantErr{{1, "metrics", "want host:port"}}},
		{"trust without accept", okRule + "trusted_proxies = [\"10.0.0.5\"]\n", []wantErr{{4, "rule[0].trusted_proxies", "means nothing without accept_proxy_protocol"}}},
		{"drain_timeout", "drain_timeout = \"-5s\"\n" + okRule, []wantErr{{1, "drain_timeout", "must not be negative"}}},
		{"date", okRule + "idle_timeout = 1979-05-27\n", []wantErr{{4, "rule[0].idle_timeout", "got a local date 1979-05-27"}}},
		{"many, in line order", `log_format = "xml"
[defaults]
balance = "random"
[[rule]]
listen = ":1"
targets = ["h:1"]
max_conns = -1
[[rule]]
listen = ":2"
targets = ["h:2"]
[[rule]]
listen = ":3"
targets = ["h:3"]
allow = ["10.0.0.0/99"]
tagets = ["x"]
`, []wantErr{
			{1, "log_format", "xml"},
			{3, "defaults.balance", "random"},
			{7, "rule[0].max_conns", "negative"},
			{14, "rule[2].allow", "bad CIDR"},
			{15, "rule[2].tagets", `did you mean "targets"`},
		}},
	}
}

// flatten returns the errors joined in err, or err alone.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestParseBad(t *testing.T) {
	for _, c := range badFiles() {
		t.Run(c.name, func(t *testing.T) {
			f, err := Parse("rules.toml", []byte(c.toml))
			if err == nil {
				t.Fatalf("Parse = %+v, want an error", f)
			}
			if f != nil {
				t.Errorf("Parse returned a File with its error")
			}
			errs := flatten(err)
			if len(errs) != len(c.want) {
				t.Fatalf("Parse: %d errors, want %d:\n%v", len(errs), len(c.want), err)
			}
			for i, e := range errs {
				var ce *Error
				if !errors.As(e, &ce) {
					t.Fatalf("error %d is %T, want *Error: %v", i, e, e)
				}
				w := c.want[i]
				if ce.Path != "rules.toml" || ce.Line != w.line || ce.Key != w.key || !strings.Contains(ce.Err.Error(), w.msg) {
					t.Errorf("error %d = %q (line %d, key %q)\nwant line %d, key %q, containing %q", i, ce, ce.Line, ce.Key, w.line, w.key, w.msg)
				}
			}
		})
	}
}

func TestOneBadRuleFailsTheFile(t *testing.T) {
	doc := okRule + `
[[rule]]
listen = ":9001"
targets = ["10.0.0.2:80"]

[[rule]]
listen = ":9002"
targets = ["10.0.0.3:80"]
deny = ["10.0.0.0/8", "bogus"]

[[rule]]
listen = ":9003"
targets = ["10.0.0.4:80"]
`
	f, err := Parse("rules.toml", []byte(doc))
	if f != nil {
		t.Fatalf("Parse returned %d rules with a bad one among them", len(f.Rules))
	}
	if err == nil || err.Error() != `rules.toml:12: rule[2].deny: bad address "bogus": unable to parse IP` {
		t.Fatalf("Parse error = %v", err)
	}
}

func TestErrorMethods(t *testing.T) {
	_, err := Parse("x.toml", []byte("bogus = 1\n[[rule]]\nlisten = \":1\"\ntargets = [\"h:1\"]\naccept_proxy_protocol = true\n"))
	want := "x.toml:1: bogus: unknown key (known keys: drain_timeout, log_format, metrics, defaults, rule)\n" +
		"x.toml:5: rule[0].trusted_proxies: accept_proxy_protocol needs the addresses of the trusted load balancers"
	if err == nil || err.Error() != want {
		t.Fatalf("error =\n%v\nwant\n%s", err, want)
	}
	var bi interface{ BadInput() bool }
	if !errors.As(err, &bi) || !bi.BadInput() {
		t.Errorf("the joined error is not BadInput")
	}
	// The error of a Validate check keeps the forward.FieldError.
	var fe *forward.FieldError
	if !errors.As(err, &fe) || fe.Field != "trusted_proxies" {
		t.Errorf("errors.As FieldError = %v", fe)
	}

	_, err = Parse("x.toml", nil)
	if !errors.Is(err, ErrNoRules) || err.Error() != "x.toml: no [[rule]]: the file defines no forwarding rule" {
		t.Errorf("empty file: %v", err)
	}
}

func TestLoadMissing(t *testing.T) {
	f, err := Load("testdata/no-such-file.toml")
	if f != nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load = %v, %v", f, err)
	}
}

func TestSuggest(t *testing.T) {
	for _, c := range []struct{ key, want string }{
		{"conect_timeout", "connect_timeout"},
		{"target", "targets"},
		{"max-conns-per-source", "max_conns_per_source"},
		{"protcol", "protocol"},
		{"lisen", "listen"},
		{"nam", "name"},
		{"port", ""},
		{"allowed_ips", ""},
		{"x", ""},
	} {
		if got := suggest(c.key, ruleKeys()); got != c.want {
			t.Errorf("suggest(%q) = %q, want %q", c.key, got, c.want)
		}
	}
}

// TestDocExample keeps the package comment's example a file that parses.
func TestDocExample(t *testing.T) {
	src, err := os.ReadFile("config.go")
	if err != nil {
		t.Fatal(err)
	}
	var doc strings.Builder
	for _, line := range strings.Split(string(src), "\n") {
		if s, ok := strings.CutPrefix(line, "//\t"); ok {
			doc.WriteString(s + "\n")
		}
	}
	f, err := Parse("doc", []byte(doc.String()))
	if err != nil {
		t.Fatalf("%v\nin:\n%s", err, doc.String())
	}
	if len(f.Rules) != 2 || f.Rules[1].MaxConns != 0 || f.Rules[0].MaxConns != 1000 {
		t.Errorf("Parse = %+v", f)
	}
}

// TestParseDistinctListeners: rules on one port but different hosts, or of
// different protocols, do not clash.
func TestParseDistinctListeners(t *testing.T) {
	src := "rule = [{listen = \"127.0.0.1:9000\", targets = [\"h:1\"]}, {listen = \"127.0.0.2:9000\", targets = [\"h:1\"]}, {listen = \":9000\", protocol = \"udp\", targets = [\"h:1\"]}]\n"
	f, err := Parse("rules.toml", []byte(src))
	if err != nil || len(f.Rules) != 3 {
		t.Fatalf("Parse = %+v, %v; want 3 rules", f, err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestDrainTimeoutZero: an explicit zero is kept, not taken for absent.
func TestDrainTimeoutZero(t *testing.T) {
	f, err := Parse("rules.toml", []byte("drain_timeout = \"0s\"\n[[rule]]\nlisten = \":9000\"\ntargets = [\"h:1\"]\n"))
	if err != nil || f.DrainTimeout == nil || *f.DrainTimeout != 0 {
		t.Fatalf("Parse = %+v, %v; want drain_timeout 0", f, err)
	}
	f, err = Parse("rules.toml", []byte("[[rule]]\nlisten = \":9000\"\ntargets = [\"h:1\"]\n"))
	if err != nil || f.DrainTimeout != nil {
		t.Fatalf("Parse = %+v, %v; want no drain_timeout", f, err)
	}
}
