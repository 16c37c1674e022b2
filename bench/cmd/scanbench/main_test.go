package main

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/portkit/portkit/bench/internal/scanplan"
)

var (
	hostA = netip.MustParseAddr("198.18.0.2")
	hostB = netip.MustParseAddr("198.18.4.1")
)

// smallTruth is hostA on ports 1–10 with 3 and 7 open.
func smallTruth() *truth {
	t := &truth{addrs: map[netip.Addr]bool{hostA: true}, ports: map[uint16]bool{}, open: map[key]bool{}}
	for p := uint16(1); p <= 10; p++ {
		t.ports[p] = true
	}
	t.open[key{hostA, 3}] = true
	t.open[key{hostA, 7}] = true
	return t
}

func TestParsePortkitJSONL(t *testing.T) {
	in := `{"type":"scan","start":"2026-01-02T15:04:05Z","version":"v0.1.0","args":["portkit","scan"],"targets":1,"protocols":[],"seed":"7","shard":1,"shards":1}
{"ip":"198.18.0.2","port":3,"protocol":"tcp","state":"open","service":"","rtt_us":395,"reason":"syn-ack","ttl":64}
{"ip":"198.18.0.2","port":4,"protocol":"tcp","state":"closed","service":"","rtt_us":395,"reason":"reset"}

{"ip":"198.18.0.2","port":53,"protocol":"udp","state":"open|filtered","service":"domain","rtt_us":0,"reason":"no-response"}
{"type":"summary","end":"2026-01-02T15:04:06Z","elapsed_s":1,"hosts_up":1,"hosts_down":0,"hosts_total":1,"open":1,"closed":1,"filtered":0,"open_filtered":1,"exit":"success"}
`
	r, err := parsePortkitJSONL(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[key]string{{hostA, 3}: "open", {hostA, 4}: "closed"}
	if len(r.states) != len(want) || r.states[key{hostA, 3}] != "open" || r.states[key{hostA, 4}] != "closed" {
		t.Errorf("states = %v, want %v", r.states, want)
	}
	for _, bad := range []string{"{", `{"ip":"198.18.0.2","port":1}`, `{"port":1,"state":"open"}`} {
		if _, err := parsePortkitJSONL(strings.NewReader(bad)); err == nil {
			t.Errorf("parsePortkitJSONL(%q): no error", bad)
		}
	}
}

// As nmap 7.93 writes it, shortened.
const nmapXML = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<?xml-stylesheet href="file:///usr/bin/../share/nmap/nmap.xsl" type="text/xsl"?>
<nmaprun scanner="nmap" args="nmap -sS -p1-10 -n -Pn -oX - 198.18.0.2" version="7.93" xmloutputversion="1.05">
<scaninfo type="syn" protocol="tcp" numservices="10" services="1-10"/>
<host starttime="1795259645" endtime="1795259646"><status state="up" reason="arp-response" reason_ttl="0"/>
<address addr="198.18.0.2" addrtype="ipv4"/>
<address addr="5E:4C:88:95:A1:27" addrtype="mac"/>
<ports><extraports state="closed" count="7">
<extrareasons reason="reset" count="7" proto="tcp" ports="1-2,4-6,9-10"/>
</extraports>
<port protocol="tcp" portid="3"><state state="open" reason="syn-ack" reason_ttl="64"/><service name="x" method="table" conf="3"/></port>
<port protocol="tcp" portid="7"><state state="filtered" reason="no-response" reason_ttl="0"/></port>
<port protocol="tcp" portid="8"><state state="open" reason="syn-ack" reason_ttl="64"/></port>
</ports>
</host>
<host><address addr="198.18.4.1" addrtype="ipv4"/>
<ports><extraports state="closed" count="10"><extrareasons reason="reset" count="10"/></extraports></ports>
</host>
<runstats><finished time="1795259646" elapsed="0.79" exit="success"/><hosts up="2" down="0" total="2"/></runstats>
</nmaprun>
`

func TestParseNmapXML(t *testing.T) {
	r, err := parseNmapXML(strings.NewReader(nmapXML))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(r.states); got != 10 {
		t.Errorf("%d ports listed, want 10: %v", got, r.states)
	}
	for p, want := range map[uint16]string{1: "closed", 3: "open", 6: "closed", 7: "filtered", 8: "open", 10: "closed"} {
		if got := r.states[key{hostA, p}]; got != want {
			t.Errorf("port %d: %q, want %q", p, got, want)
		}
	}
	if r.unlisted["closed"] != 10 {
		t.Errorf("unlisted = %v, want 10 closed (hostB's, no port list)", r.unlisted)
	}

	// Scored on hostA alone: hostB's 10 counted closed ports are taken as
	// right, since nmap names its open ports.
	s := grade(r, smallTruth())
	if s.open != 1 || s.wantOpen != 2 || s.falseOpen != 1 || s.closed != 17 || s.other["open reported filtered"] != 1 {
		t.Errorf("grade = %+v", s)
	}
	if got, want := s.String(), "1/2 open, 17/8 closed, 1 falsely open, 1 open reported filtered"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}

	unfinished := strings.Replace(nmapXML, `exit="success"`, `exit="error"`, 1)
	if _, err := parseNmapXML(strings.NewReader(unfinished)); err == nil {
		t.Error("an unfinished run parsed without error")
	}
	if _, err := parseNmapXML(strings.NewReader(nmapXML[:400])); err == nil {
		t.Error("truncated XML parsed without error")
	}
}

func TestParsePortRanges(t *testing.T) {
	got, err := parsePortRanges("1-3,5,65534-65535")
	if want := []uint16{1, 2, 3, 5, 65534, 65535}; err != nil || !slices.Equal(got, want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"", "3-1", "x", "1-65536", "1,,2"} {
		if _, err := parsePortRanges(bad); err == nil {
			t.Errorf("parsePortRanges(%q): no error", bad)
		}
	}
}

func TestParseMasscanList(t *testing.T) {
	in := "#masscan\nopen tcp 7 198.18.0.2 1795259649\nopen tcp 3 198.18.0.2 1795259650\nopen tcp 7 198.18.0.2 1795259651\n# end\n"
	r, err := parseMasscanList(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	s := grade(r, smallTruth())
	if !s.perfect(false) || s.perfect(true) || s.reportsClosed {
		t.Errorf("grade = %+v: want every open port, no closed ones reported", s)
	}
	if got, want := s.String(), "2/2 open, closed n/a, 1 reported twice"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if _, err := parseMasscanList(strings.NewReader("open tcp x 198.18.0.2 1\n")); err == nil {
		t.Error("a bad port parsed without error")
	}
}

func TestGrade(t *testing.T) {
	r := newResult()
	for p := uint16(1); p <= 10; p++ {
		r.set(key{hostA, p}, "closed")
	}
	r.set(key{hostA, 3}, "open")
	r.set(key{hostA, 3}, "closed") // a later report does not take open back
	s := grade(r, smallTruth())
	if s.open != 1 || s.closed != 8 || s.other["open reported closed"] != 1 || s.perfect(false) {
		t.Errorf("grade = %+v", s)
	}
	if got := s.missedString(5); got != "198.18.0.2:7" {
		t.Errorf("missed = %q", got)
	}
	if s.conflicts != 2 || s.repeats != 2 {
		t.Errorf("port 3 reported closed, open, closed: %d conflicts, %d repeats; want 2, 2", s.conflicts, s.repeats)
	}

	r = newResult()
	for p := uint16(1); p <= 10; p++ {
		st := "closed"
		if p == 3 || p == 7 {
			st = "open"
		}
		r.set(key{hostA, p}, st)
	}
	r.set(key{hostB, 80}, "closed")
	s = grade(r, smallTruth())
	if !s.perfect(true) || s.other["unasked closed"] != 1 {
		t.Errorf("grade = %+v, want perfect with one unasked pair", s)
	}
	// The same report twice: not perfect for a scanner that reports closed
	// ports, whose every probe should have one line.
	r.set(key{hostA, 5}, "closed")
	if s = grade(r, smallTruth()); s.perfect(true) || !s.perfect(false) || !strings.Contains(s.String(), "1 reported twice") {
		t.Errorf("a port reported twice: %+v, %q", s, s.String())
	}
}

func TestCompareShards(t *testing.T) {
	tr := smallTruth()
	whole := newResult()
	for p := uint16(1); p <= 10; p++ {
		whole.set(key{hostA, p}, map[bool]string{true: "open", false: "closed"}[tr.open[key{hostA, p}]])
	}
	split := func(bounds ...uint16) []*result {
		var parts []*result
		for i := 0; i+1 < len(bounds); i++ {
			part := newResult()
			for p := bounds[i]; p < bounds[i+1]; p++ {
				part.states[key{hostA, p}] = whole.states[key{hostA, p}]
			}
			parts = append(parts, part)
		}
		return parts
	}
	c := compareShards(whole, split(1, 4, 8, 11), tr)
	if c.overlap != 0 || c.onlyOne != 0 || c.differ != 0 || c.coverage != 10 {
		t.Errorf("clean split: %+v", c)
	}
	c = compareShards(whole, split(1, 5, 4, 9), tr) // 4 twice, 9 and 10 in none
	if c.overlap != 1 || c.onlyOne != 2 || c.coverage != 8 {
		t.Errorf("bad split: %+v", c)
	}
	parts := split(1, 11)
	parts[0].states[key{hostA, 3}] = "filtered"
	if c := compareShards(whole, parts, tr); c.differ != 1 {
		t.Errorf("a changed state: %+v", c)
	}
}

func TestPlanTruths(t *testing.T) {
	p, err := scanplan.New(scanplan.Options{Seed: 9, Host: hostA, MinPorts: 25, MaxPorts: 30,
		Sweep: netip.MustParsePrefix("198.18.4.0/22"), SweepTop: 100})
	if err != nil {
		t.Fatal(err)
	}
	h := hostTruth(p)
	if h.size() != 65535 || len(h.open) != len(p.Ports) || len(p.Ports) < 25 || len(p.Ports) > 30 {
		t.Errorf("host truth: %d probed, %d open, plan %v", h.size(), len(h.open), p.Ports)
	}
	s := sweepTruth(p.Sweep)
	if s.size() != 1024*100 || len(s.open) == 0 || len(s.open) != len(p.Listeners())-len(p.Ports) {
		t.Errorf("sweep truth: %d probed, %d open, %d listeners", s.size(), len(s.open), len(p.Listeners()))
	}
	var ports []int
	for f := range strings.SplitSeq(sweepPorts(p.Sweep), ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, n)
	}
	if len(ports) != 100 || !slices.IsSorted(ports) {
		t.Errorf("sweepPorts = %v, want the 100 ports ascending", ports)
	}
	if group(102400) != "102,400" || group(5) != "5" || group(1000000) != "1,000,000" {
		t.Error("group")
	}
}
