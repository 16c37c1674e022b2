package registry

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func names(ss []Service) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name+"/"+s.Proto.String())
	}
	return out
}

func TestByPort(t *testing.T) {
	tests := []struct {
		port  uint16
		proto Proto
		want  []string
	}{
		{5432, AnyProto, []string{"postgresql/tcp", "postgresql/udp"}},
		{53, UDP, []string{"domain/udp"}},
		{22, AnyProto, []string{"ssh/tcp", "ssh/udp", "ssh/sctp"}},
		{4, AnyProto, []string{"/tcp", "/udp"}},
		{50000, TCP, []string{"/tcp"}},
		{6379, UDP, []string{"/udp"}}, // reserved
	}
	for _, tt := range tests {
		got := names(ByPort(tt.port, tt.proto))
		if !slices.Equal(got, tt.want) {
			t.Errorf("ByPort(%d, %v) = %v, want %v", tt.port, tt.proto, got, tt.want)
		}
	}
	if s := ByPort(4, TCP)[0]; !s.Unassigned() {
		t.Errorf("port 4: %+v is not unassigned", s)
	}
	if s := ByPort(60000, AnyProto)[0]; !s.Unassigned() || s.Port != 60000 || RangeOf(s.Port) != Dynamic {
		t.Errorf("port 60000: %+v, want a synthesized unassigned row", s)
	}
	if s := ByPort(6379, UDP)[0]; !s.Reserved() {
		t.Errorf("6379/udp: %+v is not reserved", s)
	}
}

func TestByName(t *testing.T) {
	tests := []struct {
		name    string
		proto   Proto
		port    uint16
		aliasOf string
		n       int
	}{
		{"ssh", AnyProto, 22, "", 4}, // with the DNS-SD row without a port
		{"SSH", TCP, 22, "", 2},
		{"PostgreSQL", AnyProto, 5432, "", 2},
		{"www", AnyProto, 80, "http", 2},
		{"whois++", TCP, 63, "whoispp", 1},
		{"ldaps", AnyProto, 636, "", 2},
		{"x11", TCP, 6000, "", 1},
		{"EtherNet/IP-1", TCP, 2222, "EtherNet-IP-1", 1},
	}
	for _, tt := range tests {
		got := ByName(tt.name, tt.proto)
		if len(got) != tt.n {
			t.Errorf("ByName(%q) = %v, want %d rows", tt.name, names(got), tt.n)
			continue
		}
		if got[0].Port != tt.port || got[0].AliasOf != tt.aliasOf {
			t.Errorf("ByName(%q)[0] = port %d alias of %q, want %d, %q", tt.name, got[0].Port, got[0].AliasOf, tt.port, tt.aliasOf)
		}
	}
	if got := ByName("https", TCP); !slices.ContainsFunc(got, func(s Service) bool { return !s.HasPort }) {
		t.Errorf("https: the DNS-SD row without a port is missing: %v", got)
	}
	if got := ByName("no-such-service", AnyProto); len(got) != 0 {
		t.Errorf("unknown name answered %v", got)
	}
}

func TestByRange(t *testing.T) {
	got := New().AppendByRange(nil, 6000, 6010, TCP)
	if len(got) != 1 || got[0].Name != "x11" || got[0].Port != 6000 || got[0].PortEnd != 6063 {
		t.Errorf("6000-6010/tcp = %+v, want the one x11 range row", names(got))
	}
	got = New().AppendByRange(nil, 65530, 65535, AnyProto)
	if len(got) != 1 || !got[0].Unassigned() || got[0].Port != 65530 || got[0].PortEnd != 65535 {
		t.Errorf("65530-65535 = %+v, want one unassigned gap", got)
	}
	got = New().AppendByRange(nil, 20, 23, TCP)
	if w := []string{"ftp-data/tcp", "ftp/tcp", "ssh/tcp", "telnet/tcp"}; !slices.Equal(names(got), w) {
		t.Errorf("20-23/tcp = %v, want %v", names(got), w)
	}
}

func TestSearch(t *testing.T) {
	got := New().AppendSearch(nil, "KERBEROS", AnyProto)
	if len(got) < 10 || !slices.ContainsFunc(got, func(s Service) bool { return s.Name == "kerberos" && s.Port == 88 }) {
		t.Errorf("search kerberos: %d rows, kerberos/88 missing: %v", len(got), names(got))
	}
	for _, s := range got {
		if !strings.Contains(strings.ToLower(s.Name+s.Description), "kerberos") {
			t.Errorf("search kerberos returned %q: %q", s.Name, s.Description)
		}
	}
	if got := New().AppendSearch(nil, "  ", AnyProto); len(got) != 0 {
		t.Errorf("blank search answered %d rows", len(got))
	}
}

