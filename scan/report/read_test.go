package report

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portkit/portkit/scan"
)

// header is a run's "scan" line for the tests: seed, shard I of N, a start
// minute past the fixture's start, resumed or not.
func header(seed uint64, shard, shards, minute int, resumed bool) string {
	var b bytes.Buffer
	w, _ := New("jsonl", &b, Options{})
	i := info
	i.Start = start.Add(time.Duration(minute) * time.Minute)
	i.Seed, i.Shard, i.Shards, i.Resumed = seed, shard, shards, resumed
	w.Begin(i)
	w.Flush()
	return b.String()
}

// footer is a run's "summary" line, of a run that started at the
// fixture's start.
func footer(exit Exit) string { return footerAt(0, exit) }

// footerAt is the "summary" line of a run that started minute minutes
// after the fixture's start.
func footerAt(minute int, exit Exit) string {
	var b bytes.Buffer
	w, _ := New("jsonl", &b, Options{})
	s := summary(exit)
	s.End = s.End.Add(time.Duration(minute) * time.Minute)
	w.End(s)
	return b.String()
}

// lines writes results as the jsonl writer does.
func lines(rs ...scan.Result) string {
	var b bytes.Buffer
	w, _ := New("jsonl", &b, Options{All: true})
	for _, r := range rs {
		w.Result(r)
	}
	w.Flush()
	return b.String()
}

