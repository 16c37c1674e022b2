package report

import "testing"

// TestGrepEscapes: a port's service name and a header argument cannot break
// the grepable format's syntax; anything else passes through unchanged.
func TestGrepEscapes(t *testing.T) {
	for in, want := range map[string]string{
		"http":          "http",
		"a/b,c\td\ne\r": "a|b c d e ",
		"":              "",
		"ünïcode/x":     "ünïcode|x",
	} {
		if got := grepField(in); got != want {
			t.Errorf("grepField(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"scan 198.18.0.1": "scan 198.18.0.1",
		"a\nb\rc/d,e\tf":  "a b c/d,e\tf",
	} {
		if got := oneLine(in); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", in, got, want)
		}
	}
}