func TestSchemePort(t *testing.T) {
	tests := map[string]uint16{
		"http": 80, "https": 443, "ssh": 22, "postgres": 5432, "postgresql": 5432, "mysql": 3306,
		"redis": 6379, "rediss": 6379, "mongodb": 27017, "amqp": 5672, "amqps": 5671,
		"ldap": 389, "ldaps": 636, "smtp": 25, "imap": 143, "imaps": 993, "pop3": 110,
		"ftp": 21, "sftp": 22, "ws": 80, "wss": 443, "git": 9418, "HTTPS": 443, "rtsp": 554,
		"news": 119, "snews": 563, "smb": 445, "dns": 53, "irc": 6667, "ircs": 6697,
	}
	r := New()
	for scheme, want := range tests {
		if got, _, ok := r.SchemePort(scheme); !ok || got != want {
			t.Errorf("SchemePort(%q) = %d, %v; want %d", scheme, got, ok, want)
		}
	}
	if _, _, ok := r.SchemePort("nosuchscheme"); ok {
		t.Error("unknown scheme answered")
	}
}

func TestParseQuery(t *testing.T) {
	good := []struct {
		in   string
		want Query
	}{
		{"5432", Query{Kind: PortQuery, Port: 5432, PortEnd: 5432, HasPort: true}},
		{"0", Query{Kind: PortQuery, HasPort: true}},
		{"65535", Query{Kind: PortQuery, Port: 65535, PortEnd: 65535, HasPort: true}},
		{"53/udp", Query{Kind: PortQuery, Port: 53, PortEnd: 53, HasPort: true, Proto: UDP}},
		{"53/UDP", Query{Kind: PortQuery, Port: 53, PortEnd: 53, HasPort: true, Proto: UDP}},
		{"6000-6010", Query{Kind: RangeQuery, Port: 6000, PortEnd: 6010, HasPort: true}},
		{"6000-6010/tcp", Query{Kind: RangeQuery, Port: 6000, PortEnd: 6010, HasPort: true, Proto: TCP}},
		{"ssh", Query{Kind: NameQuery, Name: "ssh"}},
		{" ssh ", Query{Kind: NameQuery, Name: "ssh"}},
		{"domain/udp", Query{Kind: NameQuery, Name: "domain", Proto: UDP}},
		{"EtherNet/IP-1", Query{Kind: NameQuery, Name: "EtherNet/IP-1"}},
		{"https://x:8443/", Query{Kind: URLQuery, Name: "https", Port: 8443, PortEnd: 8443, HasPort: true, Proto: TCP}},
		{"postgres://db/app", Query{Kind: URLQuery, Name: "postgres", Proto: TCP}},
		{"HTTP://[::1]:81", Query{Kind: URLQuery, Name: "http", Port: 81, PortEnd: 81, HasPort: true, Proto: TCP}},
		// Names may start with a digit.
		{"2ping", Query{Kind: NameQuery, Name: "2ping"}},
		{"802-11-iapp/udp", Query{Kind: NameQuery, Name: "802-11-iapp", Proto: UDP}},
		{"5x", Query{Kind: NameQuery, Name: "5x"}},
	}
	for _, tt := range good {
		got, err := ParseQuery(tt.in)
		tt.want.Input = tt.in
		if err != nil || got != tt.want {
			t.Errorf("ParseQuery(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	bad := []string{"", "  ", "70000", "-1", "80/xyz", "1-", "80/", "10-5", "1-2-3", "+5", "https://h:99999/", "://x", "65536"}
	for _, in := range bad {
		_, err := ParseQuery(in)
		var ie *InputError
		if !errors.As(err, &ie) || ie.Input != in {
			t.Errorf("ParseQuery(%q) error = %v, want an InputError naming the input", in, err)
		}
	}
}

func TestLookupNotFound(t *testing.T) {
	r := New()
	_, err := r.Lookup(Query{Kind: NameQuery, Name: "postgress"})
	var nf *NotFoundError
	if !errors.As(err, &nf) || !slices.Contains(nf.Suggestions, "postgres") && !slices.Contains(nf.Suggestions, "postgresql") {
		t.Fatalf("Lookup(postgress) = %v, want not found suggesting postgresql", err)
	}
	if !strings.Contains(err.Error(), `no service named "postgress"`) {
		t.Errorf("message %q", err)
	}
}

func TestLookupURL(t *testing.T) {
	r := New()
	for in, want := range map[string][2]uint16{
		"https://example.com:8443/x": {8443, 443},
		"postgres://db/app":          {5432, 5432},
		"ws://h/":                    {80, 80},
		"unknownscheme://h:1234/":    {1234, 0},
	} {
		q, err := ParseQuery(in)
		if err != nil {
			t.Fatal(err)
		}
		a, err := r.Lookup(q)
		if err != nil || a.Port != want[0] || a.DefaultPort != want[1] || len(a.Services) == 0 {
			t.Errorf("Lookup(%q) = port %d default %d, %d services, %v; want %v", in, a.Port, a.DefaultPort, len(a.Services), err, want)
		}
	}
	q, _ := ParseQuery("unknownscheme://h/")
	if _, err := r.Lookup(q); err == nil {
		t.Error("unknown scheme without a port answered")
	}
}

func TestReferenceList(t *testing.T) {
	for in, want := range map[string][]string{
		"[RFC5321][RFC6409]":              {"RFC5321", "RFC6409"},
		"":                                nil,
		"[ISO/IEC 13818-6 MPEG-2 DSM-CC]": {"ISO/IEC 13818-6 MPEG-2 DSM-CC"},
		"plain text":                      {"plain text"},
		"[open":                           {"open"},
	} {
		s := Service{References: in}
		if got := s.ReferenceList(); !slices.Equal(got, want) {
			t.Errorf("ReferenceList(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRangeOf(t *testing.T) {
	for port, want := range map[uint16]Range{0: WellKnown, 1023: WellKnown, 1024: Registered, 49151: Registered, 49152: Dynamic, 65535: Dynamic} {
		if got := RangeOf(port); got != want {
			t.Errorf("RangeOf(%d) = %v, want %v", port, got, want)
		}
	}
}

func TestSuggest(t *testing.T) {
	r := New()
	for in, want := range map[string]string{"kerbros": "kerberos", "htpt": "http", "SHS": "ssh"} {
		if got := r.Suggest(in, 3); !slices.Contains(got, want) {
			t.Errorf("Suggest(%q) = %v, want it to hold %q", in, got, want)
		}
	}
	if got := r.Suggest("zzzzzzzzzzzzzzzzzzzzzzz", 3); len(got) != 0 {
		t.Errorf("Suggest(zzz…) = %v, want nothing", got)
	}
}

func BenchmarkByPort(b *testing.B) {
	r := New()
	buf := make([]Service, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		buf = r.AppendByPort(buf[:0], 5432, AnyProto)
	}
	if len(buf) != 2 {
		b.Fatal(names(buf))
	}
}

func BenchmarkByName(b *testing.B) {
	r := New()
	buf := make([]Service, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		buf = r.AppendByName(buf[:0], "PostgreSQL", AnyProto)
	}
	if len(buf) != 2 {
		b.Fatal(names(buf))
	}
}

// BenchmarkByPortLocal is ByPort with this system's services file as the
// overlay, which every lookup also scans.
func BenchmarkByPortLocal(b *testing.B) {
	r, err := Open(Options{Services: ServicesFile})
	if r.local == nil {
		b.Skipf("no usable %s: %v", ServicesFile, err)
	}
	buf := make([]Service, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		buf = r.AppendByPort(buf[:0], 5432, AnyProto)
	}
}

func BenchmarkOpenLocal(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if r, _ := Open(Options{Services: ServicesFile}); r.local == nil {
			b.Skipf("no usable %s", ServicesFile)
		}
	}
}

func TestPortName(t *testing.T) {
	r, _ := Open(Options{Services: "testdata/services"})
	for _, tt := range []struct {
		port  uint16
		proto Proto
		want  string
	}{{22, TCP, "ssh"}, {53, UDP, "domain"}, {4, TCP, ""}, {6379, UDP, ""}, {47999, TCP, "portkit-test"}, {60000, TCP, ""}} {
		if got := r.PortName(tt.port, tt.proto); got != tt.want {
			t.Errorf("PortName(%d, %v) = %q, want %q", tt.port, tt.proto, got, tt.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { r.PortName(5432, TCP) }); n != 0 {
		t.Errorf("PortName allocates %v times", n)
	}
}

// TestSuggestLeavesOutTheName: the name asked about is no suggestion of
// itself (asked for a protocol it lacks, or as a URL scheme).
func TestSuggestLeavesOutTheName(t *testing.T) {
	for _, name := range []string{"smb", "SMB", "postgresql"} {
		if got := New().Suggest(name, 3); slices.ContainsFunc(got, func(s string) bool { return strings.EqualFold(s, name) }) {
			t.Errorf("Suggest(%q) = %v", name, got)
		}
	}
}

func TestServiceStatus(t *testing.T) {
	for desc, want := range map[string]string{
		"Unassigned": "unassigned", "unassigned": "unassigned", "Unassigned [was netstat]": "unassigned",
		"Reserved": "reserved", "IANA Reserved": "reserved", "Reserved - IANA": "reserved",
		"De-registered": "de-registered", "Removed": "removed", "Deprecated": "deprecated",
		"De-Commissioned Port": "decommissioned", "any private mail system": "assigned", "": "assigned",
	} {
		if got := (&Service{Description: desc}).Status(); got != want {
			t.Errorf("Status of a nameless row %q = %q, want %q", desc, got, want)
		}
	}
	if got := (&Service{Name: "ssh", Description: "Reserved"}).Status(); got != "assigned" {
		t.Errorf("a named row: %q", got)
	}
}