func merge(t *testing.T, inputs ...string) *Merge {
	t.Helper()
	m := NewMerge()
	for i, in := range inputs {
		if err := m.Read(strings.NewReader(in), fmt.Sprintf("in%d.jsonl", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func TestReadJSONL(t *testing.T) {
	in := header(7, 1, 1, 0, false) + lines(results...) + "\n" + footer(Success)
	var runs []*Run
	var got []Entry
	skipped, err := ReadJSONL(strings.NewReader(in), "a.jsonl", func(r *Run) { runs = append(runs, r) }, func(_ *Run, e Entry) { got = append(got, e) })
	if err != nil || skipped != 0 {
		t.Fatalf("ReadJSONL: %d skipped, %v", skipped, err)
	}
	if len(runs) != 1 || runs[0].Info == nil || runs[0].Summary == nil || runs[0].Results != len(results) {
		t.Fatalf("runs = %+v, want one with its scan and summary lines and %d results", runs, len(results))
	}
	i, s := runs[0].Info, runs[0].Summary
	if i.Seed != 7 || i.Shard != 1 || i.Shards != 1 || !i.Start.Equal(start) || i.Targets != info.Targets || len(i.Protocols) != 2 || i.Protocols[1].Proto != scan.UDP {
		t.Errorf("info = %+v", i)
	}
	if s.Exit != Success || s.Elapsed != 1500*time.Millisecond || s.Open != 6 {
		t.Errorf("summary = %+v", s)
	}
	for k, e := range got {
		r := results[k]
		if e.Result != r {
			t.Errorf("result %d = %+v, want %+v", k, e.Result, r)
		}
	}
	if got[0].Service != "http" {
		t.Errorf("service = %q, want http", got[0].Service)
	}
}

// TestReadJSONLOptionalFields: host names and banners, where a line has
// them, are read as they are; a line of a type not known is skipped.
func TestReadJSONLOptionalFields(t *testing.T) {
	in := `{"ip":"198.18.0.2","port":80,"protocol":"tcp","state":"open","hostname":"a<b>","banner":"HTTP/1.0 200\r\n<script>"}
{"type":"progress","done":5}
`
	var got []Entry
	skipped, err := ReadJSONL(strings.NewReader(in), "a", func(*Run) {}, func(_ *Run, e Entry) { got = append(got, e) })
	if err != nil || skipped != 1 || len(got) != 1 {
		t.Fatalf("%d entries, %d skipped, %v", len(got), skipped, err)
	}
	if got[0].Hostname != "a<b>" || got[0].Banner != "HTTP/1.0 200\r\n<script>" {
		t.Errorf("entry = %+v", got[0])
	}
}

// TestReadJSONLErrors: a line that cannot be read is named file:line, with
// what is wrong in it.
func TestReadJSONLErrors(t *testing.T) {
	good := `{"ip":"198.18.0.2","port":80,"protocol":"tcp","state":"open"}`
	for _, c := range []struct{ line, want string }{
		{`{"ip":"198.18.0.2","port":80,`, "not JSON: unexpected end of JSON input"},
		{`[1,2]`, "not a JSON object"},
		{`nonsense`, "not a JSON object"},
		{`{"port":80,"protocol":"tcp","state":"open"}`, `no "ip"`},
		{`{"ip":"198.18.0.300","port":80,"protocol":"tcp","state":"open"}`, `"ip" "198.18.0.300" is not an IP address`},
		{`{"ip":7,"port":80,"protocol":"tcp","state":"open"}`, `"ip" is 7, not a string`},
		{`{"ip":"198.18.0.2","port":70000,"protocol":"tcp","state":"open"}`, `"port" is 70000, not a whole number from 0 to 65535`},
		{`{"ip":"198.18.0.2","port":"80","protocol":"tcp","state":"open"}`, `"port" is "80", not a whole number`},
		{`{"ip":"198.18.0.2","port":80,"protocol":"sctp","state":"open"}`, `"protocol" "sctp" is not tcp or udp`},
		{`{"ip":"198.18.0.2","port":80,"protocol":"tcp","state":"opn"}`, `"state" "opn" is not open, closed, filtered or open|filtered`},
		{`{"ip":"198.18.0.2","port":80,"protocol":"tcp"}`, `no "state"`},
		{`{"ip":"198.18.0.2","port":80,"protocol":"tcp","state":"open","rtt_us":-1}`, `"rtt_us" is -1`},
		{`{"ip":"198.18.0.2","port":80,"protocol":"tcp","state":"open","ttl":256}`, `"ttl" is 256, not a whole number from 0 to 255`},
		{`{"ip":"198.18.0.2","port":80,"protocol":"tcp","state":"open","banner":{}}`, `"banner" is {}, not a string`},
		{`{"type":"scan","seed":"x"}`, `a "scan" line`},
		{`{"type":"scan","start":"2024-01-02T15:04:05Z","seed":"1","shard":3,"shards":2}`, `a "scan" line of shard 3 of 2`},
		{`{"type":"scan","seed":"1"}`, `a "scan" line without its "start"`},
		{`{"type":"summary","open":"many"}`, `a "summary" line: "open" is a JSON string`},
		{`{"type":7}`, "not a JSON Lines result of portkit"},
	} {
		in := good + "\n\n" + c.line + "\n" + good + "\n"
		_, err := ReadJSONL(strings.NewReader(in), "shard.jsonl", func(*Run) {}, func(*Run, Entry) {})
		var le *LineError
		if !errors.As(err, &le) || le.Line != 3 || !strings.HasPrefix(err.Error(), "shard.jsonl:3: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant shard.jsonl:3: …%s…", c.line, err, c.want)
		}
	}
	long := good + "\n" + `{"ip":"` + strings.Repeat("1", maxLine) + `"}` + "\n"
	if _, err := ReadJSONL(strings.NewReader(long), "big", func(*Run) {}, func(*Run, Entry) {}); err == nil || !strings.HasPrefix(err.Error(), "big:2: a line longer than") {
		t.Errorf("a long line: %v", err)
	}
}

// TestMergeNewestWins: of two decisions on one port, the later run's
// start wins whatever the order they are read in; undated ones (no "scan"
// line) are older than dated ones and, between them, the one read last
// wins.
func TestMergeNewestWins(t *testing.T) {
	closed := result("198.18.0.2", 22, scan.TCP, scan.Closed, time.Millisecond, "reset", 64)
	open := result("198.18.0.2", 22, scan.TCP, scan.Open, time.Millisecond, "syn-ack", 64)
	other := result("198.18.0.3", 22, scan.TCP, scan.Open, time.Millisecond, "syn-ack", 64)
	newer := header(1, 1, 1, 60, false) + lines(open) + footer(Success)
	older := header(2, 1, 1, 0, false) + lines(closed, other) + footer(Success)
	for _, c := range []struct {
		name   string
		inputs []string
		want   scan.State
	}{
		{"newer read last", []string{older, newer}, scan.Open},
		{"newer read first", []string{newer, older}, scan.Open},
		{"undated: read last wins", []string{lines(open), lines(closed)}, scan.Closed},
		{"undated: read last wins, within a file", []string{lines(closed, open)}, scan.Open},
		{"undated is older than dated", []string{newer, lines(closed)}, scan.Open},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := merge(t, c.inputs...)
			es := m.Entries()
			var got scan.State
			for _, e := range es {
				if e.Probe == open.Probe {
					got = e.State
				}
			}
			if got != c.want {
				t.Errorf("22/tcp of 198.18.0.2 is %v, want %v (entries %v)", got, c.want, es)
			}
		})
	}
	if es := merge(t, older, newer).Entries(); len(es) != 2 || es[0].IP.String() != "198.18.0.2" || es[1].IP.String() != "198.18.0.3" {
		t.Errorf("entries = %v, want one per address and port, in address order", es)
	}
}

// TestCheck: what the inputs lack or hold twice, named.
func TestCheck(t *testing.T) {
	a := result("198.18.0.2", 22, scan.TCP, scan.Open, time.Millisecond, "syn-ack", 64)
	b := result("198.18.0.2", 80, scan.TCP, scan.Closed, time.Millisecond, "reset", 64)
	shard := func(i, n, minute int, exit Exit, rs ...scan.Result) string {
		s := header(9, i, n, minute, false) + lines(rs...)
		if exit != "" {
			s += footer(exit)
		}
		return s
	}
	resumed := func(i, n, minute int, rs ...scan.Result) string {
		return header(9, i, n, minute, true) + lines(rs...) + footer(Success)
	}
	for _, c := range []struct {
		name       string
		inputs     []string
		incomplete bool
		want       []string // one per problem, in order
	}{
		{"whole", []string{shard(1, 2, 0, Success, a), shard(2, 2, 0, Success, b)}, false, nil},
		{"unsharded", []string{shard(1, 1, 0, Success, a, b)}, false, nil},
		{"missing", []string{shard(1, 3, 0, Success, a), shard(3, 3, 0, Success, b)}, true,
			[]string{"shard 2/3 of seed 9 (20 addresses, tcp ports 22,23,53,80,443,1023, udp ports 53,161, 3 shards) is missing"}},
		{"interrupted", []string{shard(1, 2, 0, Success, a), shard(2, 2, 0, Interrupted, b)}, true,
			[]string{"shard 2/2 of seed 9 (20 addresses, tcp ports 22,23,53,80,443,1023, udp ports 53,161, 2 shards) did not finish: in2.jsonl:1 was interrupted; continue it with portkit scan --resume"}},
		{"interrupted, then resumed", []string{shard(1, 2, 0, Success, a), shard(2, 2, 0, Interrupted) + resumed(2, 2, 5, b)}, false, nil},
		{"resumed into another file", []string{shard(1, 2, 0, Success, a), shard(2, 2, 0, Interrupted), resumed(2, 2, 5, b)}, false, nil},
		{"cut short", []string{shard(1, 1, 0, "", a)}, true,
			[]string{`the scan of seed 9 (20 addresses, tcp ports 22,23,53,80,443,1023, udp ports 53,161) did not finish: in1.jsonl:1 has no "summary" line`}},
		{"failed", []string{shard(1, 1, 0, Failed, a)}, true,
			[]string{`did not finish: in1.jsonl:1 stopped on an error: scan: start syn engine: "raw" sockets <gone>`}},
		{"doubled", []string{shard(1, 2, 0, Success, a), shard(2, 2, 0, Success, b), shard(2, 2, 9, Success, b)}, false,
			[]string{"shard 2/2 of seed 9 (20 addresses, tcp ports 22,23,53,80,443,1023, udp ports 53,161, 2 shards) was scanned 2 times from the start (in2.jsonl:1, in3.jsonl:1): the newest result of each port is kept"}},
		{"overlap", []string{shard(1, 2, 0, Success, a), shard(2, 2, 0, Success, a, b)}, false,
			[]string{"shards 1/2 and 2/2 of seed 9 (20 addresses, tcp ports 22,23,53,80,443,1023, udp ports 53,161, 2 shards) both hold 1 result (198.18.0.2:22/tcp): shards of one scan are disjoint, so these are not"}},
		{"two scans", []string{shard(1, 1, 0, Success, a), header(10, 1, 1, 1, false) + lines(b) + footer(Success)}, false,
			[]string{"the inputs hold 2 different scans, merged with the newest result of each port kept: seed 9 (20 addresses, tcp ports 22,23,53,80,443,1023, udp ports 53,161) in in1.jsonl; seed 10 (20 addresses, tcp ports 22,23,53,80,443,1023, udp ports 53,161) in in2.jsonl"}},
		{"no scan line", []string{lines(a), shard(1, 1, 0, Success, b)}, false,
			[]string{`in1.jsonl: results without a "scan" line (an older portkit's output): which scan and shard they are of cannot be checked`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := merge(t, c.inputs...)
			problems := m.Check()
			if len(problems) != len(c.want) {
				t.Fatalf("problems %+v, want %d", problems, len(c.want))
			}
			incomplete := false
			for i, p := range problems {
				incomplete = incomplete || p.Incomplete
				if !strings.Contains(p.Text, c.want[i]) {
					t.Errorf("problem %d:\n got %s\nwant …%s…", i, p.Text, c.want[i])
				}
			}
			s := m.Summary(m.Info(nil, "v"), problems)
			if incomplete != c.incomplete || (s.Exit == Failed) != c.incomplete {
				t.Errorf("incomplete %v, summary exit %v: want incomplete %v", incomplete, s.Exit, c.incomplete)
			}
		})
	}
}

// TestMergeSummary: the merged report's header and footer.
func TestMergeSummary(t *testing.T) {
	a := result("198.18.0.2", 22, scan.TCP, scan.Open, time.Millisecond, "syn-ack", 64)
	b := result("198.18.0.3", 80, scan.TCP, scan.Closed, time.Millisecond, "reset", 64)
	c := result("198.18.0.4", 80, scan.TCP, scan.Filtered, 0, "no-response", 0)
	m := merge(t, header(5, 1, 2, 0, false)+lines(a, c)+footer(Success), header(5, 2, 2, 1, false)+lines(b)+footerAt(1, Success))
	i := m.Info([]string{"portkit", "report"}, "v1")
	if !i.Start.Equal(start) || i.Seed != 5 || i.Shard != 1 || i.Shards != 1 || i.Targets != 20 || len(i.Protocols) != 2 {
		t.Errorf("info = %+v: want the earliest start, the one seed, as the whole scan", i)
	}
	s := m.Summary(i, m.Check())
	// The second run started a minute after the first and ran 1.5s.
	if s.Open != 1 || s.Closed != 1 || s.Filtered != 1 || s.HostsUp != 2 || s.HostsTotal != 20 || s.HostsDown != 18 ||
		s.Elapsed != time.Minute+1500*time.Millisecond || s.Exit != Success {
		t.Errorf("summary = %+v", s)
	}
	elapsed, probes := m.Timing()
	if elapsed != 3*time.Second || probes != 2*12 {
		t.Errorf("timing = %v, %d probes", elapsed, probes)
	}
	mixed := merge(t, header(5, 1, 1, 0, false)+lines(a)+footer(Success), header(6, 1, 1, 0, false)+lines(b)+footer(Success))
	if i := mixed.Info(nil, "v"); i.Seed != 0 || i.Shards != 0 {
		t.Errorf("two scans' info = %+v: want no seed nor shard", i)
	}
}

// TestMergeEmpty: an input with no line is named.
func TestMergeEmpty(t *testing.T) {
	m := merge(t, "", "\n\n", lines(results[0]))
	if strings.Join(m.Empty, " ") != "in1.jsonl in2.jsonl" || m.Len() != 1 {
		t.Errorf("empty %v, %d entries", m.Empty, m.Len())
	}
}

// FuzzReadJSONL: any input is read or refused with a LineError, never a
// panic; what is read, written again by the jsonl writer and read back,
// is the same results.
func FuzzReadJSONL(f *testing.F) {
	f.Add([]byte(header(7, 1, 2, 0, false) + lines(results...) + footer(Success)))
	f.Add([]byte(`{"ip":"fe80::1%eth0","port":0,"protocol":"udp","state":"open|filtered","rtt_us":9223372036854775,"ttl":255,"banner":"\u0000<"}`))
	f.Add([]byte(`{"type":"scan","start":"2024-01-02T15:04:05Z","seed":"18446744073709551615","shard":1,"shards":1,"protocols":[{"protocol":"udp"}]}`))
	f.Add([]byte("{\"type\":\"summary\",\"elapsed_s\":1e308}\n{}\n"))
	seeds, _ := filepath.Glob(filepath.Join("testdata", "jsonl*.golden"))
	for _, name := range seeds {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got []scan.Result
		_, err := ReadJSONL(bytes.NewReader(data), "fuzz", func(*Run) {}, func(_ *Run, e Entry) { got = append(got, e.Result) })
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) {
				t.Fatalf("error %v is not a LineError", err)
			}
			return
		}
		again := lines(got...)
		var back []scan.Result
		if _, err := ReadJSONL(strings.NewReader(again), "again", func(*Run) {}, func(_ *Run, e Entry) { back = append(back, e.Result) }); err != nil {
			t.Fatalf("reading back %q: %v", again, err)
		}
		if len(back) != len(got) {
			t.Fatalf("%d results read back, want %d", len(back), len(got))
		}
		for i := range got {
			if back[i] != got[i] {
				t.Fatalf("result %d read back %+v, want %+v", i, back[i], got[i])
			}
		}
	})
}
