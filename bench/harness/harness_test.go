package harness

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portkit/portkit/internal/testtool"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	tests := []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 50, 7 * time.Millisecond},
		{ms(7), 90, 7 * time.Millisecond},
		{ms(1, 2, 3), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2500 * time.Microsecond},
		{ms(1, 2, 3, 4), 0, time.Millisecond},
		{ms(1, 2, 3, 4), 100, 4 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9100 * time.Microsecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), 90, 10 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	var samples []Sample
	for _, ms := range []int{5, 1, 4, 2, 3} {
		d := time.Duration(ms) * time.Millisecond
		samples = append(samples, Sample{Wall: d, CPU: d / 2, PeakRSS: int64(ms) << 20})
	}
	s := summarize(Command{Name: "x"}, samples)
	want := Stats{Runs: 5, MedianWall: 3 * time.Millisecond, MinWall: time.Millisecond,
		P90Wall: 4600 * time.Microsecond, MedianCPU: 1500 * time.Microsecond, PeakRSS: 5 << 20}
	if s.Runs != want.Runs || s.MedianWall != want.MedianWall || s.MinWall != want.MinWall ||
		s.P90Wall != want.P90Wall || s.MedianCPU != want.MedianCPU || s.PeakRSS != want.PeakRSS {
		t.Errorf("summarize = %+v, want %+v", s, want)
	}
	if s.Samples[0].Wall != 5*time.Millisecond {
		t.Errorf("samples were reordered: %v", s.Samples)
	}
}

