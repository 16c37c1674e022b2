package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portkit/portkit/registry"
	"github.com/portkit/portkit/scan"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var start = time.Date(2024, 1, 2, 15, 4, 5, 0, time.UTC)

// info describes the fixture scan. One argument holds every character XML
// must escape.
var info = ScanInfo{
	Start:   start,
	Args:    []string{"portkit", "scan", "-p", "22,23,53,80,161,443,1023", "--exclude", `198.18.0.9<&>"'`, "198.18.0.0/28", "2001:db8::/126"},
	Version: "v0.1.0",
	Protocols: []Protocol{
		{Proto: scan.TCP, Type: "syn", Ports: "22,23,53,80,443,1023", NumPorts: 6},
		{Proto: scan.UDP, Type: "udp", Ports: "53,161", NumPorts: 2},
	},
	Targets: 20,
	Seed:    18446744073709551557, // above 2^53: written as a string
	Shard:   2,
	Shards:  4,
}

func result(ip string, port uint16, proto scan.Proto, state scan.State, rtt time.Duration, reason string, ttl uint8) scan.Result {
	return scan.Result{Probe: scan.Probe{IP: netip.MustParseAddr(ip), Port: port, Proto: proto},
		State: state, RTT: rtt, Reason: reason, TTL: ttl}
}

// results arrive interleaved across hosts, as a permuted scan reports
// them, in every state, IPv4 and IPv6, TCP and UDP; .10 sorts after .3 only
// by address, not as text.
var results = []scan.Result{
	result("198.18.0.10", 80, scan.TCP, scan.Open, 2100*time.Microsecond, "syn-ack", 64),
	result("2001:db8::1", 53, scan.UDP, scan.Open, 850*time.Microsecond, "udp-response", 0),
	result("198.18.0.2", 443, scan.TCP, scan.Filtered, 0, "no-response", 0),
	result("198.18.0.2", 22, scan.TCP, scan.Open, 1200*time.Microsecond, "syn-ack", 64),
	result("198.18.0.3", 23, scan.TCP, scan.Closed, 900*time.Microsecond, "reset", 63),
	result("2001:db8::1", 22, scan.TCP, scan.Open, 1500*time.Microsecond, "syn-ack", 57),
	result("198.18.0.2", 161, scan.UDP, scan.OpenFiltered, 0, "no-response", 0),
	result("198.18.0.2", 53, scan.UDP, scan.Open, 700*time.Microsecond, "udp-response", 64),
	result("198.18.0.2", 1023, scan.TCP, scan.Open, 1100*time.Microsecond, "syn-ack", 64),
	result("198.18.0.3", 53, scan.UDP, scan.Closed, 950*time.Microsecond, "port-unreach", 63),
	result("198.18.0.2", 53, scan.TCP, scan.Closed, 1000*time.Microsecond, "reset", 64),
	result("198.18.0.4", 22, scan.TCP, scan.Filtered, 3*time.Millisecond, "admin-prohibited", 250),
}

func summary(exit Exit) Summary {
	s := Summary{End: start.Add(1500 * time.Millisecond), Elapsed: 1500 * time.Millisecond,
		HostsUp: 4, HostsDown: 16, HostsTotal: 20, Exit: exit}
	if exit == Failed {
		s.Error = `scan: start syn engine: "raw" sockets <gone>`
	}
	for _, r := range results {
		switch r.State {
		case scan.Open:
			s.Open++
		case scan.Closed:
			s.Closed++
		case scan.Filtered:
			s.Filtered++
		case scan.OpenFiltered:
			s.OpenFiltered++
		}
	}
	return s
}

func noEnv(string) string { return "" }

