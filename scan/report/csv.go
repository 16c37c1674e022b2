package report

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/portkit/portkit/scan"
	"github.com/portkit/portkit/service"
)

// csvWriter writes a header and one row per result through a live buffer,
// like JSON Lines.
type csvWriter struct {
	live  *liveWriter
	w     *csv.Writer
	opts  Options
	names namer
}

func newCSV(w io.Writer, opts Options) *csvWriter {
	live := newLiveWriter(w)
	return &csvWriter{live: live, w: csv.NewWriter(live), opts: opts, names: namer{reg: opts.Registry}}
}

// Flush writes out the buffered rows.
func (c *csvWriter) Flush() error { return c.live.Flush() }

func (c *csvWriter) Begin(info ScanInfo) error {
	if info.Continued {
		return nil
	}
	head := []string{"ip", "port", "protocol", "state", "service", "rtt_us", "reason"}
	if c.opts.Service {
		head = append(head, "product", "version", "info", "tls_version", "tls_subject", "tls_not_after", "confidence", "cpe", "banner")
	}
	return c.write(head...)
}

func (c *csvWriter) Result(r scan.Result) error { return c.ResultService(r, nil) }

func (c *csvWriter) ResultService(r scan.Result, svc *service.Result) error {
	if err := c.live.Err(); err != nil {
		return err // stop the scan at once, even on results not shown
	}
	if !c.opts.shown(&r) {
		return nil
	}
	name := c.names.name(r.Port, r.Proto)
	if svc != nil {
		name = svc.Service
	}
	row := []string{r.IP.String(), strconv.Itoa(int(r.Port)), r.Proto.String(), r.State.String(),
		name, strconv.FormatInt(r.RTT.Microseconds(), 10), r.Reason}
	if c.opts.Service {
		more := make([]string, 9)
		if svc != nil {
			more = []string{svc.Product, svc.Version, svc.Info, "", "", "", strconv.Itoa(svc.Confidence), strings.Join(svc.CPE, " "), svc.Banner}
			if t := svc.TLS; t != nil {
				more[3] = t.Version
				if t.Cert != nil {
					more[4], more[5] = t.Cert.Subject, t.Cert.NotAfter.Format(time.RFC3339)
				}
			}
		}
		row = append(row, more...)
	}
	return c.write(row...)
}

func (c *csvWriter) End(Summary) error { return c.live.Flush() }

// Unwritten returns the rows accepted but not written when a write failed:
// whole rows (the header too, if it was among them).
func (c *csvWriter) Unwritten() []byte { return c.live.Unwritten() }

func (c *csvWriter) write(fields ...string) error {
	c.w.Write(fields)
	c.w.Flush()
	return c.w.Error()
}
