package report

import (
	"cmp"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/portkit/portkit/registry"
	"github.com/portkit/portkit/scan"
)

// htmlFiles are the HTML report's template, style and script, put into
// the page itself: the page loads nothing from anywhere.
//
//go:embed html/page.tmpl html/page.css html/page.js
var htmlFiles embed.FS

// HTMLReport is what an HTML report shows: the merged results and what
// `portkit report` found of the runs that made them.
type HTMLReport struct {
	Info    ScanInfo
	Summary Summary
	Entries []Entry
	// Problems are Merge.Check's, shown above everything else.
	Problems []Problem
	// Inputs name the files read; Runs is how many runs they held.
	Inputs []string
	Runs   int
	// RunTime and Probes are the runs' own elapsed times and probes
	// decided, summed (Merge.Timing): the rate shown is per run.
	RunTime time.Duration
	Probes  int
	// Generated is when the page was made.
	Generated time.Time
}

// WriteHTML writes r as one HTML page: a summary, charts of open ports by
// service and by host drawn as SVG here (no script needed to see them),
// and a table of the results shown under opts, which the page's script
// lets one filter and sort. Every text from the results (host names and
// banners came from the network) goes through html/template's escaping,
// and the page's Content-Security-Policy allows only its own script and
// style, by their hashes.
func WriteHTML(w io.Writer, r HTMLReport, opts Options) error {
	if opts.Registry == nil {
		opts.Registry = registry.New()
	}
	css, err := htmlFiles.ReadFile("html/page.css")
	if err != nil {
		return err
	}
	js, err := htmlFiles.ReadFile("html/page.js")
	if err != nil {
		return err
	}
	t, err := template.ParseFS(htmlFiles, "html/page.tmpl")
	if err != nil {
		return err
	}
	v := newHTMLView(r, opts)
	v.Style, v.Script = template.CSS(css), template.JS(js)
	v.CSP = template.HTMLAttr(fmt.Sprintf(`content="default-src 'none'; style-src '%s'; script-src '%s'; img-src data:; base-uri 'none'; form-action 'none'"`,
		hashSource(css), hashSource(js)))
	return t.Execute(w, v)
}

