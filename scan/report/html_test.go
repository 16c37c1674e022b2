package report

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/portkit/portkit/internal/testtool"
	"github.com/portkit/portkit/scan"
)

// hostile is what a host could put in a banner or a reverse DNS name: a
// script, an image whose error handler runs, and a way out of an
// attribute and out of an SVG title. Each would mark the page's root with
// data-pwned if it ran.
const hostile = `<script>document.documentElement.setAttribute("data-pwned","script")</script>` +
	`<img src=x onerror="document.documentElement.setAttribute('data-pwned','img')">` +
	`"><svg onload="document.documentElement.setAttribute('data-pwned','attr')"></title></svg>`

// htmlFixture is a report of open ports of many services on a few hosts,
// one with a hostile host name and banner, and closed and filtered ports.
func htmlFixture() HTMLReport {
	var es []Entry
	add := func(ip string, port uint16, proto scan.Proto, state scan.State, reason string) *Entry {
		es = append(es, Entry{Result: scan.Result{Probe: scan.Probe{IP: netip.MustParseAddr(ip), Port: port, Proto: proto},
			State: state, RTT: 1500 * time.Microsecond, Reason: reason, TTL: 64}})
		return &es[len(es)-1]
	}
	// 14 services on one host: more than a chart draws, so the rest are summed.
	for _, p := range []uint16{21, 22, 23, 25, 53, 80, 110, 143, 443, 465, 587, 993, 995, 3306} {
		add("198.18.0.2", p, scan.TCP, scan.Open, "syn-ack")
	}
	add("198.18.0.2", 8, scan.TCP, scan.Closed, "reset")
	add("198.18.0.3", 22, scan.TCP, scan.Open, "syn-ack")
	add("198.18.0.3", 9, scan.TCP, scan.Filtered, "no-response")
	e := add("198.18.0.10", 80, scan.TCP, scan.Open, "syn-ack")
	e.Hostname, e.Banner = hostile, "HTTP/1.1 200 OK\r\nServer: "+hostile
	add("2001:db8::1", 53, scan.UDP, scan.Open, "udp-response")
	add("2001:db8::1", 161, scan.UDP, scan.OpenFiltered, "no-response")
	for i := range 40 { // rows enough to scroll
		add(fmt.Sprintf("198.18.1.%d", i+1), 443, scan.TCP, scan.Open, "syn-ack")
	}
	return HTMLReport{
		Info:     ScanInfo{Start: start, Targets: 300, Seed: 7, Shard: 1, Shards: 1},
		Summary:  Summary{End: start.Add(90 * time.Second), Elapsed: 90 * time.Second, HostsUp: 44, HostsDown: 256, HostsTotal: 300, Open: 56, Closed: 1, Filtered: 1, OpenFiltered: 1},
		Entries:  es,
		Problems: []Problem{{Incomplete: true, Text: "shard 2/4 of seed 7 is missing"}, {Text: "shard 3/4 of seed 7 was scanned 2 times from the start"}},
		Inputs:   []string{"shard-1.jsonl", "shard-3.jsonl", "<b>odd name</b>.jsonl"},
		Runs:     3, RunTime: 80 * time.Second, Probes: 200000,
		Generated: start.Add(time.Hour),
	}
}

func writeHTMLFixture(t *testing.T, all bool) ([]byte, int) {
	t.Helper()
	r := htmlFixture()
	var b bytes.Buffer
	if err := WriteHTML(&b, r, Options{All: all}); err != nil {
		t.Fatal(err)
	}
	shown := 0
	for _, e := range r.Entries {
		if all || e.State == scan.Open {
			shown++
		}
	}
	return b.Bytes(), shown
}

// walk calls fn for every element under n.
func walk(n *html.Node, fn func(*html.Node)) {
	if n.Type == html.ElementNode {
		fn(n)
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, fn)
	}
}

func attrOf(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var f func(*html.Node)
	f = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			f(c)
		}
	}
	f(n)
	return b.String()
}

// pageFacts is what the tests check of a page's DOM, as written or as a
// browser left it.
type pageFacts struct {
	root           map[string]string // the html element's attributes
	rows, hidden   int
	firstPorts     []string // the Port cells of the first rows, in order
	scripts        []string // the script elements' sources
	injected       []string // elements or attributes the page does not make
	hostileAsText  int      // cells whose text is the hostile payload
	external       []string // references to anything outside the file
	svgs, svgRects int
}

func facts(t *testing.T, page []byte) pageFacts {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	f := pageFacts{root: map[string]string{}}
	walk(doc, func(n *html.Node) {
		switch n.Data {
		case "html":
			for _, a := range n.Attr {
				f.root[a.Key] = a.Val
			}
		case "tr":
			if n.Parent != nil && n.Parent.Data == "tbody" {
				f.rows++
				if _, ok := attrOf(n, "hidden"); ok {
					f.hidden++
				}
				if len(f.firstPorts) < 3 {
					for c := n.FirstChild; c != nil; c = c.NextSibling {
						if l, _ := attrOf(c, "data-label"); l == "Port" {
							f.firstPorts = append(f.firstPorts, textOf(c))
						}
					}
				}
			}
		case "script":
			src, _ := attrOf(n, "src")
			f.scripts = append(f.scripts, src)
		case "img", "iframe", "object", "embed", "link":
			f.injected = append(f.injected, n.Data)
		case "svg":
			f.svgs++
		case "rect":
			f.svgRects++
		case "td", "li", "title", "text", "code":
			if strings.Contains(textOf(n), `<script>document.documentElement.setAttribute("data-pwned"`) {
				f.hostileAsText++
			}
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") {
				f.injected = append(f.injected, n.Data+" "+a.Key)
			}
			if (a.Key == "src" || a.Key == "href") && a.Val != "" {
				f.external = append(f.external, n.Data+" "+a.Key+"="+a.Val)
			}
		}
	})
	return f
}

