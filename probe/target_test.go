package probe

import (
	"bufio"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

type targetCase struct {
	line  int
	input string
	want  string // as in testdata/targets.txt
}

func readTargetCases(t testing.TB) []targetCase {
	t.Helper()
	f, err := os.Open("testdata/targets.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []targetCase
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		input, want, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("targets.txt:%d: no tab", n)
		}
		cases = append(cases, targetCase{n, input, want})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

// describe writes a parse outcome the way targets.txt does.
func describe(tg Target) string {
	switch tg.Kind {
	case Unix:
		return "unix " + tg.Path
	case TCP, HTTP:
		return tg.Kind.String() + " " + tg.Host + " " + strconv.Itoa(int(tg.Port))
	}
	return "kind " + tg.Kind.String()
}

func TestParseTarget(t *testing.T) {
	for _, c := range readTargetCases(t) {
		got, err := ParseTarget(c.input)
		if reason, isErr := strings.CutPrefix(c.want, "error "); isErr {
			var te *TargetError
			if !errors.As(err, &te) || !te.BadInput() || te.Input != c.input {
				t.Errorf("targets.txt:%d: ParseTarget(%q) = %+v, %v; want a *TargetError", c.line, c.input, got, err)
			} else if !strings.Contains(te.Reason, reason) {
				t.Errorf("targets.txt:%d: ParseTarget(%q) reason %q, want it to mention %q", c.line, c.input, te.Reason, reason)
			}
			continue
		}
		if err != nil {
			t.Errorf("targets.txt:%d: ParseTarget(%q): %v", c.line, c.input, err)
			continue
		}
		if d := describe(got); d != c.want {
			t.Errorf("targets.txt:%d: ParseTarget(%q) = %s, want %s", c.line, c.input, d, c.want)
		}
		if got.Kind == HTTP && got.URL != c.input {
			t.Errorf("targets.txt:%d: URL %q, want the input", c.line, got.URL)
		}
	}
}

// FuzzParseTarget checks that ParseTarget never panics, that its failures
// are *TargetErrors, and that every target it accepts is well formed and
// reads back from its String unchanged.
func FuzzParseTarget(f *testing.F) {
	for _, c := range readTargetCases(f) {
		f.Add(c.input)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseTarget(s)
		if err != nil {
			var te *TargetError
			if !errors.As(err, &te) || !te.BadInput() || te.Reason == "" {
				t.Fatalf("ParseTarget(%q): %#v, want a *TargetError with a reason", s, err)
			}
			return
		}
		switch tg.Kind {
		case TCP, HTTP:
			if tg.Host == "" || tg.Port == 0 || tg.Path != "" {
				t.Fatalf("ParseTarget(%q) = %+v: missing host or port", s, tg)
			}
		case Unix:
			if tg.Path == "" || tg.Host != "" || tg.Port != 0 {
				t.Fatalf("ParseTarget(%q) = %+v: bad Unix target", s, tg)
			}
		default:
			t.Fatalf("ParseTarget(%q) = %+v: no kind", s, tg)
		}
		back, err := ParseTarget(tg.String())
		if err != nil || back != tg {
			t.Fatalf("ParseTarget(%q) = %+v, whose String %q reads back as %+v, %v", s, tg, tg.String(), back, err)
		}
	})
}