// hashSource is a CSP source naming an inline script or style by its hash.
func hashSource(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

type htmlView struct {
	Title     string
	Generated string
	Inputs    []string
	Problems  []Problem
	Cards     []htmlCard
	Services  htmlChart
	Hosts     htmlChart
	Rows      []htmlRow
	States    []string
	Total     int // entries, shown or not
	All       bool
	Hostnames bool // a column for host names, where any entry has one
	Banners   bool

	Style  template.CSS
	Script template.JS
	CSP    template.HTMLAttr
}

type htmlCard struct{ Label, Value, Note string }

type htmlRow struct {
	Index                               int
	IP, Hostname, Proto, State, Service string
	Reason, Banner, RTT                 string
	Port                                uint16
	RTTus                               int64
}

// htmlChart is a horizontal bar chart, laid out here in SVG units.
type htmlChart struct {
	Title, Empty string
	Width        int
	Height       int
	LabelWidth   int
	BarX         int
	Bars         []htmlBar
}

type htmlBar struct {
	Label, Full         string // Label cut to fit; Full in the bar's tooltip
	Count               int
	Y, W, TextY, CountX int
}

// Chart geometry, in SVG units of a 480-wide view box that scales to the
// page's width.
const (
	chartWidth = 480
	chartLabel = 190 // the labels' column
	chartBar   = 22  // a bar's pitch
	chartBars  = 12  // bars drawn; the rest make one "other" bar
	labelRunes = 20
)

func newHTMLView(r HTMLReport, opts Options) htmlView {
	names := namer{reg: opts.Registry}
	v := htmlView{Title: "portkit scan report", Generated: r.Generated.UTC().Format(time.RFC1123), Inputs: r.Inputs,
		Problems: r.Problems, Total: len(r.Entries), All: opts.All}
	byService := map[string]int{}
	byHost := map[netip.Addr]int{}
	hostname := map[netip.Addr]string{}
	var hostOrder []netip.Addr
	states := map[scan.State]bool{}
	open := 0
	for _, e := range r.Entries {
		service := cmp.Or(e.Service, names.name(e.Port, e.Proto))
		if e.Hostname != "" && hostname[e.IP] == "" {
			hostname[e.IP] = e.Hostname
		}
		if e.State == scan.Open {
			open++
			byService[cmp.Or(service, "unknown")]++
			if byHost[e.IP] == 0 {
				hostOrder = append(hostOrder, e.IP)
			}
			byHost[e.IP]++
		}
		if !opts.shown(&e.Result) {
			continue
		}
		states[e.State] = true
		row := htmlRow{Index: len(v.Rows), IP: e.IP.String(), Hostname: e.Hostname, Port: e.Port, Proto: e.Proto.String(),
			State: e.State.String(), Service: cmp.Or(service, "unknown"), Reason: e.Reason, Banner: e.Banner, RTTus: e.RTT.Microseconds()}
		if e.RTT > 0 {
			row.RTT = strconv.FormatFloat(float64(e.RTT.Microseconds())/1000, 'f', 1, 64)
		}
		v.Hostnames = v.Hostnames || e.Hostname != ""
		v.Banners = v.Banners || e.Banner != ""
		v.Rows = append(v.Rows, row)
	}
	for st := scan.Open; st <= scan.OpenFiltered; st++ {
		if states[st] {
			v.States = append(v.States, st.String())
		}
	}

	s := r.Summary
	v.Cards = []htmlCard{
		{"Hosts up", thousands(s.HostsUp), fmt.Sprintf("of %s %s; up: an open or closed port", thousands(s.HostsTotal), pluralWord(s.HostsTotal, "address", "addresses"))},
		{"Open ports", thousands(open), fmt.Sprintf("on %s %s", thousands(len(byHost)), pluralWord(len(byHost), "host", "hosts"))},
		{"Services", thousands(len(byService)), "among the open ports"},
		{"Results", thousands(len(r.Entries)), fmt.Sprintf("%s closed, %s filtered, %s open|filtered", thousands(s.Closed), thousands(s.Filtered), thousands(s.OpenFiltered))},
	}
	if !r.Info.Start.IsZero() {
		start := r.Info.Start.UTC()
		when := htmlCard{"Scanned", start.Format("2006-01-02"), "from " + start.Format("15:04:05 MST")}
		if !s.End.IsZero() && s.Elapsed > 0 {
			when.Note += ", for " + roundDuration(s.Elapsed) + " (first start to last end)"
		}
		v.Cards = append(v.Cards, when)
	}
	if r.RunTime > 0 {
		v.Cards = append(v.Cards, htmlCard{"Rate", thousands(int(float64(r.Probes)/r.RunTime.Seconds())) + "/s",
			fmt.Sprintf("probes a second in each run: %s probes in %s of %s", thousands(r.Probes), roundDuration(r.RunTime), plural(r.Runs, "run", "runs"))})
	}

	services := make([]htmlBar, 0, len(byService))
	for name, n := range byService {
		services = append(services, htmlBar{Full: name, Count: n})
	}
	slices.SortFunc(services, func(a, b htmlBar) int { return cmp.Or(b.Count-a.Count, cmp.Compare(a.Full, b.Full)) })
	v.Services = layoutChart("Open ports by service", services, "service", "services")

	hosts := make([]htmlBar, 0, len(byHost))
	for _, ip := range hostOrder {
		label := ip.String()
		if h := hostname[ip]; h != "" {
			label += " " + h
		}
		hosts = append(hosts, htmlBar{Full: label, Count: byHost[ip]})
	}
	slices.SortStableFunc(hosts, func(a, b htmlBar) int { return b.Count - a.Count })
	v.Hosts = layoutChart("Open ports by host", hosts, "host", "hosts")
	return v
}

// layoutChart places the bars, largest first, the ones past chartBars
// summed into one.
func layoutChart(title string, bars []htmlBar, one, many string) htmlChart {
	c := htmlChart{Title: title, Width: chartWidth, LabelWidth: chartLabel - 8, BarX: chartLabel, Empty: "No open port."}
	if len(bars) > chartBars {
		rest := htmlBar{}
		for _, b := range bars[chartBars-1:] {
			rest.Count += b.Count
		}
		rest.Full = fmt.Sprintf("%s more", plural(len(bars)-chartBars+1, one, many))
		bars = append(bars[:chartBars-1:chartBars-1], rest)
	}
	most := 1
	for _, b := range bars {
		most = max(most, b.Count)
	}
	room := chartWidth - chartLabel - 40 // the count's place after the longest bar
	for i := range bars {
		b := &bars[i]
		b.Label = cutRunes(b.Full, labelRunes)
		b.Y = 4 + i*chartBar
		b.TextY = b.Y + chartBar/2 + 1
		b.W = max(2, b.Count*room/most)
		b.CountX = chartLabel + b.W + 6
	}
	c.Bars = bars
	c.Height = 8 + len(bars)*chartBar
	return c
}

// cutRunes shortens s to n runes, an ellipsis marking the cut.
func cutRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// roundDuration writes d for people: 850ms, 12.3s, 4m05s.
func roundDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	}
	return d.Round(time.Second).String()
}

// thousands writes n with commas between groups of three digits.
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var b []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, s[i])
	}
	if neg {
		return "-" + string(b)
	}
	return string(b)
}

func pluralWord(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
