package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/portkit/portkit/scan"
)

// Entry is one result as a report reads it back: the scan's verdict and
// what its line says besides.
type Entry struct {
	scan.Result
	// Service is the name the line gives the port ("" for none).
	Service string
	// Hostname and Banner are what the network said of the host and of
	// the port, where the line has them. They are untrusted text.
	Hostname, Banner string
}

// Run is one run of a scan as its JSON Lines tell it: the results from a
// "scan" line to its "summary" line. Results before any "scan" line (the
// output of a portkit older than these lines) make a run without Info.
type Run struct {
	Name string // the input it was read from
	Line int    // of its "scan" line; of its first result without one
	// Info is its "scan" line; nil when it has none.
	Info *ScanInfo
	// Summary is its "summary" line; nil when it has none (a run killed,
	// or an older portkit's output).
	Summary *Summary
	// Results is the number of result lines it holds.
	Results int
}

// Where names the run's first line, "file:line".
func (r *Run) Where() string { return r.Name + ":" + strconv.Itoa(r.Line) }

// LineError is a line of JSON Lines that cannot be read: which, and why.
type LineError struct {
	Name string // the input's name
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %v", e.Name, e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// maxLine is the longest line read: a result is a few hundred bytes, a
// "scan" line as long as its command line.
const maxLine = 1 << 20

// jsonlLine is any line of the format, its fields kept raw to be checked
// one by one with a message of their own.
type jsonlLine struct {
	Type *string `json:"type"`

	// A result's.
	IP       json.RawMessage `json:"ip"`
	Port     json.RawMessage `json:"port"`
	Protocol json.RawMessage `json:"protocol"`
	State    json.RawMessage `json:"state"`
	Service  json.RawMessage `json:"service"`
	RTT      json.RawMessage `json:"rtt_us"`
	Reason   json.RawMessage `json:"reason"`
	TTL      json.RawMessage `json:"ttl"`
	Hostname json.RawMessage `json:"hostname"`
	Banner   json.RawMessage `json:"banner"`
}

// ReadJSONL reads portkit's JSON Lines from r, named name in errors: each
// "scan" line starts a run (run), each result goes to result with the run
// it belongs to, each "summary" line ends its run. Blank lines are
// skipped; a line of a type this version does not know is skipped and
// counted in skipped. The first line that cannot be read stops it with a
// *LineError naming the line.
func ReadJSONL(r io.Reader, name string, run func(*Run), result func(*Run, Entry)) (skipped int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var cur *Run
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		fail := func(format string, a ...any) error {
			return &LineError{Name: name, Line: n, Err: fmt.Errorf(format, a...)}
		}
		if line[0] != '{' {
			return skipped, fail("not a JSON object")
		}
		var l jsonlLine
		if err := json.Unmarshal(line, &l); err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) {
				return skipped, fail("not JSON: %v", se)
			}
			return skipped, fail("not a JSON Lines result of portkit: %v", err)
		}
		if l.Type == nil {
			e, err := parseResult(&l)
			if err != nil {
				return skipped, fail("%v", err)
			}
			if cur == nil {
				cur = &Run{Name: name, Line: n}
				run(cur)
			}
			cur.Results++
			result(cur, e)
			continue
		}
		switch *l.Type {
		case lineScan:
			var h struct {
				jsonlHeader
				Protocols []struct {
					Protocol string `json:"protocol"`
					Type     string `json:"type"`
					Ports    string `json:"ports"`
					NumPorts int    `json:"num_ports"`
				} `json:"protocols"`
			}
			if err := json.Unmarshal(line, &h); err != nil {
				return skipped, fail("a \"scan\" line: %v", plainJSONError(err))
			}
			if h.Start.IsZero() {
				return skipped, fail("a \"scan\" line without its \"start\"")
			}
			if h.Shards < 0 || h.Shard < 0 || h.Shard > h.Shards {
				return skipped, fail("a \"scan\" line of shard %d of %d", h.Shard, h.Shards)
			}
			info := &ScanInfo{Start: h.Start, Version: h.Version, Args: h.Args, Targets: h.Targets,
				Seed: h.Seed, Shard: h.Shard, Shards: h.Shards, Resumed: h.Resumed}
			for _, p := range h.Protocols {
				proto := scan.TCP
				switch p.Protocol {
				case "tcp":
				case "udp":
					proto = scan.UDP
				default:
					return skipped, fail("a \"scan\" line: protocol %q is not tcp or udp", p.Protocol)
				}
				info.Protocols = append(info.Protocols, Protocol{Proto: proto, Type: p.Type, Ports: p.Ports, NumPorts: p.NumPorts})
			}
			cur = &Run{Name: name, Line: n, Info: info}
			run(cur)
		case lineSummary:
			var s jsonlSummary
			if err := json.Unmarshal(line, &s); err != nil {
				return skipped, fail("a \"summary\" line: %v", plainJSONError(err))
			}
			if cur == nil {
				cur = &Run{Name: name, Line: n}
				run(cur)
			}
			cur.Summary = &Summary{End: s.End, Elapsed: time.Duration(s.Elapsed * float64(time.Second)),
				HostsUp: s.HostsUp, HostsDown: s.HostsDown, HostsTotal: s.HostsTotal,
				Open: s.Open, Closed: s.Closed, Filtered: s.Filtered, OpenFiltered: s.OpenFiltered,
				Exit: s.Exit, Error: s.Error}
		default:
			skipped++
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return skipped, &LineError{Name: name, Line: n + 1, Err: fmt.Errorf("a line longer than %d bytes", maxLine)}
		}
		return skipped, fmt.Errorf("%s: %w", name, err)
	}
	return skipped, nil
}

