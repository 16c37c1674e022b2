package benchmd

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestMedianAndPaired(t *testing.T) {
	if got := Median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median odd = %v", got)
	}
	if got := Median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("median even = %v", got)
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("Median(nil) is not NaN")
	}
	// Round 2's load halves both sides: the paired ratio stays 2.
	a := []float64{20, 10, 22, math.NaN()}
	b := []float64{10, 5, 11, 7}
	if got := PairedRatio(a, b); got != 2 {
		t.Errorf("pairedRatio = %v, want 2", got)
	}
	if got := PairedDiff(a, b); got != 10 {
		t.Errorf("pairedDiff = %v, want 10", got)
	}
}

func TestFormatting(t *testing.T) {
	for _, tt := range []struct {
		x    float64
		want string
	}{{1.234, "1.23"}, {12.34, "12.3"}, {123.4, "123"}, {12345.6, "12,346"}, {math.NaN(), "n/a"}} {
		if got := Num(tt.x); got != tt.want {
			t.Errorf("Num(%v) = %q, want %q", tt.x, got, tt.want)
		}
	}
	if got := Count(1234567); got != "1,234,567" {
		t.Errorf("count = %q", got)
	}
	if got := SignedDur(-1500 * time.Microsecond); got != "−1.50 ms" {
		t.Errorf("signedDur = %q", got)
	}
}

func TestRotated(t *testing.T) {
	seen := map[int]bool{}
	for r := range 4 {
		o := Rotated(4, r)
		seen[o[0]] = true
		if len(o) != 4 {
			t.Fatalf("Rotated(4, %d) = %v", r, o)
		}
	}
	if len(seen) != 4 {
		t.Errorf("not every path goes first in 4 rounds: %v", seen)
	}
}

func TestTableAndSection(t *testing.T) {
	tb := &Table{Head: []string{"path", "line", "x"}, Align: []string{"", "---"}}
	tb.Row("direct", "`a|b`", "1")
	got := tb.String()
	want := "| path | line | x |\n| --- | --- | ---: |\n| direct | `a|b` | 1 |\n"
	if got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
	s := New("T", "setup")
	s.AddTarget(true, "a", "1")
	s.AddTarget(false, "b", "")
	md := s.Markdown("bash bench/forward.sh")
	for _, w := range []string{"**T** — ", "setup; load average", "`bash bench/forward.sh`", "- target a: PASS (1)", "- target b: FAIL"} {
		if !strings.Contains(md, w) {
			t.Errorf("section lacks %q:\n%s", w, md)
		}
	}
	if s.Pass {
		t.Error("a failed target left the section passing")
	}
}
