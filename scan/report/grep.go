package report

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// grepWriter writes nmap's grepable format (-oG): a line per host for its
// status and one for its ports, fields separated by tabs, ports by ", ",
// between a "# … scan initiated" and a "# … done at" comment. Hosts are
// grouped and written at End (see the package comment).
type grepWriter struct {
	w io.Writer
	grouped
}

func newGrep(w io.Writer, opts Options) *grepWriter {
	return &grepWriter{w: w, grouped: newGrouped(opts)}
}

func (g *grepWriter) Begin(info ScanInfo) error {
	_, err := fmt.Fprintf(g.w, "# portkit %s scan initiated %s as: %s\n",
		info.Version, ctime(info.Start), oneLine(strings.Join(info.Args, " ")))
	return err
}

// oneLine keeps an argument from ending the header's comment line. (A
// function, not a strings.Replacer built at package init, which every
// command would pay for.)
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// grepField keeps a port's sub-field from breaking the line's syntax: "/"
// separates sub-fields (nmap writes "|" in its place), ", " ports, a tab
// fields.
func grepField(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '/':
			return '|'
		case ',', '\t', '\n', '\r':
			return ' '
		}
		return r
	}, s)
}

func (g *grepWriter) End(s Summary) error {
	b := bufio.NewWriter(g.w)
	for _, h := range g.hosts.sorted() {
		status := "Unknown"
		if h.up {
			status = "Up"
		}
		fmt.Fprintf(b, "Host: %s ()\tStatus: %s\n", h.addr, status)
		fmt.Fprintf(b, "Host: %s ()\tPorts: ", h.addr)
		for i, r := range h.ports {
			if i > 0 {
				b.WriteString(", ")
			}
			// port/state/protocol/owner/service/rpc info/version/
			name, svc := g.service(&r)
			version := ""
			if svc != nil {
				version = versionText(svc)
			}
			b.WriteString(strconv.Itoa(int(r.Port)) + "/" + r.State.String() + "/" + r.Proto.String() +
				"//" + grepField(name) + "//" + grepField(version) + "/")
		}
		b.WriteByte('\n')
	}
	word := "done"
	switch {
	case s.Exit == Failed && s.Error != "":
		word = "error (" + oneLine(s.Error) + ")"
	case s.Exit != Success:
		word = string(s.Exit)
	}
	fmt.Fprintf(b, "# portkit %s at %s -- %s\n", word, ctime(s.End), done(s))
	return b.Flush()
}

// Flush does nothing: hosts are written at End.
func (g *grepWriter) Flush() error { return nil }
