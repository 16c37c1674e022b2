package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portkit/portkit/guard"
)

// guardFixture writes a capture of a SYN scan of ports 1-50 of
// 198.18.0.2 from 198.18.0.1, each SYN reset.
func guardFixture(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "scan.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := guard.NewPcapWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	src, dst := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	for port := uint16(1); port <= 50; port++ {
		syn := guard.Packet{Flow: guard.Flow{Src: src, Dst: dst, SrcPort: 40000, DstPort: port, Proto: guard.TCP}, Flags: guard.SYN, TTL: 50}
		rst := guard.Packet{Flow: syn.Flow.Reverse(), Flags: guard.RST | guard.ACK, TTL: 64}
		if err := w.Write(at, guard.Marshal(&syn), false); err != nil {
			t.Fatal(err)
		}
		if err := w.Write(at.Add(time.Millisecond), guard.Marshal(&rst), true); err != nil {
			t.Fatal(err)
		}
		at = at.Add(10 * time.Millisecond)
	}
	return path
}

// TestGuardReplay: --replay writes the attempts and one scan's start and
// end as JSON Lines, to stdout or appended to --out.
func TestGuardReplay(t *testing.T) {
	pcap := guardFixture(t)
	var out, errb bytes.Buffer
	s := Streams{Out: &out, Err: &errb, Getenv: func(string) string { return "" }}
	if code := Main(context.Background(), []string{"guard", "--replay", pcap}, s); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var scans []map[string]any
	attempts := 0
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%v: %q", err, line)
		}
		switch m["event"] {
		case "attempt":
			attempts++
			if m["answer"] != "rst" || m["flags"] != "SYN" || m["src"] != "198.18.0.1" {
				t.Errorf("attempt %v", m)
			}
		case "scan":
			scans = append(scans, m)
		}
	}
	// The burst of 20, and 2 more over the scan's half second at 5 a
	// second; the rest rate-limited.
	if attempts != 22 {
		t.Errorf("%d attempts", attempts)
	}
	if len(scans) != 2 || scans[0]["phase"] != "start" || scans[1]["phase"] != "end" {
		t.Fatalf("scans %v", scans)
	}
	end := scans[1]
	if end["type"] != "SYN" || end["tcp_ports"] != "1-50" || end["port_count"] != 50.0 || end["probes"] != 50.0 {
		t.Errorf("end %v", end)
	}

	// --out appends whole lines: two runs, twice the lines.
	file := filepath.Join(t.TempDir(), "guard.jsonl")
	for range 2 {
		out.Reset()
		if code := Main(context.Background(), []string{"guard", "--replay", pcap, "--out", file}, s); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		if out.Len() != 0 {
			t.Errorf("stdout with --out: %q", out.String())
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for sc := bufio.NewScanner(bytes.NewReader(b)); sc.Scan(); n++ {
		if !json.Valid(sc.Bytes()) {
			t.Errorf("line %d not JSON: %q", n, sc.Text())
		}
	}
	if n != 2*24 {
		t.Errorf("%d lines in --out after two runs, want 48", n)
	}
}

// TestGuardReplayDiskFull: an --out that cannot be written is exit 74.
func TestGuardReplayDiskFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	var out, errb bytes.Buffer
	s := Streams{Out: &out, Err: &errb, Getenv: func(string) string { return "" }}
	if code := Main(context.Background(), []string{"guard", "--replay", guardFixture(t), "--out", "/dev/full"}, s); code != ExitIO {
		t.Fatalf("exit %d, want %d: %s", code, ExitIO, errb.String())
	}
	if !strings.Contains(errb.String(), "no space left on device") {
		t.Errorf("stderr %q", errb.String())
	}
}

// TestGuardSyslog: --syslog sends each event, one datagram a line, to
// --syslog-socket.
func TestGuardSyslog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Skip("no unix datagram sockets here:", err)
	}
	defer ln.Close()
	// The socket is read as guard writes: its queue holds a few lines.
	// Once guard is done, every line it wrote is queued: the reader
	// drains the queue and stops.
	done := make(chan struct{})
	stop := sync.OnceFunc(func() { close(done) })
	defer stop()
	got := make(chan []string, 1)
	go func() {
		var lines []string
		buf := make([]byte, 4096)
		for {
			ln.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			n, err := ln.Read(buf)
			if err == nil {
				lines = append(lines, string(buf[:n]))
				continue
			}
			select {
			case <-done:
				got <- lines
				return
			default:
			}
		}
	}()
	var out, errb bytes.Buffer
	s := Streams{Out: &out, Err: &errb, Getenv: func(string) string { return "" }}
	if code := Main(context.Background(), []string{"guard", "--replay", guardFixture(t), "--syslog", "--syslog-socket", path}, s); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	stop()
	lines := <-got
	if want := strings.Count(strings.TrimSpace(out.String()), "\n") + 1; len(lines) != want {
		t.Fatalf("%d datagrams, want one for each of stdout's %d lines", len(lines), want)
	}
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "<28>") || !strings.Contains(last, "198.18.0.1 to 198.18.0.2 ports tcp 1-50 (50), SYN, TTL 50") {
		t.Errorf("last line %q", last)
	}

	// A socket nobody listens on: exit 1, named.
	errb.Reset()
	if code := Main(context.Background(), []string{"guard", "--replay", guardFixture(t), "--syslog", "--syslog-socket", path + ".none"}, s); code != ExitNegative {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "guard: --syslog: "+path+".none: ") {
		t.Errorf("stderr %q", errb.String())
	}
}
