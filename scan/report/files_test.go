package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portkit/portkit/internal/testtool"
	"github.com/portkit/portkit/scan"
)

// failAfter takes limit bytes, then fails every write, as a full disk
// does; of a write that fails, it keeps the whole lines that fit and
// reports them taken, as internal/cli's --out file does.
type failAfter struct {
	b     bytes.Buffer
	limit int
}

var errFull = errors.New("no space left on device")

func (f *failAfter) Write(p []byte) (int, error) {
	room := f.limit - f.b.Len()
	if room >= len(p) {
		return f.b.Write(p)
	}
	whole := bytes.LastIndexByte(p[:max(room, 0)], '\n') + 1
	f.b.Write(p[:whole])
	return whole, errFull
}

// TestLineFormatsUnwritten: once a write fails, every result is either in
// the output or in Unwritten, never both, never lost, and the Result calls
// after the failure are refused; the lines are whole in both.
func TestLineFormatsUnwritten(t *testing.T) {
	for _, format := range []string{"jsonl", "csv"} {
		for _, limit := range []int{0, 1, 100, 250} {
			t.Run(fmt.Sprintf("%s/%d", format, limit), func(t *testing.T) {
				out := &failAfter{limit: limit}
				w, err := New(format, out, Options{All: true, Getenv: noEnv})
				if err != nil {
					t.Fatal(err)
				}
				if err := w.Begin(info); err != nil {
					t.Fatal(err)
				}
				accepted := 0
				var refused error
				for _, r := range results {
					if err := w.Result(r); err != nil {
						refused = err
						break
					}
					accepted++
					w.Flush() // as the scanner's progress calls do, between results
				}
				if !errors.Is(refused, errFull) || !errors.Is(w.End(summary(Interrupted)), errFull) {
					t.Fatalf("after a failed write: Result error %v, want %v (%d accepted)", refused, errFull, accepted)
				}
				written := out.b.String()
				unwritten := string(w.(Unwritten).Unwritten())
				if unwritten != "" && !strings.HasSuffix(unwritten, "\n") {
					t.Errorf("unwritten %q does not end a line", unwritten)
				}
				lines := strings.Count(written+unwritten, "\n")
				const header = 1 // csv's column names, jsonl's "scan" line
				if lines != header+accepted {
					t.Errorf("written %q + unwritten %q: %d lines, want %d", written, unwritten, lines, header+accepted)
				}
				whole := write(t, format, Options{All: true}, results[:accepted], Interrupted)
				if format == "jsonl" {
					// End's "summary" line was refused with the write error.
					whole = whole[:bytes.LastIndexByte(whole[:len(whole)-1], '\n')+1]
				}
				if got := written + unwritten; got != string(whole) {
					t.Errorf("written + unwritten =\n%s\nwant\n%s", got, whole)
				}
			})
		}
	}
}

func TestLiveWriterSticky(t *testing.T) {
	out := &failAfter{limit: 3}
	l := newLiveWriter(out)
	if n, err := l.Write([]byte("ab\ncd\n")); n != 6 || err != nil {
		t.Fatalf("Write = %d, %v: want the line buffered", n, err)
	}
	if err := l.Flush(); !errors.Is(err, errFull) {
		t.Fatalf("Flush = %v", err)
	}
	if n, err := l.Write([]byte("ef\n")); n != 0 || !errors.Is(err, errFull) {
		t.Fatalf("Write after a failure = %d, %v: want it refused", n, err)
	}
	if got := string(l.Unwritten()); got != "cd\n" {
		t.Errorf("Unwritten = %q, want %q", got, "cd\n")
	}
}

// fullRange is one host's scan of ports 1-n: the given open ports, every
// other one closed (reset), but for a run of filtered ones.
func fullRange(n int, open ...uint16) []scan.Result {
	var rs []scan.Result
	for p := 1; p <= n; p++ {
		r := result("198.18.0.2", uint16(p), scan.TCP, scan.Closed, time.Millisecond, "reset", 64)
		switch {
		case p >= 100 && p < 110:
			r.State, r.Reason, r.RTT = scan.Filtered, "no-response", 0
		case p == 110:
			r.State, r.Reason = scan.Filtered, "admin-prohibited"
		}
		for _, o := range open {
			if r.Port == o {
				r.State, r.Reason = scan.Open, "syn-ack"
			}
		}
		rs = append(rs, r)
	}
	return rs
}

