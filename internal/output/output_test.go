package output

import (
	"bytes"
	"strings"
	"testing"
)

func TestTablePiped(t *testing.T) {
	var b bytes.Buffer
	p := New(&b, Human, func(string) string { return "" })
	if p.TTY() {
		t.Fatal("a buffer is not a terminal")
	}
	tb := p.Table("PORT", "SERVICE", "DESCRIPTION")
	tb.Row("22", "ssh", "The Secure Shell (SSH) Protocol")
	tb.StyledRow(Cell{"5432", Bold}, Cell{"postgresql", Green}, Cell{"line one\nline\ttwo", Plain})
	if err := tb.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "PORT  SERVICE     DESCRIPTION\n" +
		"22    ssh         The Secure Shell (SSH) Protocol\n" +
		"5432  postgresql  line one line two\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestColourAndCut(t *testing.T) {
	p := &Printer{color: true, width: 23}
	if got := p.paint("x", Red); got != "\x1b[31mx\x1b[0m" {
		t.Errorf("paint = %q", got)
	}
	if got := cut("abcdefgh", 5); got != "abcd…" {
		t.Errorf("cut = %q", got)
	}
	if got := cut("abc", 5); got != "abc" {
		t.Errorf("cut short = %q", got)
	}
	var b bytes.Buffer
	p.w = &b
	tb := p.Table("A", "B")
	tb.Row("1", "a long description, longer than the terminal")
	tb.Flush()
	if want := "\x1b[1mA\x1b[0m  \x1b[1mB\x1b[0m\n1  a long description,…\n"; b.String() != want {
		t.Errorf("got %q want %q", b.String(), want)
	}
}

func TestJSON(t *testing.T) {
	var b bytes.Buffer
	p := New(&b, JSON, func(string) string { return "" })
	p.JSON(map[string]any{"a": "<b>"})
	p.Line([]int{1})
	if want := "{\n  \"a\": \"<b>\"\n}\n[1]\n"; b.String() != want {
		t.Errorf("got %q want %q", b.String(), want)
	}
}

func TestJSONArray(t *testing.T) {
	rows := []map[string]any{{"a": 1, "b": []int{2}}, {"a": "<x>"}}
	var want, got bytes.Buffer
	New(&want, JSON, func(string) string { return "" }).JSON(rows)
	New(&got, JSON, func(string) string { return "" }).JSONArray(len(rows), func(i int) any { return rows[i] })
	if got.String() != want.String() {
		t.Errorf("JSONArray wrote\n%s\nJSON writes\n%s", got.String(), want.String())
	}
	got.Reset()
	New(&got, JSON, func(string) string { return "" }).JSONArray(0, nil)
	if got.String() != "[]\n" {
		t.Errorf("empty array: %q", got.String())
	}
}

// TestControlCharacters: a cell or a diagnostic never carries an escape
// sequence through to the terminal.
func TestControlCharacters(t *testing.T) {
	var b bytes.Buffer
	tb := New(&b, Human, func(string) string { return "" }).Table("NAME", "COMMENT")
	tb.Row("evil", "a\x1b]0;owned\x07b\x1b[2Jc\u009bd")
	if err := tb.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); strings.ContainsAny(got, "\x1b\x07\u009b") || !strings.Contains(got, "a\uFFFD]0;owned\uFFFDb") {
		t.Errorf("table cell %q", got)
	}
	if got := Printable("line\n\tnext \x1b[31mred"); got != "line\n\tnext \uFFFD[31mred" {
		t.Errorf("Printable = %q", got)
	}
}

// TestWideCharacters: columns line up by terminal width, not by runes, and
// a cut counts columns.
func TestWideCharacters(t *testing.T) {
	for s, want := range map[string]int{"abc": 3, "日本語": 6, "ｆｕｌｌ": 8, "e\u0301": 1, "🎉ok": 4, "": 0} {
		if got := width(s); got != want {
			t.Errorf("width(%q) = %d, want %d", s, got, want)
		}
	}
	if got := cut("日本語のテキスト", 7); got != "日本語…" {
		t.Errorf("cut = %q", got)
	}
	var b bytes.Buffer
	tb := New(&b, Human, func(string) string { return "" }).Table("NAME", "NOTE")
	tb.Row("日本", "x")
	tb.Row("abcd", "y")
	tb.Flush()
	if want := "NAME  NOTE\n日本  x\nabcd  y\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}
