package registry

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParseServices(t *testing.T) {
	f, err := os.Open("testdata/services")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries, err := ParseServices(f)
	if len(entries) != 6 {
		t.Errorf("got %d entries, want 6: %+v", len(entries), entries)
	}
	var le *ServicesLineError
	if !errors.As(err, &le) || le.Line != 8 {
		t.Fatalf("error = %v, want the first bad line, 8", err)
	}
	for _, want := range []string{"line 9", "line 10", "line 12", "bad port number", "no protocol after the slash"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	pg := entries[2]
	if pg.Name != "postgresql" || pg.Port != 5432 || pg.Proto != TCP || !slices.Equal(pg.Aliases, []string{"postgres"}) || pg.Comment != "PostgreSQL Database" {
		t.Errorf("postgresql line = %+v", pg)
	}
}

func TestOverlay(t *testing.T) {
	r, err := Open(Options{Services: "testdata/services"})
	if err == nil {
		t.Error("malformed lines were not reported")
	}
	// IANA has ssh, http and www on their ports: not repeated.
	for _, name := range []string{"ssh", "www", "http"} {
		for _, s := range r.AppendByName(nil, name, AnyProto) {
			if s.Source != IANA {
				t.Errorf("%s repeated from the overlay: %+v", name, s)
			}
		}
	}
	pg := r.AppendByName(nil, "postgres", AnyProto)
	if len(pg) != 1 || pg[0].Source != EtcServices || pg[0].Port != 5432 || pg[0].AliasOf != "postgresql" {
		t.Errorf("postgres = %+v, want the overlay alias of postgresql", pg)
	}
	got := r.AppendByPort(nil, 47999, AnyProto)
	// IANA says unassigned; the local names follow.
	if w := []string{"/any", "portkit-test/tcp", "pkt/tcp", "pkt-alt/tcp", "portkit-test/udp"}; !slices.Equal(names(got), w) {
		t.Errorf("47999 = %v, want %v", names(got), w)
	}
	if got := r.AppendByRange(nil, 47990, 48000, TCP); !slices.ContainsFunc(got, func(s Service) bool { return s.Name == "pkt" }) {
		t.Errorf("range misses the overlay: %v", names(got))
	}
	if got := r.AppendSearch(nil, "local name", AnyProto); len(got) != 3 {
		t.Errorf("search in overlay comments = %v", names(got))
	}
	if got := r.Suggest("portkit-tset", 1); !slices.Equal(got, []string{"portkit-test"}) {
		t.Errorf("suggest from overlay = %v", got)
	}
	if _, err := Open(Options{Services: "testdata/no-such-file"}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing overlay: %v", err)
	}
}

func FuzzParseServices(f *testing.F) {
	seed, err := os.ReadFile("testdata/services")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(seed))
	f.Add("a 1/tcp b c # d\n\n#x\n")
	f.Add("x 65536/udp\ny -1/tcp\nz 1/\n")
	f.Fuzz(func(t *testing.T, s string) {
		entries, _ := ParseServices(strings.NewReader(s))
		for _, e := range entries {
			if e.Name == "" || e.Proto == AnyProto || strings.ContainsAny(e.Name, " \t#") {
				t.Fatalf("bad entry %+v from %q", e, s)
			}
		}
		// Building an overlay from anything parsed must not fail either.
		r := New()
		r.local = entries
		r.indexLocal()
		for _, e := range entries {
			r.AppendByPort(nil, e.Port, e.Proto)
			r.AppendByName(nil, e.Name, AnyProto)
		}
		r.AppendSearch(nil, "a", AnyProto)
	})
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"5432", "53/udp", "6000-6010", "ssh", "www", "PostgreSQL", "https://x:8443/",
		"postgres://db/app", "70000", "-1", "80/xyz", "1-", "", "EtherNet/IP-1", "a/tcp", "http://[::1", "0-65535/dccp"} {
		f.Add(s)
	}
	r := New()
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseQuery(s)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || ie.Input != s {
				t.Fatalf("ParseQuery(%q): error %v does not name the input", s, err)
			}
			return
		}
		if q.Kind == RangeQuery && q.PortEnd < q.Port {
			t.Fatalf("ParseQuery(%q) = reversed range %+v", s, q)
		}
		if q.Kind == RangeQuery && q.PortEnd-q.Port > 2000 {
			return // answering is linear in the range; keep the fuzzer quick
		}
		a, err := r.Lookup(q)
		if err == nil && len(a.Services) == 0 && q.Kind != NameQuery {
			t.Fatalf("Lookup(%q) answered nothing and no error", s)
		}
	})
}
