package report

import (
	"encoding/csv"
	"io"
	"strconv"

	"github.com/portkit/portkit/scan"
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
	return c.write("ip", "port", "protocol", "state", "service", "rtt_us", "reason")
}

func (c *csvWriter) Result(r scan.Result) error {
	if err := c.live.Err(); err != nil {
		return err // stop the scan at once, even on results not shown
	}
	if !c.opts.shown(&r) {
		return nil
	}
	return c.write(r.IP.String(), strconv.Itoa(int(r.Port)), r.Proto.String(), r.State.String(),
		c.names.name(r.Port, r.Proto), strconv.FormatInt(r.RTT.Microseconds(), 10), r.Reason)
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
