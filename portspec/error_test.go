package portspec

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// badCase is an input that must fail with an *Error naming part, for a
// reason that holds reason.
type badCase struct{ in, part, reason string }

// readBadCases reads testdata/name: per line, three Go-quoted strings, the
// input, the part and the reason of a badCase; "#" starts a comment line.
func readBadCases(t *testing.T, name string) []badCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var cases []badCase
	for i, text := range strings.Split(string(data), "\n") {
		line, rest := i+1, strings.TrimSpace(text)
		if rest == "" || rest[0] == '#' {
			continue
		}
		var fields [3]string
		for i := range fields {
			q, err := strconv.QuotedPrefix(rest)
			if err == nil {
				fields[i], err = strconv.Unquote(q)
			}
			if err != nil {
				t.Fatalf("%s:%d: field %d: %v", name, line, i+1, err)
			}
			rest = strings.TrimSpace(rest[len(q):])
		}
		if rest != "" {
			t.Fatalf("%s:%d: more than three fields", name, line)
		}
		cases = append(cases, badCase{fields[0], fields[1], fields[2]})
	}
	if len(cases) == 0 {
		t.Fatalf("%s: no cases", name)
	}
	return cases
}

// check fails t unless err is that *Error; call names the function.
func (c badCase) check(t *testing.T, call string, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Input != c.in || e.Part != c.part || !strings.Contains(e.Reason, c.reason) || !e.BadInput() {
		t.Errorf("%s(%q) error = %#v, want Part %q, Reason with %q", call, c.in, err, c.part, c.reason)
	}
}

// fileCase is a file whose bad item, part, is on line.
type fileCase struct {
	in   string
	line int
	part string
}

// check fails t unless err is an *Error naming file, c.line and c.part,
// and says so first in its message.
func (c fileCase) check(t *testing.T, file string, err error) {
	t.Helper()
	var e *Error
	switch {
	case !errors.As(err, &e) || e.File != file || e.Line != c.line || e.Part != c.part:
		t.Errorf("reading %q: error = %#v, want line %d, Part %q", c.in, err, c.line, c.part)
	case !strings.HasPrefix(e.Error(), file+":"):
		t.Errorf("reading %q: message %q does not start with the file", c.in, e)
	}
}

// checkError checks what every error of the package promises.
func checkError(t *testing.T, err error) {
	t.Helper()
	var e *Error
	var re *ResolveError
	switch {
	case errors.As(err, &e):
		if e.Reason == "" || !e.BadInput() || e.Part != "" && !strings.Contains(e.Input, e.Part) {
			t.Fatalf("error %#v: no reason, or a Part not in Input", e)
		}
	case errors.As(err, &re):
	default:
		t.Fatalf("error of type %T: %v", err, err)
	}
}
