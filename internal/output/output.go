// Package output is the one output layer of every portkit command: a human
// table (aligned and coloured on a terminal, plain aligned columns when
// piped), one JSON document, or JSON Lines for commands that stream.
package output

import (
	"encoding/json"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"golang.org/x/term"
)

// Format is how results are written.
type Format int

const (
	Human     Format = iota // a table
	JSON                    // one JSON document
	JSONLines               // one JSON object per line, as results come
)

// Printer writes results to one stream.
type Printer struct {
	w      io.Writer
	format Format
	tty    bool
	color  bool
	width  int // terminal width; 0 when not a terminal
}

// New returns a printer for w. getenv reads the environment (NO_COLOR,
// TERM); it is a parameter so tests control it.
func New(w io.Writer, format Format, getenv func(string) string) *Printer {
	p := &Printer{w: w, format: format}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
		if width, _, err := term.GetSize(int(f.Fd())); err == nil {
			p.width = width
		}
	}
	// https://no-color.org: any non-empty NO_COLOR turns colour off.
	p.color = p.tty && getenv("NO_COLOR") == "" && getenv("TERM") != "dumb"
	return p
}

// Format returns the printer's format.
func (p *Printer) Format() Format { return p.format }

// TTY reports whether the printer writes to a terminal.
func (p *Printer) TTY() bool { return p.tty }

// JSON writes v as one indented JSON document.
func (p *Printer) JSON(v any) error {
	enc := json.NewEncoder(p.w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// Line writes v as one line of JSON Lines.
func (p *Printer) Line(v any) error {
	enc := json.NewEncoder(p.w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// Style names a text style for a cell; it shows only with colour on.
type Style int

const (
	Plain Style = iota
	Bold
	Dim
	Green
	Yellow
	Red
)

var sgr = [...]string{Plain: "", Bold: "1", Dim: "2", Green: "32", Yellow: "33", Red: "31"}

// Cell is table text with a style.
type Cell struct {
	Text  string
	Style Style
}

// minCut is the least room worth cutting the last column to; with less, it
// is left whole for the terminal to wrap.
const minCut = 20

// Table collects rows and writes them aligned on Flush.
type Table struct {
	p      *Printer
	header []string
	rows   [][]Cell
}

// Table starts a table with the given column headers.
func (p *Printer) Table(header ...string) *Table { return &Table{p: p, header: header} }

// Row adds a row of plain cells.
func (t *Table) Row(cells ...string) {
	row := make([]Cell, len(cells))
	for i, c := range cells {
		row[i] = Cell{Text: c}
	}
	t.rows = append(t.rows, row)
}

// StyledRow adds a row of styled cells.
func (t *Table) StyledRow(cells ...Cell) { t.rows = append(t.rows, cells) }

// Flush writes the table. Columns are separated by two spaces. On a
// terminal the last column is cut to the terminal's width, since it is the
// free-text one, when at least minCut columns are left for it; piped output
// is never cut.
func (t *Table) Flush() error {
	head := make([]Cell, len(t.header))
	for i, h := range t.header {
		head[i] = Cell{Text: h, Style: Bold}
	}
	rows := append([][]Cell{head}, t.rows...)
	widths := make([]int, len(t.header))
	for _, r := range rows {
		for i := range r {
			r[i].Text = clean(r[i].Text)
			if i < len(widths) {
				widths[i] = max(widths[i], utf8.RuneCountInString(r[i].Text))
			}
		}
	}
	var b strings.Builder
	for _, r := range rows {
		col := 0
		for i, c := range r {
			text := c.Text
			last := i == len(r)-1
			if room := t.p.width - col; last && room >= minCut {
				text = cut(text, room)
			}
			b.WriteString(t.p.paint(text, c.Style))
			if !last {
				pad := widths[i] - utf8.RuneCountInString(text) + 2
				b.WriteString(strings.Repeat(" ", pad))
				col += widths[i] + 2
			}
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(t.p.w, b.String())
	return err
}

func (p *Printer) paint(s string, st Style) string {
	if !p.color || st == Plain || s == "" {
		return s
	}
	return "\x1b[" + sgr[st] + "m" + s + "\x1b[0m"
}

// clean puts a cell on one line: the registry's texts hold newlines and tabs.
func clean(s string) string {
	if !strings.ContainsAny(s, "\t\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

// cut shortens s to n runes, marking the cut with an ellipsis.
func cut(s string, n int) string {
	if n < 1 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
