package report

import (
	"cmp"
	"io"
	"strconv"

	"github.com/portkit/portkit/internal/output"
	"github.com/portkit/portkit/scan"
)

// tableWriter writes a table for people at End: the shown ports of each
// host, hosts in address order, "unknown" where the registry names no
// service, as nmap says. On a terminal the host is dimmed where it
// repeats, so the eye sees groups while a pipe still gets whole rows.
type tableWriter struct {
	p *output.Printer
	grouped
}

func newTable(w io.Writer, opts Options) *tableWriter {
	return &tableWriter{p: output.New(w, output.Human, opts.Getenv), grouped: newGrouped(opts)}
}

func (t *tableWriter) Begin(ScanInfo) error { return nil }

var stateStyle = [...]output.Style{
	scan.Open:         output.Green,
	scan.Closed:       output.Red,
	scan.Filtered:     output.Yellow,
	scan.OpenFiltered: output.Yellow,
}

// End writes the table, or nothing when no port is shown: saying so is the
// caller's, on stderr.
func (t *tableWriter) End(Summary) error {
	list := t.hosts.sorted()
	if len(list) == 0 {
		return nil
	}
	tb := t.p.Table("HOST", "PORT", "STATE", "SERVICE")
	for _, h := range list {
		addr := output.Cell{Text: h.addr.String()}
		for _, r := range h.ports {
			var state output.Style
			if int(r.State) < len(stateStyle) {
				state = stateStyle[r.State]
			}
			tb.StyledRow(addr,
				output.Cell{Text: strconv.Itoa(int(r.Port)) + "/" + r.Proto.String()},
				output.Cell{Text: r.State.String(), Style: state},
				output.Cell{Text: cmp.Or(t.names.name(r.Port, r.Proto), "unknown")})
			addr.Style = output.Dim
		}
	}
	return tb.Flush()
}

// Flush does nothing: the table is written at End.
func (t *tableWriter) Flush() error { return nil }
