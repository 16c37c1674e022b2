package report

import (
	"bytes"
	"encoding/json"
	"io"
	"net/netip"
	"strconv"
	"time"

	"github.com/portkit/portkit/scan"
	"github.com/portkit/portkit/service"
)

// record is one result as the JSON formats write it.
type record struct {
	IP       netip.Addr `json:"ip"`
	Port     uint16     `json:"port"`
	Protocol scan.Proto `json:"protocol"`
	State    scan.State `json:"state"`
	Service  string     `json:"service"`
	RTT      int64      `json:"rtt_us"`
	Reason   string     `json:"reason"`
	TTL      uint8      `json:"ttl,omitempty"`
}

// encoder makes the JSON of one result at a time into a reused buffer.
type encoder struct {
	opts  Options
	names namer
	buf   bytes.Buffer
	enc   *json.Encoder

	// For strings that need escaping.
	sbuf bytes.Buffer
	senc *json.Encoder
}

func newEncoder(opts Options) *encoder {
	e := &encoder{opts: opts, names: namer{reg: opts.Registry}}
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}

// encode replaces the buffer with r's JSON object and a newline: the
// bytes encoding/json makes of a record (the tests hold them to it), built
// by hand, as a scan of every port makes tens of thousands of them and
// reflection was most of the cost of each.
func (e *encoder) encode(r *scan.Result) error { return e.encodeService(r, nil) }

// serviceFields are an identified port's fields beyond "service", in the
// JSON formats.
type serviceFields struct {
	Product    string           `json:"product,omitempty"`
	Version    string           `json:"version,omitempty"`
	Info       string           `json:"info,omitempty"`
	TLS        *service.TLSInfo `json:"tls,omitempty"`
	Confidence int              `json:"confidence"`
	Evidence   string           `json:"evidence"`
	CPE        []string         `json:"cpe,omitempty"`
	Banner     string           `json:"banner,omitempty"`
}

// encodeService is encode with what service detection found on the port:
// "service" is the name identified, and its fields follow the others.
func (e *encoder) encodeService(r *scan.Result, svc *service.Result) error {
	e.buf.Reset()
	b := e.buf.AvailableBuffer()
	b = append(b, `{"ip":`...)
	if r.IP.Zone() == "" {
		b = append(b, '"')
		b = r.IP.AppendTo(b) // digits, dots, colons and hex: nothing to escape
		b = append(b, '"')
	} else {
		b = e.appendString(b, r.IP.String())
	}
	b = append(b, `,"port":`...)
	b = strconv.AppendUint(b, uint64(r.Port), 10)
	b = append(b, `,"protocol":"`...)
	b = append(b, r.Proto.String()...)
	b = append(b, `","state":"`...)
	b = append(b, r.State.String()...)
	b = append(b, `","service":`...)
	if svc != nil {
		b = e.appendString(b, svc.Service)
	} else {
		b = e.appendString(b, e.names.name(r.Port, r.Proto))
	}
	b = append(b, `,"rtt_us":`...)
	b = strconv.AppendInt(b, r.RTT.Microseconds(), 10)
	b = append(b, `,"reason":`...)
	b = e.appendString(b, r.Reason)
	if r.TTL != 0 {
		b = append(b, `,"ttl":`...)
		b = strconv.AppendUint(b, uint64(r.TTL), 10)
	}
	if svc != nil {
		more, err := json.Marshal(serviceFields{Product: svc.Product, Version: svc.Version, Info: svc.Info, TLS: svc.TLS,
			Confidence: svc.Confidence, Evidence: svc.Evidence, CPE: svc.CPE, Banner: svc.Banner})
		if err != nil {
			return err
		}
		b = append(b, ',')
		b = append(b, more[1:len(more)-1]...)
	}
	b = append(b, "}\n"...)
	_, err := e.buf.Write(b)
	return err
}

