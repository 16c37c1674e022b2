package replay

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestWindowCheck(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	w := Window{MaxAge: 120 * time.Second, Skew: 30 * time.Second}
	for _, tc := range []struct {
		name string
		ts   time.Time
		want error
	}{
		{"now", now, nil},
		{"at max age", now.Add(-120 * time.Second), nil},
		{"past max age", now.Add(-121 * time.Second), ErrTooOld},
		{"at skew", now.Add(30 * time.Second), nil},
		{"past skew", now.Add(31 * time.Second), ErrFromFuture},
		{"epoch", time.Unix(0, 0), ErrTooOld},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := w.Check(tc.ts, now)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var te *TimeError
			if err != nil && !errors.As(err, &te) {
				t.Fatalf("%T", err)
			}
		})
	}
	// The zero value is fwknopd's: 120 s either way.
	if err := (Window{}).Check(now.Add(119*time.Second), now); err != nil {
		t.Fatal(err)
	}
	if err := (Window{}).Check(now.Add(-121*time.Second), now); !errors.Is(err, ErrTooOld) {
		t.Fatal(err)
	}
	if got := (Window{}).Span(); got != 240*time.Second {
		t.Fatal(got)
	}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func digest(i int) [32]byte { return sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i))) }

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("file does not end in a whole line: %q", b)
	}
	return strings.Fields(strings.ReplaceAll(string(b), " ", "_"))
}

func TestCacheRefusesReplayAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spa-digests")
	clk := &clock{time.Unix(1_800_000_000, 0)}
	c, err := Open(path, Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Add(digest(1)); err != nil {
		t.Fatal(err)
	}
	if err := c.Add(digest(1)); !errors.Is(err, ErrReplay) {
		t.Fatalf("second add: %v", err)
	}
	if got := lines(t, path); len(got) != 1 {
		t.Fatalf("file: %q", got)
	}
	c.Close()
	if err := c.Add(digest(2)); err == nil {
		t.Fatal("add after close")
	}

	clk.t = clk.t.Add(200 * time.Second) // within the 240 s span
	c, err = Open(path, Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Seen(digest(1)) {
		t.Fatal("forgotten after restart")
	}
	if err := c.Add(digest(1)); !errors.Is(err, ErrReplay) {
		t.Fatalf("after restart: %v", err)
	}
	if err := c.Add(digest(2)); err != nil {
		t.Fatal(err)
	}
}

func TestCacheForgetsExpired(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spa-digests")
	clk := &clock{time.Unix(1_800_000_000, 0)}
	w := Window{MaxAge: 60 * time.Second, Skew: 10 * time.Second}
	c, err := Open(path, Options{Window: w, Now: clk.now, CompactAfter: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Add(digest(1))
	clk.t = clk.t.Add(71 * time.Second) // digest 1 is now past the 70 s span
	c.Add(digest(2))
	if !c.Seen(digest(1)) || c.Len() != 2 {
		t.Fatal("dropped before a compaction")
	}
	c.Add(digest(3)) // the third append: compaction
	if c.Seen(digest(1)) || !c.Seen(digest(2)) || !c.Seen(digest(3)) || c.Len() != 2 {
		t.Fatalf("after compaction: len %d", c.Len())
	}
	if got := lines(t, path); len(got) != 2 {
		t.Fatalf("file after compaction: %q", got)
	}
	// Appends go to the new file.
	c.Add(digest(4))
	if got := lines(t, path); len(got) != 3 {
		t.Fatalf("file after append: %q", got)
	}
	// Memory stays bounded: many digests over a long time hold at most
	// the span's worth plus CompactAfter.
	for i := 10; i < 300; i++ {
		clk.t = clk.t.Add(time.Second)
		if err := c.Add(digest(i)); err != nil {
			t.Fatal(err)
		}
		if n := c.Len(); n > 71+3 {
			t.Fatalf("%d digests held", n)
		}
	}
	// Reopening drops what expired since.
	c.Close()
	clk.t = clk.t.Add(time.Hour)
	c2, err := Open(path, Options{Window: w, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if c2.Len() != 0 || len(lines(t, path)) != 0 {
		t.Fatalf("after an hour: %d held", c2.Len())
	}
}

func TestCacheFile(t *testing.T) {
	d := digest(7)
	good := string(appendLine(nil, d, 1_800_000_000))
	for _, tc := range []struct {
		name    string
		content string
		line    int // of the error; 0: no error
		held    int
	}{
		{"empty", "", 0, 0},
		{"one", good, 0, 1},
		{"torn last line", good + good[:30], 0, 1},
		{"bad line", good + "garbage\n" + good, 2, 0},
		{"bad hex", strings.Replace(good, good[11:13], "zz", 1), 1, 0},
		{"long line", strings.Repeat("1", 5000) + "\n", 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "spa-digests")
			os.WriteFile(path, []byte(tc.content), 0o600)
			clk := &clock{time.Unix(1_800_000_010, 0)}
			c, err := Open(path, Options{Now: clk.now})
			if tc.line > 0 {
				var fe *FileError
				if !errors.As(err, &fe) || fe.Line != tc.line || !errors.Is(err, ErrCorrupt) {
					t.Fatalf("got %v, want an error at line %d", err, tc.line)
				}
				if !strings.Contains(err.Error(), path+":") {
					t.Fatalf("error does not name the file: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.Len() != tc.held {
				t.Fatalf("%d held", c.Len())
			}
			// Rewritten whole on open: the torn line is gone.
			if got := lines(t, path); len(got) != tc.held {
				t.Fatalf("file: %q", got)
			}
		})
	}
}

func TestOpenUnwritableDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes anywhere")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	if _, err := Open(filepath.Join(dir, "d"), Options{}); err == nil {
		t.Fatal("opened in a read-only directory")
	}
}

// BenchmarkLookup1M: lookups in a cache of 1,000,000 digests, half of
// them hits, and the memory each digest takes (B/entry).
func BenchmarkLookup1M(b *testing.B) {
	const n = 1_000_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := &Cache{seen: make(map[[32]byte]uint32)}
	for i := range n {
		c.seen[digest(i)] = uint32(i)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perEntry := float64(after.HeapAlloc-before.HeapAlloc) / n
	probes := make([][32]byte, 1024)
	for i := range probes {
		probes[i] = digest(i * 2000) // every other one beyond n: a miss
	}
	b.ReportAllocs()
	b.ResetTimer()
	hits := 0
	for i := 0; b.Loop(); i++ {
		if c.Seen(probes[i%len(probes)]) {
			hits++
		}
	}
	if hits == 0 {
		b.Fatal("no hits")
	}
	b.ReportMetric(perEntry, "B/entry") // after the loop: ResetTimer drops reported metrics
	runtime.KeepAlive(c)
}

// TestCacheReopensAfterFailedRewrite: when a rewrite renamed the file but
// could not reopen it, the next Add reopens it rather than failing, or
// writing to the replaced file, for ever.
func TestCacheReopensAfterFailedRewrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spa-digests")
	c, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.mu.Lock()
	c.f.Close()
	c.f = nil // as compactLocked leaves it when the reopen fails
	c.mu.Unlock()
	if err := c.Add(digest(1)); err != nil {
		t.Fatal(err)
	}
	if got := lines(t, path); len(got) != 1 {
		t.Fatalf("file: %q", got)
	}
}
