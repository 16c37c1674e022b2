package report

import (
	"cmp"
	"io"
	"strconv"

	"github.com/portkit/portkit/internal/output"
	"github.com/portkit/portkit/scan"
	"github.com/portkit/portkit/service"
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
	header := []string{"HOST", "PORT", "STATE", "SERVICE"}
	if t.opts.Service {
		header = append(header, "VERSION", "TLS")
	}
	tb := t.p.Table(header...)
	for _, h := range list {
		addr := output.Cell{Text: h.addr.String()}
		for _, r := range h.ports {
			var state output.Style
			if int(r.State) < len(stateStyle) {
				state = stateStyle[r.State]
			}
			name, svc := t.service(&r)
			row := []output.Cell{addr,
				output.Cell{Text: strconv.Itoa(int(r.Port)) + "/" + r.Proto.String()},
				output.Cell{Text: r.State.String(), Style: state},
				output.Cell{Text: cmp.Or(name, "unknown")}}
			if t.opts.Service {
				var version, tls string
				if svc != nil {
					version, tls = versionText(svc), svc.TLS.String()
				}
				row = append(row, output.Cell{Text: version}, output.Cell{Text: tls})
			}
			tb.StyledRow(row...)
			addr.Style = output.Dim
		}
	}
	return tb.Flush()
}

// Flush does nothing: the table is written at End.
func (t *tableWriter) Flush() error { return nil }

// versionText is the product, version and what else the protocol said,
// or the first bytes of a port nothing recognised.
func versionText(s *service.Result) string {
	if s.Banner != "" {
		return "banner " + s.Banner
	}
	return s.String()
}
