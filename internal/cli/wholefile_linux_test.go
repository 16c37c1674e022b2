//go:build linux

package cli

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestWriteWhole: every file portkit writes whole (report --out, scan
// --save, the resume file) goes through writeWhole; a FIFO is written to
// as it is, a link followed or replaced as asked, and a failed write
// leaves the old file and no temporary file.
func TestWriteWhole(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	isLinkTo := func(name, target string) bool {
		got, err := os.Readlink(filepath.Join(dir, name))
		return err == nil && got == target
	}
	os.WriteFile(filepath.Join(dir, "real"), []byte("old"), 0o644)
	os.Symlink("real", filepath.Join(dir, "link"))

	if err := writeWhole(filepath.Join(dir, "link"), 0o666, true, write("followed")); err != nil {
		t.Fatal(err)
	}
	if !isLinkTo("link", "real") || read("real") != "followed" {
		t.Errorf("followLinks: link %v, real %q; want the link kept and real replaced", isLinkTo("link", "real"), read("real"))
	}
	if err := writeWhole(filepath.Join(dir, "link"), 0o600, false, write("replaced")); err != nil {
		t.Fatal(err)
	}
	if isLinkTo("link", "real") || read("link") != "replaced" || read("real") != "followed" {
		t.Errorf("without followLinks: link %v, link %q, real %q; want the link replaced by a file", isLinkTo("link", "real"), read("link"), read("real"))
	}

	boom := errors.New("disk full")
	err := writeWhole(filepath.Join(dir, "real"), 0o666, true, func(w io.Writer) error {
		io.WriteString(w, "half")
		return boom
	})
	if !errors.Is(err, boom) || read("real") != "followed" {
		t.Errorf("failed write: %v, file %q; want the error and the old file", err, read("real"))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("left in the directory: %v", entries)
	}

	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		b, _ := os.ReadFile(fifo)
		got <- string(b)
	}()
	if err := writeWhole(fifo, 0o666, true, write("through")); err != nil {
		t.Fatalf("FIFO: %v", err)
	}
	if s := <-got; s != "through" {
		t.Errorf("FIFO's reader got %q", s)
	}
	if st, err := os.Lstat(fifo); err != nil || st.Mode()&fs.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v %v", st.Mode(), err)
	}
}

// TestScanWritesDevicesInPlace: `scan -oX /dev/null` (or --save to any
// device) writes to the device, and `--out /dev/null` is no write error:
// a report renamed over the name would, as root, put a regular file in
// the place of /dev/null. The device here is a null device made in the
// test's directory, so a failure harms nothing.
func TestScanWritesDevicesInPlace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mknod of a character device")
	}
	dir := t.TempDir()
	null, null2 := filepath.Join(dir, "null"), filepath.Join(dir, "null2")
	for _, name := range []string{null, null2} {
		if err := syscall.Mknod(name, syscall.S_IFCHR|0o666, int(1<<8|3)); err != nil { // 1,3: /dev/null
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	var out, errb bytes.Buffer
	code := Main(t.Context(), []string{"scan", "--connect", "--no-progress", "-p", port, "-o", "csv",
		"--out", null, "--save", "xml=" + null2, "--resume-file", filepath.Join(dir, "resume"), "127.0.0.1"},
		Streams{In: strings.NewReader(""), Out: &out, Err: &errb, Getenv: func(string) string { return "" },
			LookupEnv: func(string) (string, bool) { return "", false }})
	if code != ExitOK {
		t.Errorf("exit %d, want 0; stderr:\n%s", code, errb.String())
	}
	for _, name := range []string{null, null2} {
		if st, err := os.Lstat(name); err != nil || st.Mode()&fs.ModeCharDevice == 0 {
			t.Fatalf("%s was replaced: %v %v", name, st.Mode(), err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("left in the directory: %v", entries)
	}
}