// write runs a whole scan's report through format.
func write(t *testing.T, format string, opts Options, rs []scan.Result, exit Exit) []byte {
	t.Helper()
	var b bytes.Buffer
	opts.Getenv = noEnv
	w, err := New(format, &b, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Begin(info); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if err := w.Result(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.End(summary(exit)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	for _, format := range Formats() {
		for _, all := range []bool{false, true} {
			name := format
			if all {
				name += "-all"
			}
			t.Run(name, func(t *testing.T) {
				got := write(t, format, Options{All: all}, results, Success)
				path := filepath.Join("testdata", name+".golden")
				if *update {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("got\n%s\nwant\n%s\n(go test -update rewrites testdata/)", got, want)
				}
			})
		}
	}
}

func TestNew(t *testing.T) {
	if _, err := New("yaml", new(bytes.Buffer), Options{}); err == nil || !strings.Contains(err.Error(), `"yaml"`) {
		t.Errorf("New(yaml) error = %v, want one naming the format", err)
	}
}

func TestServiceName(t *testing.T) {
	n := namer{reg: registry.New()}
	for _, c := range []struct {
		port  uint16
		proto scan.Proto
		want  string
	}{
		{22, scan.TCP, "ssh"},
		{80, scan.TCP, "http"}, // before its aliases www and www-http
		{53, scan.UDP, "domain"},
		{1023, scan.TCP, ""}, // reserved: a row, but no name
	} {
		if got := n.name(c.port, c.proto); got != c.want {
			t.Errorf("name(%d/%v) = %q, want %q", c.port, c.proto, got, c.want)
		}
	}
}

// TestEncodeAsEncodingJSON checks the hand-made JSON of a result against
// encoding/json's of its record, with names and reasons that need escaping
// and a zoned address.
func TestEncodeAsEncodingJSON(t *testing.T) {
	e := newEncoder(Options{Registry: registry.New()})
	zoned := result("fe80::1", 80, scan.TCP, scan.Open, time.Millisecond, "syn-ack", 64)
	zoned.IP = zoned.IP.WithZone(`eth"0\<&>`)
	for _, r := range []scan.Result{
		result("198.18.0.2", 22, scan.TCP, scan.Open, 1234567*time.Nanosecond, "syn-ack", 64),
		result("198.18.0.2", 1023, scan.TCP, scan.Closed, 0, "reset", 0),
		result("2001:db8::1", 53, scan.UDP, scan.OpenFiltered, 0, "no-response", 0),
		result("198.18.0.3", 161, scan.UDP, scan.Filtered, 5*time.Second, "a \"quoted\" <reason> & \n\x01 é \u2028 \xff", 255),
		zoned,
	} {
		if err := e.encode(&r); err != nil {
			t.Fatal(err)
		}
		got := e.buf.String()
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		enc.Encode(record{IP: r.IP, Port: r.Port, Protocol: r.Proto, State: r.State,
			Service: e.names.name(r.Port, r.Proto), RTT: r.RTT.Microseconds(), Reason: r.Reason, TTL: r.TTL})
		if got != want.String() {
			t.Errorf("encode(%v:%d)\n got %s\nwant %s", r.IP, r.Port, got, want.String())
		}
	}
}

// TestStreaming checks that the streaming formats write each result out by
// a Flush, before End (the CLI flushes from the Scanner's progress calls),
// and by themselves once liveLatency has passed.
func TestStreaming(t *testing.T) {
	for _, format := range []string{"jsonl", "csv"} {
		t.Run(format, func(t *testing.T) {
			var b bytes.Buffer
			w, err := New(format, &b, Options{All: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Begin(info); err != nil {
				t.Fatal(err)
			}
			w.Flush()
			header := strings.Count(b.String(), "\n")
			for i, r := range results {
				if err := w.Result(r); err != nil {
					t.Fatal(err)
				}
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
				lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
				if len(lines) != header+i+1 {
					t.Fatalf("after %d results, %d lines written:\n%s", i+1, len(lines), b.String())
				}
				if last := lines[len(lines)-1]; !strings.Contains(last, r.IP.String()) {
					t.Errorf("line %q is not the result for %v", last, r.Probe)
				}
			}
		})
	}
}

func TestLiveWriterFlushesByTime(t *testing.T) {
	var b bytes.Buffer
	l := newLiveWriter(&b)
	l.Write([]byte("a\n"))
	if b.Len() != 0 {
		t.Fatal("flushed at once")
	}
	l.last = l.last.Add(-liveLatency)
	l.Write([]byte("b\n"))
	if b.String() != "a\nb\n" {
		t.Fatalf("after liveLatency: %q", b.String())
	}
}

// TestJSONInterrupted checks that the json document of a scan cut short, or
// of one that found nothing, parses.
func TestJSONInterrupted(t *testing.T) {
	for _, rs := range [][]scan.Result{results[:3], nil} {
		out := write(t, "json", Options{}, rs, Interrupted)
		var doc struct {
			Scan    map[string]any   `json:"scan"`
			Results []map[string]any `json:"results"`
			Summary struct {
				Exit string `json:"exit"`
			} `json:"summary"`
		}
		if err := json.Unmarshal(out, &doc); err != nil {
			t.Fatalf("%v in\n%s", err, out)
		}
		open := 0
		for _, r := range rs {
			if r.State == scan.Open {
				open++
			}
		}
		if len(doc.Results) != open || doc.Summary.Exit != "interrupted" || doc.Scan["version"] != "v0.1.0" {
			t.Errorf("got %d results, exit %q, scan %v; want %d results, exit interrupted", len(doc.Results), doc.Summary.Exit, doc.Scan, open)
		}
	}
}

// TestFailedScan: a scan that stopped on an error says so, and why, in
// every format's footer.
func TestFailedScan(t *testing.T) {
	why := `scan: start syn engine: "raw" sockets <gone>`
	var doc struct {
		Summary struct {
			Exit  string `json:"exit"`
			Error string `json:"error"`
		} `json:"summary"`
	}
	if out := write(t, "json", Options{}, results, Failed); json.Unmarshal(out, &doc) != nil || doc.Summary.Exit != "error" || doc.Summary.Error != why {
		t.Errorf("json summary %+v in\n%s", doc.Summary, out)
	}
	if out := string(write(t, "grep", Options{}, results, Failed)); !strings.Contains(out, "# portkit error ("+why+") at ") {
		t.Errorf("grep footer:\n%s", out)
	}
	if out := string(write(t, "xml", Options{}, results, Failed)); !strings.Contains(out, `exit="error" errormsg="scan: start syn engine: &#34;raw&#34; sockets &lt;gone&gt;"`) {
		t.Errorf("xml footer:\n%s", out)
	}
}