// TestHTMLPage: the page as written holds every row shown, the charts as
// SVG, one inline script and nothing from elsewhere; what came from the
// network is text, not markup.
func TestHTMLPage(t *testing.T) {
	for _, all := range []bool{false, true} {
		page, shown := writeHTMLFixture(t, all)
		f := facts(t, page)
		if f.rows != shown || f.hidden != 0 {
			t.Errorf("all=%v: %d rows (%d hidden), want %d shown", all, f.rows, f.hidden, shown)
		}
		if len(f.scripts) != 1 || f.scripts[0] != "" || len(f.injected) > 0 || len(f.external) > 0 {
			t.Errorf("scripts %q, injected %q, external %q: want one inline script, nothing else", f.scripts, f.injected, f.external)
		}
		// The host name's cell, the banner's, and the host chart's
		// tooltip (its label is cut short).
		if f.hostileAsText < 3 {
			t.Errorf("the hostile text is shown as text in %d places, want 3 or more", f.hostileAsText)
		}
		if f.svgs != 2 || f.svgRects != 2*chartBars {
			t.Errorf("%d charts, %d bars: want 2 charts of %d bars", f.svgs, f.svgRects, chartBars)
		}
	}
	page, _ := writeHTMLFixture(t, false)
	for _, want := range []string{
		`<meta name="viewport" content="width=device-width, initial-scale=1">`,
		`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'sha256-`,
		`3 services more`, // the service chart's last bar
		`Incomplete:</strong> shard 2/4 of seed 7 is missing`,
		`&lt;b&gt;odd name&lt;/b&gt;.jsonl`,
		`>57<`, // open ports
		`2,500/s`,
	} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("the page lacks %s", want)
		}
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -4500: "-4,500"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

// chromiumFlags run chromium headless, alone: no network of its own, no
// sandbox (tests run as root), a profile of its own.
func chromiumFlags(t *testing.T) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=5000"}
}

func chromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append(chromiumFlags(t), args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

// TestHTMLInChromium loads the page from disk in a real browser: its
// script runs (it marks the root), the hostile text stays text (nothing
// marks the root data-pwned, no element came of it), every row is there,
// a link's #q= filter and #sort= order apply; and it takes screenshots at
// a desktop's and a phone's width, kept for a person to look at.
func TestHTMLInChromium(t *testing.T) {
	bin := testtool.Need(t, "chromium")
	dir, err := os.MkdirTemp("", "portkit-report-html-")
	if err != nil {
		t.Fatal(err)
	}
	page, shown := writeHTMLFixture(t, true)
	file := filepath.Join(dir, "report.html")
	if err := os.WriteFile(file, page, 0o644); err != nil {
		t.Fatal(err)
	}
	url := "file://" + file

	f := facts(t, chromium(t, bin, "--dump-dom", url))
	if f.root["data-js"] != "ran" {
		t.Errorf("root attributes %v: the page's script did not run", f.root)
	}
	if _, ok := f.root["data-pwned"]; ok || len(f.injected) > 0 {
		t.Errorf("root attributes %v, injected %q: the hostile text ran", f.root, f.injected)
	}
	if f.rows != shown || f.hidden != 0 || f.hostileAsText < 3 {
		t.Errorf("%d rows (%d hidden), want %d shown; hostile text as text in %d places", f.rows, f.hidden, shown, f.hostileAsText)
	}

	// Open ports of 198.18.0.2 alone (the address, a space, the state's
	// word), sorted by port, descending: the page's third column.
	f = facts(t, chromium(t, bin, "--dump-dom", url+"#q=198.18.0.2%20syn-ack&state=open&sort=-3"))
	if f.rows != shown || f.rows-f.hidden != 14 {
		t.Errorf("filtered: %d rows, %d shown, want %d and 14", f.rows, f.rows-f.hidden, shown)
	}
	if strings.Join(f.firstPorts, " ") != "3306 995 993" {
		t.Errorf("sorted by port, descending: the first rows' ports are %q", f.firstPorts)
	}

	for _, s := range []struct {
		name string
		size string
	}{{"desktop", "1280,1000"}, {"phone", "390,1600"}} {
		shot := filepath.Join(dir, s.name+".png")
		chromium(t, bin, "--screenshot="+shot, "--window-size="+s.size, "--hide-scrollbars", url)
		if st, err := os.Stat(shot); err != nil || st.Size() < 10000 {
			t.Errorf("screenshot %s: %v", shot, err)
		}
		t.Logf("%s screenshot: %s", s.name, shot)
	}
}
