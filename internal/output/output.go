// Package output is the one output layer of every portkit command: a human
// table (aligned and coloured on a terminal, plain aligned columns when
// piped), one JSON document, or JSON Lines for commands that stream.
package output

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"strings"
	"unicode"
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
	if f, ok := w.(*os.File); ok && IsTerminal(f) {
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

// JSONArray writes n elements, made one at a time by at, as one indented
// JSON array, the same document JSON writes for a slice, without holding
// the whole of it in memory: a listing of every socket can run to tens of
// megabytes of JSON.
func (p *Printer) JSONArray(n int, at func(i int) any) error {
	if n == 0 {
		_, err := io.WriteString(p.w, "[]\n")
		return err
	}
	b := bufio.NewWriterSize(p.w, 32<<10)
	var elem bytes.Buffer
	enc := json.NewEncoder(&elem)
	enc.SetIndent("  ", "  ")
	enc.SetEscapeHTML(false)
	b.WriteString("[\n")
	for i := 0; i < n; i++ {
		elem.Reset()
		if err := enc.Encode(at(i)); err != nil {
			return err
		}
		b.WriteString("  ")
		b.Write(bytes.TrimSuffix(elem.Bytes(), []byte("\n")))
		if i < n-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("]\n")
	return b.Flush()
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
				widths[i] = max(widths[i], width(r[i].Text))
			}
		}
	}
	// Written through a small buffer rather than built whole: a listing of
	// 20,000 sockets would otherwise hold its whole text in memory twice.
	b := bufio.NewWriterSize(t.p.w, 32<<10)
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
				pad := widths[i] - width(text) + 2
				for ; pad > 0; pad-- {
					b.WriteByte(' ')
				}
				col += widths[i] + 2
			}
		}
		b.WriteByte('\n')
	}
	return b.Flush()
}

func (p *Printer) paint(s string, st Style) string {
	if !p.color || st == Plain || s == "" {
		return s
	}
	return "\x1b[" + sgr[st] + "m" + s + "\x1b[0m"
}

// Printable keeps a diagnostic's text from driving the terminal: control
// characters other than newline and tab (an escape sequence in a server's
// error, say) become U+FFFD.
func Printable(s string) string {
	if !strings.ContainsFunc(s, isHostile) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isHostile(r) {
			return utf8.RuneError
		}
		return r
	}, s)
}

func isHostile(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }

// clean puts a cell on one line: the registry's texts hold newlines and tabs.
func clean(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	// Whitespace runs become one space; the other control characters are
	// made harmless as in a diagnostic.
	return Printable(strings.Join(strings.Fields(s), " "))
}

// cut shortens s to n terminal columns, marking the cut with an ellipsis.
func cut(s string, n int) string {
	if n < 1 || width(s) <= n {
		return s
	}
	w := 0
	for i, r := range s {
		if w+runeWidth(r) > n-1 {
			return s[:i] + "…"
		}
		w += runeWidth(r)
	}
	return s
}

// width is how many terminal columns s takes.
func width(s string) int {
	n := 0
	for _, r := range s {
		n += runeWidth(r)
	}
	return n
}

// runeWidth is the columns a terminal gives r: none for a combining mark or
// a joiner, two for East Asian wide and fullwidth characters and emoji
// (Unicode's East Asian Width, in its main blocks), one otherwise.
func runeWidth(r rune) int {
	switch {
	case r == 0x200D, r >= 0xFE00 && r <= 0xFE0F, unicode.In(r, unicode.Mn, unicode.Me):
		return 0
	case r >= 0x1100 && r <= 0x115F, r >= 0x2E80 && r <= 0x303E, r >= 0x3041 && r <= 0x33FF,
		r >= 0x3400 && r <= 0x4DBF, r >= 0x4E00 && r <= 0x9FFF, r >= 0xA000 && r <= 0xA4CF,
		r >= 0xAC00 && r <= 0xD7A3, r >= 0xF900 && r <= 0xFAFF, r >= 0xFE30 && r <= 0xFE4F,
		r >= 0xFF00 && r <= 0xFF60, r >= 0xFFE0 && r <= 0xFFE6, r >= 0x1F300 && r <= 0x1F64F,
		r >= 0x1F900 && r <= 0x1F9FF, r >= 0x20000 && r <= 0x3FFFD:
		return 2
	}
	return 1
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