// plainJSONError says what encoding/json found wrong without Go's names
// for the types it decodes into.
func plainJSONError(err error) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return err
	}
	field := te.Field
	for _, embedded := range []string{"jsonlHeader.", "jsonSummary."} {
		field = strings.ReplaceAll(field, embedded, "")
	}
	want := "another type"
	switch te.Type.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		want = "a number"
	case reflect.String:
		want = "a string"
	case reflect.Bool:
		want = "true or false"
	case reflect.Slice:
		want = "a list"
	case reflect.Struct, reflect.Map:
		want = "an object"
	}
	return fmt.Errorf("%q is a JSON %s, want %s", field, te.Value, want)
}

// parseResult checks a result line's fields one by one.
func parseResult(l *jsonlLine) (Entry, error) {
	var e Entry
	var err error
	ip, err := rawString(l.IP, "ip", true)
	if err != nil {
		return e, err
	}
	if e.IP, err = netip.ParseAddr(ip); err != nil {
		return e, fmt.Errorf("\"ip\" %q is not an IP address", ip)
	}
	port, err := rawUint(l.Port, "port", 16, true)
	if err != nil {
		return e, err
	}
	e.Port = uint16(port)
	proto, err := rawString(l.Protocol, "protocol", true)
	if err != nil {
		return e, err
	}
	switch proto {
	case "tcp":
		e.Proto = scan.TCP
	case "udp":
		e.Proto = scan.UDP
	default:
		return e, fmt.Errorf("\"protocol\" %q is not tcp or udp", proto)
	}
	state, err := rawString(l.State, "state", true)
	if err != nil {
		return e, err
	}
	if e.State = parseState(state); e.State == 0 {
		return e, fmt.Errorf("\"state\" %q is not open, closed, filtered or open|filtered", state)
	}
	rtt, err := rawUint(l.RTT, "rtt_us", 63, false)
	if err != nil {
		return e, err
	}
	if rtt > uint64(time.Duration(1<<63-1)/time.Microsecond) {
		return e, fmt.Errorf("\"rtt_us\" %d is too large", rtt)
	}
	e.RTT = time.Duration(rtt) * time.Microsecond
	ttl, err := rawUint(l.TTL, "ttl", 8, false)
	if err != nil {
		return e, err
	}
	e.TTL = uint8(ttl)
	for _, f := range []struct {
		raw  json.RawMessage
		name string
		to   *string
	}{{l.Reason, "reason", &e.Reason}, {l.Service, "service", &e.Service}, {l.Hostname, "hostname", &e.Hostname}, {l.Banner, "banner", &e.Banner}} {
		if *f.to, err = rawString(f.raw, f.name, false); err != nil {
			return e, err
		}
	}
	return e, nil
}

func parseState(s string) scan.State {
	for st := scan.Open; st <= scan.OpenFiltered; st++ {
		if st.String() == s {
			return st
		}
	}
	return 0
}

// rawString reads a string field; a field left out (or null) is "", or
// an error when it is required.
func rawString(raw json.RawMessage, name string, required bool) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		if required {
			return "", fmt.Errorf("no %q", name)
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%q is %s, not a string", name, raw)
	}
	return s, nil
}

// rawUint reads a whole number of at most bits bits.
func rawUint(raw json.RawMessage, name string, bits int, required bool) (uint64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		if required {
			return 0, fmt.Errorf("no %q", name)
		}
		return 0, nil
	}
	n, err := strconv.ParseUint(string(raw), 10, bits)
	if err != nil {
		return 0, fmt.Errorf("%q is %s, not a whole number from 0 to %d", name, raw, uint64(1)<<bits-1)
	}
	return n, nil
}
