package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/portkit/portkit/registry
cpu: AMD EPYC
BenchmarkByPort-2        	10223700	       118.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkByName-2        	 5258953	       1227.9 ns/op	       16 B/op	       1 allocs/op
PASS
`

func TestParseLine(t *testing.T) {
	r, ok := parseLine("BenchmarkByPort-2   10223700   118.0 ns/op   0 B/op   0 allocs/op")
	if !ok || r.name != "BenchmarkByPort-2" || r.nsPerOp != 118 || !r.hasMem || r.allocs != 0 {
		t.Errorf("got %+v, %v", r, ok)
	}
	r, ok = parseLine("BenchmarkLookup1M-2   19305646   62.17 ns/op   72.50 B/entry   0 B/op   0 allocs/op")
	if !ok || r.nsPerOp != 62.17 || len(r.others) != 1 || r.others[0] != "72.50 B/entry" || !r.hasMem {
		t.Errorf("with a metric of its own: got %+v, %v", r, ok)
	}
	for _, bad := range []string{"PASS", "BenchmarkX 1 x ns/op", "ok  pkg 1.2s", ""} {
		if _, ok := parseLine(bad); ok {
			t.Errorf("parseLine(%q) accepted", bad)
		}
	}
}

func TestRun(t *testing.T) {
	md := filepath.Join(t.TempDir(), "B.md")
	var out, errb bytes.Buffer
	code := run([]string{"-max-ns", "1000", "-max-allocs", "0", "-md", md, "-section", "s"}, strings.NewReader(sample), &out, &errb)
	if code != 1 {
		t.Errorf("exit %d, want 1: ByName misses both targets", code)
	}
	for _, want := range []string{"| BenchmarkByPort-2 | 118.0 | 0 | 0 | ≤ 1000 ns PASS, ≤ 0 allocs PASS |", "≤ 1000 ns FAIL, ≤ 0 allocs FAIL", "cpu: AMD EPYC"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	doc, _ := os.ReadFile(md)
	if !strings.Contains(string(doc), "<!-- bench:s -->") || !strings.Contains(string(doc), "BenchmarkByPort-2") {
		t.Errorf("markdown file:\n%s", doc)
	}
	if strings.Contains(out.String(), "other metrics") {
		t.Errorf("a column of other metrics without any:\n%s", out.String())
	}
	out.Reset()
	if code := run(nil, strings.NewReader("BenchmarkLookup1M-2 10 62.2 ns/op 72.50 B/entry 0 B/op 0 allocs/op\n"), &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "| BenchmarkLookup1M-2 | 62.2 | 0 | 0 | 72.50 B/entry | - |") {
		t.Errorf("other metrics: exit %d\n%s", code, out.String())
	}
	if code := run(nil, strings.NewReader("nothing"), &out, &errb); code != 1 {
		t.Errorf("no results: exit %d", code)
	}
	if code := run([]string{"-md", md}, strings.NewReader(sample), &out, &errb); code != 2 {
		t.Errorf("-md without -section: exit %d", code)
	}
	errb.Reset()
	if code := run([]string{"-want", "BenchmarkByPort,BenchmarkGone"}, strings.NewReader(sample), &out, &errb); code != 1 || !strings.Contains(errb.String(), "BenchmarkGone is not in the input") {
		t.Errorf("a wanted benchmark missing: exit %d, %q", code, errb.String())
	}
}
