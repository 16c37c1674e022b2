package report

import (
	"bytes"
	"encoding/json"
	"io"
	"net/netip"

	"github.com/portkit/portkit/scan"
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
}

func newEncoder(opts Options) *encoder {
	e := &encoder{opts: opts, names: namer{reg: opts.Registry}}
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}

// encode replaces the buffer with r's JSON object and a newline.
func (e *encoder) encode(r *scan.Result) error {
	e.buf.Reset()
	return e.enc.Encode(record{
		IP: r.IP, Port: r.Port, Protocol: r.Proto, State: r.State,
		Service: e.names.name(r.Port, r.Proto),
		RTT:     r.RTT.Microseconds(), Reason: r.Reason, TTL: r.TTL,
	})
}

// jsonlWriter writes JSON Lines: one object per result, nothing else,
// through a live buffer, so that a reader downstream (jq) sees results
// within a tenth of a second without a write call per result.
type jsonlWriter struct {
	w *liveWriter
	*encoder
}

func newJSONL(w io.Writer, opts Options) *jsonlWriter {
	return &jsonlWriter{w: newLiveWriter(w), encoder: newEncoder(opts)}
}

// Flush writes out the buffered lines.
func (j *jsonlWriter) Flush() error { return j.w.Flush() }

// Begin writes nothing: a header would not be a result.
func (j *jsonlWriter) Begin(ScanInfo) error { return nil }

func (j *jsonlWriter) Result(r scan.Result) error {
	if !j.opts.shown(&r) {
		return nil
	}
	if err := j.encode(&r); err != nil {
		return err
	}
	_, err := j.w.Write(j.buf.Bytes())
	return err
}

// End writes nothing more: a footer would not be a result.
func (j *jsonlWriter) End(Summary) error { return j.w.Flush() }
