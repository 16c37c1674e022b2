package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// tinyTmpfs mounts a tmpfs of size bytes on a new directory; it needs
// root, and skips without.
func tinyTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, 0) })
	return dir
}

// TestOutFileWholeLines fills a small file system through outFile: the
// file ends with a whole line, holds exactly what Write reported written,
// and the error is an ioError (exit 74).
func TestOutFileWholeLines(t *testing.T) {
	dir := tinyTmpfs(t, "64k")
	out, _, err := openScanOut(filepath.Join(dir, "out.jsonl"), "jsonl", false)
	if err != nil {
		t.Fatal(err)
	}
	defer out.f.Close()
	// 7,000-byte writes of 70-byte lines: the disk fills part-way through one.
	line := `{"ip":"127.0.0.1","port":1,"state":"closed","reason":"conn-refused"}` + "\n"
	chunk := []byte(strings.Repeat(line[:len(line)-1]+"\n", 100))
	written := 0
	var werr error
	for range 100 {
		n, err := out.Write(chunk)
		written += n
		if err != nil {
			werr = err
			break
		}
	}
	if werr == nil {
		t.Fatal("64k tmpfs never filled")
	}
	if ExitCode(werr) != ExitIO {
		t.Errorf("ExitCode(%v) = %d, want %d", werr, ExitCode(werr), ExitIO)
	}
	data, err := os.ReadFile(out.f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != written || len(data) == 0 || data[len(data)-1] != '\n' {
		t.Errorf("file holds %d bytes (last %q), Write reported %d: want whole lines, as reported", len(data), data[max(0, len(data)-1):], written)
	}
}

// TestScanDiskFull: a jsonl scan into a full disk stops with exit 74 and
// saves the resume file elsewhere; once there is room, --resume completes
// the output: every port once, every line whole.
func TestScanDiskFull(t *testing.T) {
	dir := tinyTmpfs(t, "16k")
	out := filepath.Join(dir, "out.jsonl")
	resume := filepath.Join(t.TempDir(), "full.resume")
	run := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		s := Streams{In: strings.NewReader(""), Out: &stdout, Err: &stderr, Getenv: func(string) string { return "" },
			LookupEnv: func(string) (string, bool) { return "", false }}
		code := Main(context.Background(), args, s)
		return code, stderr.String()
	}
	const ports = 1000 // ~90 bytes a line: 90k of output for 16k of disk
	code, stderr := run("scan", "127.0.0.1", "-p", fmt.Sprintf("1-%d", ports), "--connect", "-o", "jsonl", "--seed", "5",
		"--no-progress", "--out", out, "--resume-file", resume)
	if code != ExitIO || !strings.Contains(stderr, "--out "+out+": no space left on device") ||
		!strings.Contains(stderr, "continue with: portkit scan --resume "+resume) {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if data, _ := os.ReadFile(out); len(data) > 0 && data[len(data)-1] != '\n' {
		t.Errorf("%s ends in part of a line: %q", out, data[max(0, len(data)-40):])
	}
	// Room again: the rest, into the same file.
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size=1m"); err != nil {
		t.Fatalf("remount: %v", err)
	}
	for range 10 { // each run goes on until the disk fills or the scan ends
		code, stderr = run("scan", "--resume", resume, "--out", out) // confirmed: not beside the resume file
		if code != ExitIO {
			break
		}
	}
	if code != ExitOK && code != ExitNegative { // found open ports, or none
		t.Fatalf("resume: exit %d, stderr:\n%s", code, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	re := regexp.MustCompile(`^\{"ip":"127\.0\.0\.1","port":(\d+),.*\}$`)
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if strings.HasPrefix(line, `{"type":`) {
			continue // a run's "scan" or "summary" line
		}
		m := re.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not a whole result line: %q", line)
		}
		seen[m[1]]++
	}
	if len(seen) != ports {
		t.Errorf("%d ports in the output, want %d", len(seen), ports)
	}
	for p, n := range seen {
		if n != 1 {
			t.Errorf("port %s written %d times", p, n)
		}
	}
}
