// Package report writes scan results: JSON Lines, one JSON document, nmap's
// XML and grepable formats, CSV, and a table for people.
//
// A Writer is told of the scan once (Begin), receives results as the scanner
// finds them (Result), and is told how the scan ended (End); End must be
// called for interrupted scans too, since it is what completes a JSON or
// XML document. The streaming formats (jsonl, json, csv) hold nothing but a
// write buffer. The formats that list ports per host (xml, grep, table)
// must wait: a permuted scan reports one host's ports interleaved with every
// other host's, so they keep the ports they will show, grouped by host, and
// write the hosts at End in address order, as nmap's reports are laid out.
package report

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/portkit/portkit/registry"
	"github.com/portkit/portkit/scan"
	"github.com/portkit/portkit/service"
)

// Writer writes one scan's report: Begin, then Result for each result, then
// End. Its methods are called from one goroutine at a time.
type Writer interface {
	scan.Sink
	Begin(info ScanInfo) error
	End(summary Summary) error
	// Flush writes out what a streaming format holds in its buffer. The
	// streaming formats flush by themselves at most a tenth of a second
	// after a result; a caller that knows the scan is idle (the Scanner's
	// Progress callback) calls Flush so nothing waits for the next result.
	Flush() error
}

// ServiceWriter is implemented by every Writer New returns: it writes a
// result with what service detection found on its port (nil: nothing
// asked). Result(r) is ResultService(r, nil).
type ServiceWriter interface {
	ResultService(r scan.Result, svc *service.Result) error
}

// Unwritten is implemented by the line formats (jsonl, csv), whose output
// can be continued: once a write has failed, Unwritten returns the whole
// lines that were accepted (their Result returned nil) but not written.
// Results whose Result call returned an error are in neither the output
// nor Unwritten. A scan continued later writes these lines first.
type Unwritten interface {
	Unwritten() []byte
}

// ScanInfo is what a report's header says of the scan.
type ScanInfo struct {
	Start time.Time
	// Args is portkit's command line, program name first.
	Args    []string
	Version string // portkit's version
	// Protocols has one entry per protocol scanned.
	Protocols []Protocol
	Targets   int // addresses to scan
	// Continued says that the output already holds an earlier part of
	// this scan (resumed, its file appended to): a CSV header is not
	// written again.
	Continued bool
	// Seed keys the probe order; this run is shard Shard (1 ≤ Shard ≤
	// Shards) of the scan, Shards 0 where the caller does not say.
	// Resumed says it continues an interrupted run of the same shard.
	// JSON Lines records them, so that `portkit report` can tell the
	// shards of one scan and check they are all there once.
	Seed          uint64
	Shard, Shards int
	Resumed       bool
}

// Protocol is the scan of one transport protocol.
type Protocol struct {
	Proto scan.Proto
	// Type is the scan technique in nmap's words: "syn" or "connect" for
	// TCP, "udp" for UDP.
	Type string
	// Ports is the port specification for this protocol, e.g. "22,80,1000-2000".
	Ports    string
	NumPorts int
}

// Exit is how a scan ended.
type Exit string

const (
	Success     Exit = "success"
	Interrupted Exit = "interrupted"
	Failed      Exit = "error" // the scan stopped on an error, in Summary.Error
)

// Summary is what a report's footer says of the scan.
type Summary struct {
	End     time.Time
	Elapsed time.Duration

	HostsUp, HostsDown, HostsTotal int

	// Results per state.
	Open, Closed, Filtered, OpenFiltered int

	Exit  Exit
	Error string // why, when Exit is Failed
}

// Options tunes every format.
type Options struct {
	// All writes results of every state; by default only open ports are
	// written.
	All bool
	// Registry names services; nil means IANA's table alone.
	Registry *registry.Registry
	// Service says the scan identifies services: the table and CSV get
	// their columns for it.
	Service bool
	// Getenv reads NO_COLOR and TERM for the table's colours; nil means
	// os.Getenv.
	Getenv func(string) string
}

// Formats returns the names New accepts.
func Formats() []string { return []string{"jsonl", "json", "xml", "grep", "csv", "table"} }

// New returns a writer of format to w.
func New(format string, w io.Writer, opts Options) (Writer, error) {
	if opts.Registry == nil {
		opts.Registry = registry.New()
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	switch format {
	case "jsonl":
		return newJSONL(w, opts), nil
	case "json":
		return newJSON(w, opts), nil
	case "xml":
		return newXML(w, opts), nil
	case "grep":
		return newGrep(w, opts), nil
	case "csv":
		return newCSV(w, opts), nil
	case "table":
		return newTable(w, opts), nil
	}
	return nil, fmt.Errorf("unknown report format %q (want %s)", format, strings.Join(Formats(), ", "))
}

// shown reports whether r is written under opts.
func (o *Options) shown(r *scan.Result) bool { return o.All || r.State == scan.Open }

// namer names the service on a port from the registry; "" when it has no
// name for it. It remembers the names it has looked up (a full-range scan
// names each port of a host once per host), in a table per protocol of a
// string per port, made on first use.
type namer struct {
	reg   *registry.Registry
	names [2][]string
	known [2][]bool
}

func (n *namer) name(port uint16, proto scan.Proto) string {
	p, i := registry.TCP, 0
	if proto == scan.UDP {
		p, i = registry.UDP, 1
	}
	if n.names[i] == nil {
		n.names[i], n.known[i] = make([]string, 1<<16), make([]bool, 1<<16)
	}
	if !n.known[i][port] {
		n.names[i][port], n.known[i][port] = n.reg.PortName(port, p), true
	}
	return n.names[i][port]
}

// ctime formats t as C's ctime does, the way nmap's headers and footers
// date a scan.
func ctime(t time.Time) string { return t.Format(time.ANSIC) }

// seconds formats d in seconds with two decimals, as nmap's footers do.
func seconds(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()) }

// plural returns "1 host" or "2 hosts".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// done is the sentence nmap ends a report with, after the date.
func done(s Summary) string {
	return fmt.Sprintf("%s (%s up) scanned in %s seconds",
		plural(s.HostsTotal, "IP address", "IP addresses"), plural(s.HostsUp, "host", "hosts"), seconds(s.Elapsed))
}
