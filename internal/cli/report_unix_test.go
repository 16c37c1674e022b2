//go:build unix

package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestReportOutFile: --out replaces a regular file whole, follows a
// symbolic link to the file it names, and writes into a FIFO as it is
// (renaming over it would leave a regular file in its place).
func TestReportOutFile(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	line := `{"ip":"198.18.0.2","port":22,"protocol":"tcp","state":"open"}` + "\n"
	if err := os.WriteFile(in, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(out string) (int, string) {
		var stdout, stderr bytes.Buffer
		s := Streams{In: strings.NewReader(""), Out: &stdout, Err: &stderr, Getenv: func(string) string { return "" },
			LookupEnv: func(string) (string, bool) { return "", false }}
		return Main(context.Background(), []string{"report", in, "-o", "csv", "--out", out}, s), stderr.String()
	}

	target := filepath.Join(dir, "target.csv")
	os.WriteFile(target, []byte("old\n"), 0o644)
	link := filepath.Join(dir, "link.csv")
	if err := os.Symlink("target.csv", link); err != nil {
		t.Fatal(err)
	}
	if code, stderr := run(link); code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("%s is no longer a symbolic link: %v", link, err)
	}
	if data, _ := os.ReadFile(target); !strings.Contains(string(data), "198.18.0.2,22,tcp,open") {
		t.Errorf("%s holds %q", target, data)
	}

	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		f, err := os.Open(fifo) // blocks until the report opens it to write
		if err != nil {
			got <- err.Error()
			return
		}
		defer f.Close()
		data, _ := io.ReadAll(f)
		got <- string(data)
	}()
	if code, stderr := run(fifo); code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if st, err := os.Lstat(fifo); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		// The reader waits on the FIFO that was replaced: it is left.
		t.Fatalf("%s is no longer a FIFO: %v", fifo, err)
	}
	if data := <-got; !strings.Contains(data, "198.18.0.2,22,tcp,open") {
		t.Errorf("read from the FIFO: %q", data)
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, ".*")); len(matches) > 0 {
		t.Errorf("left behind: %v", matches)
	}
}