func TestRatio(t *testing.T) {
	r := &Report{Stats: []Stats{
		{Command: Command{Name: "a"}, MedianWall: 3 * time.Millisecond},
		{Command: Command{Name: "b"}, MedianWall: 2 * time.Millisecond},
		{Command: Command{Name: "zero"}},
	}}
	tests := []struct {
		a, b string
		want float64 // NaN for "no ratio"
	}{
		{"a", "b", 1.5},
		{"b", "a", 2.0 / 3},
		{"a", "a", 1},
		{"zero", "a", 0},
		{"a", "zero", math.NaN()},
		{"a", "missing", math.NaN()},
		{"missing", "a", math.NaN()},
	}
	for _, tt := range tests {
		got := r.Ratio(tt.a, tt.b)
		if math.IsNaN(tt.want) != math.IsNaN(got) || (!math.IsNaN(got) && math.Abs(got-tt.want) > 1e-12) {
			t.Errorf("Ratio(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestUpdateSection(t *testing.T) {
	const (
		open  = "<!-- bench:x -->"
		close = "<!-- /bench:x -->"
	)
	tests := []struct {
		name, doc, body, want string
	}{
		{"empty doc", "", "T", "\n" + open + "\nT\n" + close + "\n"},
		{"append", "# Doc\n", "T\n", "# Doc\n\n" + open + "\nT\n" + close + "\n"},
		{"replace", "a\n" + open + "\nold\n" + close + "\nb\n", "new", "a\n" + open + "\nnew\n" + close + "\nb\n"},
		{"replace inline", "a " + open + "old" + close + " b", "new", "a " + open + "\nnew\n" + close + " b"},
		{"other name untouched", "<!-- bench:y -->\nkeep\n<!-- /bench:y -->\n", "T",
			"<!-- bench:y -->\nkeep\n<!-- /bench:y -->\n\n" + open + "\nT\n" + close + "\n"},
		{"prefix name untouched", "<!-- bench:xy -->\nkeep\n<!-- /bench:xy -->", "T",
			"<!-- bench:xy -->\nkeep\n<!-- /bench:xy -->\n" + open + "\nT\n" + close + "\n"},
		{"only opening marker", open + "\nkeep\n", "T", open + "\nkeep\n\n" + open + "\nT\n" + close + "\n"},
		{"stray opening marker first", open + "\nkeep\n" + open + "\nold\n" + close, "T",
			open + "\nkeep\n" + open + "\nT\n" + close},
		{"first of two sections", open + "1" + close + open + "2" + close, "T", open + "\nT\n" + close + open + "2" + close},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(UpdateSection([]byte(tt.doc), "x", tt.body))
			if got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
			if again := string(UpdateSection([]byte(got), "x", tt.body)); again != got {
				t.Errorf("not idempotent: second update gave\n%q", again)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{850, "850 ns"},
		{1234 * time.Nanosecond, "1.23 µs"},
		{1234 * time.Microsecond, "1.23 ms"},
		{12345 * time.Microsecond, "12.3 ms"},
		{123456 * time.Microsecond, "123 ms"},
		{2500 * time.Millisecond, "2.50 s"},
	}
	for _, tt := range tests {
		if got := formatDuration(tt.d); got != tt.want {
			t.Errorf("formatDuration(%v) = %q, want %q", int64(tt.d), got, tt.want)
		}
	}
}

func TestCommandString(t *testing.T) {
	tests := []struct {
		c    Command
		want string
	}{
		{Command{Argv: []string{"ss", "-tln"}}, "ss -tln"},
		{Command{Argv: []string{"sh", "-c", "exit 0"}}, "sh -c 'exit 0'"},
		{Command{Argv: []string{"echo", ""}}, "echo ''"},
		{Command{Argv: []string{"echo", `it's $HOME`}}, `echo "it's \$HOME"`},
		{Command{Argv: []string{"portkit"}, Env: []string{"LANG=C", "X=a b"}}, "LANG=C X='a b' portkit"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("%q.String() = %q, want %q", tt.c.Argv, got, tt.want)
		}
	}
}

func TestTailBuffer(t *testing.T) {
	var tb tailBuffer
	tb.Write([]byte(strings.Repeat("a", stderrTail-1)))
	tb.Write([]byte("bc"))
	if len(tb.b) != stderrTail || !strings.HasSuffix(string(tb.b), "abc") || tb.b[0] != 'a' {
		t.Errorf("after overflow: len %d, tail %q", len(tb.b), tb.b[len(tb.b)-3:])
	}
	tb.Write([]byte("x" + strings.Repeat("y", stderrTail)))
	if string(tb.b) != strings.Repeat("y", stderrTail) {
		t.Errorf("after large write: %q...", tb.b[:8])
	}
}

// needTools skips the test when a tool the real runs need is missing.
func needTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		testtool.Need(t, n)
	}
}

func TestRunSideBySide(t *testing.T) {
	needTools(t, "true", "sh")
	r, err := Run(context.Background(), Spec{
		Title: "tiny",
		Commands: []Command{
			{Name: "true", Argv: []string{"true"}},
			{Name: "sh", Argv: []string{"sh", "-c", "exit 0"}, Env: []string{"LC_ALL=C"}},
		},
		Runs:   3,
		Warmup: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range r.Stats {
		if s.Runs != 3 || len(s.Samples) != 3 {
			t.Errorf("%s: %d runs, %d samples, want 3", s.Command.Name, s.Runs, len(s.Samples))
		}
		if s.MinWall <= 0 || s.MinWall > s.MedianWall || s.MedianWall > s.P90Wall {
			t.Errorf("%s: wall times out of order: min %v, median %v, p90 %v", s.Command.Name, s.MinWall, s.MedianWall, s.P90Wall)
		}
	}
	md := r.Markdown()
	for _, want := range []string{
		"**tiny**", "UTC", "3 runs per command",
		"| command | command line | median | min | p90 | CPU (median) | peak RSS | ratio |",
		"| true | `true` |", "| sh | `LC_ALL=C sh -c 'exit 0'` |", "| 1.00x |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if got := strings.Count(md, "\n|"); got != 4 {
		t.Errorf("markdown has %d table lines, want 4:\n%s", got, md)
	}
}

func TestRunFailingCommand(t *testing.T) {
	needTools(t, "true", "sh")
	_, err := Run(context.Background(), Spec{
		Commands: []Command{
			{Name: "ok", Argv: []string{"true"}},
			{Name: "failing", Argv: []string{"sh", "-c", "echo boom >&2; exit 3"}},
		},
		Runs: 3,
	})
	if err == nil {
		t.Fatal("Run succeeded, want an error")
	}
	for _, want := range []string{"failing", "code 3", "boom"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestRunFalse(t *testing.T) {
	needTools(t, "false")
	spec := Spec{Commands: []Command{{Name: "false", Argv: []string{"false"}}}, Runs: 1}
	_, err := Run(context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), "false exited with code 1") {
		t.Fatalf("Run(false) error = %v, want one naming false and code 1", err)
	}
	spec.AllowExit = []int{1}
	if _, err := Run(context.Background(), spec); err != nil {
		t.Fatalf("Run(false) with exit 1 allowed: %v", err)
	}
}

func TestRunMissingProgram(t *testing.T) {
	_, err := Run(context.Background(), Spec{
		Commands: []Command{{Name: "ghost", Argv: []string{"/nonexistent/portkit-ghost"}}},
		Runs:     1,
	})
	if err == nil || !strings.Contains(err.Error(), "ghost") {
		t.Fatalf("error = %v, want one naming ghost", err)
	}
}

func TestRunTimeoutAndCancel(t *testing.T) {
	needTools(t, "sleep")
	sleep := []Command{{Name: "sleep", Argv: []string{"sleep", "10"}}}

	start := time.Now()
	_, err := Run(context.Background(), Spec{Commands: sleep, Runs: 1, Timeout: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "sleep timed out") {
		t.Errorf("timeout: error = %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = Run(ctx, Spec{Commands: sleep, Runs: 1})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancel: error = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("runs were not killed: took %v", d)
	}
}

func TestRunValidates(t *testing.T) {
	one := Command{Name: "a", Argv: []string{"true"}}
	for name, spec := range map[string]Spec{
		"no commands":    {Runs: 1},
		"no runs":        {Commands: []Command{one}},
		"negative warm":  {Commands: []Command{one}, Runs: 1, Warmup: -1},
		"no name":        {Commands: []Command{{Argv: []string{"true"}}}, Runs: 1},
		"duplicate name": {Commands: []Command{one, one}, Runs: 1},
		"no argv":        {Commands: []Command{{Name: "a"}}, Runs: 1},
	} {
		if _, err := Run(context.Background(), spec); err == nil {
			t.Errorf("%s: Run succeeded, want an error", name)
		}
	}
}

func TestRunRotatesOrder(t *testing.T) {
	needTools(t, "sh")
	dir := t.TempDir()
	logTo := func(name string) Command {
		return Command{Name: name, Argv: []string{"sh", "-c", "echo " + name + " >>order"}, Dir: dir}
	}
	if _, err := Run(context.Background(), Spec{
		Commands: []Command{logTo("a"), logTo("b"), logTo("c")}, Runs: 2, Warmup: 1,
	}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "order"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "a\nb\nc\nb\nc\na\nc\na\nb\n"; string(got) != want {
		t.Errorf("order = %q, want %q", got, want)
	}
}

// TestRecordFailure: a failed run replaces a section's figures with what
// failed, and leaves the rest of the file alone.
func TestRecordFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "B.md")
	doc := "# B\n\n<!-- bench:a -->\nold figures\n<!-- /bench:a -->\n\n<!-- bench:b -->\nkept\n<!-- /bench:b -->\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := RecordFailure(path, "a", "bench/x.sh", errors.New("the server did not start")); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	s := string(got)
	if strings.Contains(s, "old figures") || !strings.Contains(s, "**FAILED**") || !strings.Contains(s, "`bench/x.sh` stopped with: the server did not start") || !strings.Contains(s, "kept") {
		t.Errorf("after RecordFailure:\n%s", s)
	}
	if err := RecordFailure("", "a", "x", errors.New("e")); err != nil {
		t.Errorf("no file: %v", err)
	}
}

// WriteSection makes the file, replaces its section in place, keeps the
// rest and the file's mode, and leaves no temporary file behind.
func TestWriteSection(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "BENCH.md")
	if err := WriteSection(path, "a", "first"); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append([]byte("# head\n"), mustRead(t, path)...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteSection(path, "a", "second"); err != nil {
		t.Fatal(err)
	}
	got := string(mustRead(t, path))
	if want := "# head\n\n<!-- bench:a -->\nsecond\n<!-- /bench:a -->\n"; got != want {
		t.Errorf("file = %q, want %q", got, want)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 kept", st.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d files in the directory, want the one", len(entries))
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