// appendString appends s as a JSON string, escaped as encoding/json
// escapes it (without HTML escaping): printable ASCII other than '"' and
// '\\' as it is, anything else through encoding/json itself.
func (e *encoder) appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			if e.senc == nil {
				e.senc = json.NewEncoder(&e.sbuf)
				e.senc.SetEscapeHTML(false)
			}
			e.sbuf.Reset()
			if e.senc.Encode(s) != nil {
				return append(b, `""`...)
			}
			return append(b, bytes.TrimSuffix(e.sbuf.Bytes(), []byte("\n"))...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// jsonlWriter writes JSON Lines: a "scan" line first (jsonlHeader), one
// object per result, and a "summary" line last (jsonlSummary), through a
// live buffer, so that a reader downstream (jq) sees results within a
// tenth of a second without a write call per result. Result lines have no
// "type": a reader tells them from the other two by its absence.
type jsonlWriter struct {
	w *liveWriter
	*encoder
}

func newJSONL(w io.Writer, opts Options) *jsonlWriter {
	return &jsonlWriter{w: newLiveWriter(w), encoder: newEncoder(opts)}
}

// Line types of the JSON Lines format other than results.
const (
	lineScan    = "scan"
	lineSummary = "summary"
)

// jsonlHeader is the first line a run writes: what `portkit report` needs
// to tell the runs of one scan and check its shards. The seed is a string,
// as jq and JavaScript read numbers as doubles, which lose a 64-bit seed.
type jsonlHeader struct {
	Type      string         `json:"type"`
	Start     time.Time      `json:"start"`
	Version   string         `json:"version"`
	Args      []string       `json:"args"`
	Targets   int            `json:"targets"`
	Protocols []jsonProtocol `json:"protocols"`
	Seed      uint64         `json:"seed,string"`
	Shard     int            `json:"shard,omitempty"`
	Shards    int            `json:"shards,omitempty"`
	Resumed   bool           `json:"resumed,omitempty"`
}

// jsonlSummary is the last line a run writes, the JSON document's summary
// with its type.
type jsonlSummary struct {
	Type string `json:"type"`
	jsonSummary
}

// Flush writes out the buffered lines.
func (j *jsonlWriter) Flush() error { return j.w.Flush() }

// Begin writes the "scan" line.
func (j *jsonlWriter) Begin(info ScanInfo) error {
	h := jsonlHeader{Type: lineScan, Start: info.Start, Version: info.Version, Args: info.Args, Targets: info.Targets,
		Protocols: make([]jsonProtocol, len(info.Protocols)),
		Seed:      info.Seed, Shard: info.Shard, Shards: info.Shards, Resumed: info.Resumed}
	if h.Args == nil {
		h.Args = []string{}
	}
	for i, p := range info.Protocols {
		h.Protocols[i] = jsonProtocol{p.Proto, p.Type, p.Ports, p.NumPorts}
	}
	return j.line(h)
}

func (j *jsonlWriter) Result(r scan.Result) error { return j.ResultService(r, nil) }

func (j *jsonlWriter) ResultService(r scan.Result, svc *service.Result) error {
	if err := j.w.Err(); err != nil {
		return err // stop the scan at once, even on results not shown
	}
	if !j.opts.shown(&r) {
		return nil
	}
	if err := j.encodeService(&r, svc); err != nil {
		return err
	}
	_, err := j.w.Write(j.buf.Bytes())
	return err
}

// Unwritten returns the lines accepted but not written when a write
// failed: whole lines, every one a result not in the output.
func (j *jsonlWriter) Unwritten() []byte { return j.w.Unwritten() }

// End writes the "summary" line and flushes.
func (j *jsonlWriter) End(s Summary) error {
	if err := j.line(jsonlSummary{Type: lineSummary, jsonSummary: newJSONSummary(s)}); err != nil {
		return err
	}
	return j.w.Flush()
}

// line writes v's JSON as one line.
func (j *jsonlWriter) line(v any) error {
	j.buf.Reset()
	if err := j.enc.Encode(v); err != nil {
		return err
	}
	_, err := j.w.Write(j.buf.Bytes())
	return err
}
