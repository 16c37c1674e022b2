package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/portkit/portkit/bench/harness"
	"github.com/portkit/portkit/internal/testtool"
)

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   ", nil},
		{"ss -tln", []string{"ss", "-tln"}},
		{"  a \t b\n", []string{"a", "b"}},
		{`sh -c 'exit 0'`, []string{"sh", "-c", "exit 0"}},
		{`echo "a b" c`, []string{"echo", "a b", "c"}},
		{`echo '' ""`, []string{"echo", "", ""}},
		{`x'y z'"w"`, []string{"xy zw"}},
		{`echo 'a"b' "c'd"`, []string{"echo", `a"b`, "c'd"}},
		{`echo "\" \\ \$ \` + "`" + ` \n"`, []string{"echo", `" \ $ ` + "`" + ` \n`}},
		{`echo '\n' a\b`, []string{"echo", `\n`, `a\b`}},
	}
	for _, tt := range tests {
		got, err := splitWords(tt.in)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{`echo 'a`, `echo "a`, `echo "a\"`} {
		if got, err := splitWords(bad); err == nil {
			t.Errorf("splitWords(%q) = %q, want an error", bad, got)
		}
	}
}

// The command line shown in the report must split back into the same argv.
func TestSplitWordsReadsCommandString(t *testing.T) {
	argv := []string{"portkit", "", "a b", "it's", `"$x"`, "`y`", `back\slash`, "tab\there"}
	c := harness.Command{Argv: argv}
	got, err := splitWords(c.String())
	if err != nil || !slices.Equal(got, argv) {
		t.Errorf("splitWords(%q) = %q, %v; want %q", c.String(), got, err, argv)
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in   string
		want target
		ok   bool
	}{
		{"portkit/getent<=3", target{"portkit", "getent", 3}, true},
		{" a / b <= 1.5 ", target{"a", "b", 1.5}, true},
		{"a/b<3", target{}, false},
		{"ab<=3", target{}, false},
		{"/b<=3", target{}, false},
		{"a/b<=x", target{}, false},
		{"a/b<=0", target{}, false},
		{"a/b<=NaN", target{}, false},
	}
	for _, tt := range tests {
		got, err := parseTarget(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("parseTarget(%q) = %+v, %v; want %+v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseRSSTarget(t *testing.T) {
	tests := []struct {
		in   string
		want rssTarget
		ok   bool
	}{
		{"portkit<=30", rssTarget{"portkit", 30}, true},
		{" a <= 1.5 ", rssTarget{"a", 1.5}, true},
		{"a<30", rssTarget{}, false},
		{"<=30", rssTarget{}, false},
		{"a<=x", rssTarget{}, false},
		{"a<=0", rssTarget{}, false},
		{"a<=-1", rssTarget{}, false},
		{"a<=NaN", rssTarget{}, false},
		{"a<=Inf", rssTarget{}, false},
	}
	for _, tt := range tests {
		got, err := parseRSSTarget(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("parseRSSTarget(%q) = %+v, %v; want %+v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestRSSTargetCheck(t *testing.T) {
	r := &harness.Report{Stats: []harness.Stats{
		{Command: harness.Command{Name: "a"}, PeakRSS: 30 << 20},
		{Command: harness.Command{Name: "b"}, PeakRSS: 30<<20 + 1},
		{Command: harness.Command{Name: "unknown"}},
	}}
	tests := []struct {
		t    rssTarget
		line string
		ok   bool
	}{
		{rssTarget{"a", 30}, "- target a peak RSS <= 30 MiB: PASS (30.0 MiB)\n", true},
		{rssTarget{"b", 30}, "- target b peak RSS <= 30 MiB: FAIL (30.0 MiB)\n", false},
		{rssTarget{"b", 30.5}, "- target b peak RSS <= 30.5 MiB: PASS (30.0 MiB)\n", true},
		{rssTarget{"unknown", 30}, "- target unknown peak RSS <= 30 MiB: FAIL (not reported)\n", false},
		{rssTarget{"missing", 30}, "- target missing peak RSS <= 30 MiB: FAIL (not reported)\n", false},
	}
	for _, tt := range tests {
		line, ok := tt.t.check(r)
		if line != tt.line || ok != tt.ok {
			t.Errorf("%+v.check = %q, %v; want %q, %v", tt.t, line, ok, tt.line, tt.ok)
		}
	}
}

func TestParseCodes(t *testing.T) {
	if got, err := parseCodes("0, 1,3"); err != nil || !slices.Equal(got, []int{0, 1, 3}) {
		t.Errorf("parseCodes = %v, %v", got, err)
	}
	if _, err := parseCodes("0,x"); err == nil {
		t.Error("parseCodes(0,x) succeeded")
	}
}

func sidebyside(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestBadUsage(t *testing.T) {
	ok := []string{"-cmd", "a=true"}
	for _, args := range [][]string{
		{"-runs", "x"},
		{"-cmd", "nameless"},
		{"-cmd", "a="},
		{"-cmd", "a/b=true"},
		{"-cmd", "a='unterminated"},
		{"-cmd", "a=true", "-cmd", "a=false"},
		{"-allow-exit", "1,x"},
		{"-max-ratio", "a/b"},
		{},
		append(ok, "extra"),
		append(ok, "-runs", "0"),
		append(ok, "-md", "f.md"),
		append(ok, "-max-ratio", "a/zz<=2"),
		{"-max-rss", "a"},
		append(ok, "-max-rss", "zz<=30"),
	} {
		code, stdout, stderr := sidebyside(t, args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, "usage: sidebyside") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and usage", args, code, stdout, stderr)
		}
	}
}

func TestRunWritesSectionAndTargets(t *testing.T) {
	for _, n := range []string{"true", "sh"} {
		testtool.Need(t, n)
	}
	md := filepath.Join(t.TempDir(), "BENCH.md")
	args := []string{"-title", "tiny", "-runs", "3", "-warmup", "0", "-md", md, "-section", "tiny",
		"-cmd", "true=true", "-cmd", "sh=sh -c 'exit 0'", "-max-ratio", "true/sh<=1000"}

	code, stdout, stderr := sidebyside(t, args...)
	if code != 0 || !strings.Contains(stdout, "| sh | `sh -c 'exit 0'` |") ||
		!strings.Contains(stdout, "- target true/sh <= 1000: PASS (ratio ") {
		t.Fatalf("exit %d, stderr %q, stdout:\n%s", code, stderr, stdout)
	}
	doc, err := os.ReadFile(md)
	if err != nil || !strings.Contains(string(doc), "<!-- bench:tiny -->\n"+stdout+"<!-- /bench:tiny -->\n") {
		t.Fatalf("%s (err %v):\n%s", md, err, doc)
	}

	// Linux reports every run's peak RSS; a shell is well under 1000 MiB.
	if runtime.GOOS == "linux" {
		code, stdout, stderr = sidebyside(t, append(args, "-max-rss", "sh<=1000")...)
		if code != 0 || !strings.Contains(stdout, "- target sh peak RSS <= 1000 MiB: PASS (") {
			t.Fatalf("-max-rss: exit %d, stderr %q, stdout:\n%s", code, stderr, stdout)
		}
		code, stdout, _ = sidebyside(t, append(args, "-max-rss", "sh<=0.001")...)
		if code != 1 || !strings.Contains(stdout, "- target sh peak RSS <= 0.001 MiB: FAIL (") {
			t.Errorf("missed -max-rss: exit %d, stdout:\n%s", code, stdout)
		}
	}

	// A missed target fails the run but still replaces the section.
	code, stdout, _ = sidebyside(t, append(args, "-max-ratio", "sh/true<=0.0001")...)
	doc, _ = os.ReadFile(md)
	if code != 1 || !strings.Contains(stdout, "- target sh/true <= 0.0001: FAIL (ratio ") ||
		strings.Count(string(doc), "<!-- bench:tiny -->") != 1 || !strings.Contains(string(doc), "FAIL") {
		t.Errorf("exit %d, stdout:\n%s\nfile:\n%s", code, stdout, doc)
	}
}

func TestRunReportsFailingCommand(t *testing.T) {
	testtool.Need(t, "false")
	code, stdout, stderr := sidebyside(t, "-runs", "1", "-warmup", "0", "-cmd", "nope=false")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "nope exited with code 1") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, _, stderr = sidebyside(t, "-runs", "1", "-warmup", "0", "-allow-exit", "0,1", "-cmd", "nope=false")
	if code != 0 {
		t.Errorf("with -allow-exit 0,1: exit %d, stderr %q", code, stderr)
	}
}
