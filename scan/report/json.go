package report

import (
	"bufio"
	"io"
	"time"

	"github.com/portkit/portkit/scan"
	"github.com/portkit/portkit/service"
)

// jsonWriter writes one document, {"scan": …, "results": […], "summary": …}.
// Results are written into the array as they come, so the document is never
// held whole; End closes it, so an interrupted scan is valid JSON too.
type jsonWriter struct {
	w *bufio.Writer
	*encoder
	n int // results written
}

func newJSON(w io.Writer, opts Options) *jsonWriter {
	return &jsonWriter{w: bufio.NewWriter(w), encoder: newEncoder(opts)}
}

type jsonInfo struct {
	Start     time.Time      `json:"start"`
	Args      []string       `json:"args"`
	Version   string         `json:"version"`
	Targets   int            `json:"targets"`
	Protocols []jsonProtocol `json:"protocols"`
}

type jsonProtocol struct {
	Protocol scan.Proto `json:"protocol"`
	Type     string     `json:"type"`
	Ports    string     `json:"ports"`
	NumPorts int        `json:"num_ports"`
}

type jsonSummary struct {
	End          time.Time `json:"end"`
	Elapsed      float64   `json:"elapsed_s"`
	HostsUp      int       `json:"hosts_up"`
	HostsDown    int       `json:"hosts_down"`
	HostsTotal   int       `json:"hosts_total"`
	Open         int       `json:"open"`
	Closed       int       `json:"closed"`
	Filtered     int       `json:"filtered"`
	OpenFiltered int       `json:"open_filtered"`
	Exit         Exit      `json:"exit"`
	Error        string    `json:"error,omitempty"`
}

func newJSONSummary(s Summary) jsonSummary {
	return jsonSummary{
		End: s.End, Elapsed: s.Elapsed.Seconds(),
		HostsUp: s.HostsUp, HostsDown: s.HostsDown, HostsTotal: s.HostsTotal,
		Open: s.Open, Closed: s.Closed, Filtered: s.Filtered, OpenFiltered: s.OpenFiltered,
		Exit: s.Exit, Error: s.Error,
	}
}

func (j *jsonWriter) Begin(info ScanInfo) error {
	v := jsonInfo{Start: info.Start, Args: info.Args, Version: info.Version, Targets: info.Targets,
		Protocols: make([]jsonProtocol, len(info.Protocols))}
	if v.Args == nil {
		v.Args = []string{}
	}
	for i, p := range info.Protocols {
		v.Protocols[i] = jsonProtocol{p.Proto, p.Type, p.Ports, p.NumPorts}
	}
	j.w.WriteString(`{"scan": `)
	if err := j.put(v); err != nil {
		return err
	}
	_, err := j.w.WriteString(`, "results": [`)
	return err
}

func (j *jsonWriter) Result(r scan.Result) error { return j.ResultService(r, nil) }

func (j *jsonWriter) ResultService(r scan.Result, svc *service.Result) error {
	if !j.opts.shown(&r) {
		return nil
	}
	if err := j.encodeService(&r, svc); err != nil {
		return err
	}
	if j.n > 0 {
		j.w.WriteByte(',')
	}
	j.n++
	j.w.WriteString("\n  ")
	_, err := j.w.Write(j.buf.Bytes()[:j.buf.Len()-1]) // without the encoder's newline
	return err
}

func (j *jsonWriter) End(s Summary) error {
	if j.n > 0 {
		j.w.WriteByte('\n')
	}
	j.w.WriteString(`], "summary": `)
	err := j.put(newJSONSummary(s))
	if err != nil {
		return err
	}
	j.w.WriteString("}\n")
	return j.w.Flush()
}

// put writes v's JSON, without a newline.
func (j *jsonWriter) put(v any) error {
	j.buf.Reset()
	if err := j.enc.Encode(v); err != nil {
		return err
	}
	_, err := j.w.Write(j.buf.Bytes()[:j.buf.Len()-1])
	return err
}

// Flush writes out the results buffered so far; the document stays open.
func (j *jsonWriter) Flush() error { return j.w.Flush() }