type xmlDoc struct {
	Hosts []struct {
		Extra []struct {
			State   string `xml:"state,attr"`
			Count   int    `xml:"count,attr"`
			Reasons []struct {
				Reason string `xml:"reason,attr"`
				Count  int    `xml:"count,attr"`
				Proto  string `xml:"proto,attr"`
				Ports  string `xml:"ports,attr"`
			} `xml:"extrareasons"`
		} `xml:"ports>extraports"`
		Ports []struct {
			PortID int `xml:"portid,attr"`
			State  struct {
				State string `xml:"state,attr"`
			} `xml:"state"`
		} `xml:"ports>port"`
	} `xml:"host"`
}

// TestXMLExtraPorts: a full range's closed ports are one extraports
// element, counted by reason with their ports, as nmap writes them; a
// state with 25 ports or fewer, and the open ports, are listed.
func TestXMLExtraPorts(t *testing.T) {
	out := write(t, "xml", Options{All: true}, fullRange(65535, 22, 443), Success)
	var doc xmlDoc
	if err := xml.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Hosts) != 1 {
		t.Fatalf("%d hosts", len(doc.Hosts))
	}
	h := doc.Hosts[0]
	if len(h.Extra) != 1 || h.Extra[0].State != "closed" || h.Extra[0].Count != 65535-2-11 {
		t.Fatalf("extraports = %+v, want one, closed, %d", h.Extra, 65535-2-11)
	}
	rs := h.Extra[0].Reasons
	if len(rs) != 1 || rs[0].Reason != "reset" || rs[0].Count != 65522 || rs[0].Proto != "tcp" || rs[0].Ports != "1-21,23-99,111-442,444-65535" {
		t.Errorf("extrareasons = %+v", rs)
	}
	var listed []string
	for _, p := range h.Ports {
		listed = append(listed, fmt.Sprintf("%d/%s", p.PortID, p.State.State))
	}
	want := "22/open 100/filtered 101/filtered 102/filtered 103/filtered 104/filtered 105/filtered 106/filtered 107/filtered 108/filtered 109/filtered 110/filtered 443/open"
	if got := strings.Join(listed, " "); got != want {
		t.Errorf("ports listed = %s\nwant %s", got, want)
	}
	if n := bytes.Count(out, []byte("<port ")); n != 13 {
		t.Errorf("%d port elements, want 13", n)
	}

	// At the bound: 25 closed ports are listed, 26 are not.
	for n, wantExtra := range map[int]int{25: 0, 26: 1} {
		var doc xmlDoc
		if err := xml.Unmarshal(write(t, "xml", Options{All: true}, fullRange(n), Success), &doc); err != nil {
			t.Fatal(err)
		}
		if got := len(doc.Hosts[0].Extra); got != wantExtra {
			t.Errorf("%d closed ports: %d extraports, want %d", n, got, wantExtra)
		}
	}
}

// TestXMLExtraPortsValidates checks the collapsed report against nmap's DTD.
func TestXMLExtraPortsValidates(t *testing.T) {
	xmllint := testtool.Need(t, "xmllint")
	testtool.NeedFile(t, nmapDTD, "nmap")
	rs := fullRange(1000, 22)
	for i := range 40 { // a second host: UDP, open|filtered collapsed too
		rs = append(rs, result("198.18.0.3", uint16(i+1), scan.UDP, scan.OpenFiltered, 0, "no-response", 0))
	}
	path := filepath.Join(t.TempDir(), "extra.xml")
	if err := os.WriteFile(path, write(t, "xml", Options{All: true}, rs, Success), 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command(xmllint, "--noout", "--dtdvalid", nmapDTD, path).CombinedOutput(); err != nil {
		t.Errorf("xmllint: %v\n%s", err, msg)
	}
}
