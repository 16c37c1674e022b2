package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portkit/portkit/scan/report"
)

func TestNmapArgs(t *testing.T) {
	u := "--" + unsupportedFlag + "="
	for _, c := range []struct{ in, want string }{
		{"scan -sS -p- 10.0.0.1", "scan --syn -p- 10.0.0.1"},
		{"scan -sT -sU -Pn -n -T4 x", "scan --connect --udp -T4 x"},
		{"scan -sSU x", "scan --syn --udp x"},
		{"scan -oX a.xml -oG a.gnmap -oN a.txt x", "scan --save=xml=a.xml --save=grep=a.gnmap --save=table=a.txt x"},
		{"scan -oA out/b x", "scan --save=xml=out/b.xml --save=grep=out/b.gnmap --save=table=out/b.nmap x"},
		{"scan -oX - x", "scan --output=xml x"},
		{"scan -iL t.txt -F", "scan --input-list=t.txt --top 100"},
		{"scan --top-ports 10 --max-retries=2 x", "scan --top=10 --retries=2 x"},
		{"scan --initial-rtt-timeout 2 --max-rtt-timeout 300ms x", "scan --initial-rtt=2 --max-rtt=300ms x"},
		{"scan --initial-rtt 2 x", "scan --initial-rtt=2 x"}, // portkit's own flag wants its unit
		{"scan --excludefile e.txt x", "scan --exclude-file=e.txt x"},
		// Values of flags that take one stay as they are.
		{"scan -p -sS x", "scan -p -sS x"},
		{"scan --exclude -sS x", "scan --exclude=-sS x"},
		{"scan --out -oX x", "scan --out=-oX x"},
		{"scan -4p 22 x", "scan -4p 22 x"},
		{"scan -p22 -sT x", "scan -p22 --connect x"},
		{"scan -vv -6 x", "scan -vv -6 x"},
		// After --, nothing is an option.
		{"scan -sT -- -sS -oX", "scan --connect -- -sS -oX"},
		// Root's flags before the command.
		{"--json scan -sT x", "--json scan --connect x"},
		// What portkit lacks.
		{"scan -sV x", "scan --service x"},
		{"scan -sSV x", "scan --syn --service x"},
		{"scan -O -A -PS22 x", "scan " + u + "-O " + u + "-A " + u + "-PS22 x"},
		{"scan --script vuln x", "scan " + u + "--script vuln x"},
		{"scan --script=vuln x", "scan " + u + "--script x"},
		// A missing value is pflag's to say, of portkit's flag.
		{"scan x -oX", "scan x --save"},
		{"scan x -iL", "scan x --input-list"},
		// Other commands are left alone.
		{"check -sS x", "check -sS x"},
		{"lookup scan", "lookup scan"},
	} {
		root := newRoot(&env{Streams: Streams{Getenv: func(string) string { return "" }}})
		got := strings.Join(nmapArgs(root, strings.Fields(c.in)), " ")
		if got != c.want {
			t.Errorf("%s\n got %s\nwant %s", c.in, got, c.want)
		}
	}
}

// A resumed scan does not replace a --save file that holds the first
// part; a new file is fine, and nothing is left behind.
func TestOpenSavedResumed(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "old.xml")
	if err := os.WriteFile(old, []byte("<nmaprun>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := openSaved([]string{"xml=" + old}, true, report.Options{}); err == nil || !strings.Contains(err.Error(), "give --save a new file") {
		t.Fatalf("resumed into %s: %v", old, err)
	}
	files, err := openSaved([]string{"xml=" + old}, false, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	files.discard()
	got, _ := os.ReadFile(old)
	entries, _ := os.ReadDir(dir)
	if string(got) != "<nmaprun>" || len(entries) != 1 {
		t.Errorf("after a discarded save: %q, %d files", got, len(entries))
	}
}
