package cli

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestNoWorkAtInit: no portkit package builds anything at package init
// (regular expressions, maps, tables): every command pays for every
// linked package's initialiser before main, whether it uses the package
// or not (issue 11). The test binary links every package the command line
// does; it is run again with GODEBUG=inittrace=1, which has the runtime
// report each initialiser's allocations. A few small allocations (errors.New
// sentinels) are allowed; a compiled regexp or a map literal is not.
func TestNoWorkAtInit(t *testing.T) {
	if os.Getenv("PORTKIT_INITTRACE_CHILD") != "" {
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Skip("cannot find the test binary:", err)
	}
	cmd := exec.Command(self, "-test.run=^TestNoWorkAtInit$")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1", "PORTKIT_INITTRACE_CHILD=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd, err, stderr.Bytes())
	}
	const maxBytes = 1024
	seen := 0
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		// init github.com/portkit/portkit/service @20 ms, 0.20 ms clock, 34992 bytes, 252 allocs
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[0] != "init" || !strings.HasPrefix(f[1], "github.com/portkit/portkit/") {
			continue
		}
		seen++
		n, err := strconv.Atoi(f[7])
		if err != nil || f[8] != "bytes," {
			t.Fatalf("cannot read the inittrace line %q", sc.Text())
		}
		if n > maxBytes {
			t.Errorf("package %s allocates %d bytes at init (at most %d): build it on first use (sync.OnceValue) or make it static", f[1], n, maxBytes)
		}
	}
	if seen == 0 {
		t.Fatalf("no portkit package in the init trace:\n%s", stderr.Bytes())
	}
}
