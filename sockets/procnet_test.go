package sockets

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func parseFixture(t *testing.T, path string, req request) ([]Entry, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return parseProcNet(f, req, binary.LittleEndian, nil)
}

func TestParseProcNet(t *testing.T) {
	ap := netip.MustParseAddrPort
	tests := []struct {
		file string
		req  request
		want []Socket
	}{
		{"tcp", request{TCP, IPv4, AllStates, 0, 0}, []Socket{
			{TCP, IPv4, ap("0.0.0.0:22"), ap("0.0.0.0:0"), Listen, 0, 20001, 0, 0},
			{TCP, IPv4, ap("127.0.0.1:5432"), ap("0.0.0.0:0"), Listen, 105, 20002, 0, 0},
			{TCP, IPv4, ap("0.0.0.0:8080"), ap("0.0.0.0:0"), Listen, 1000, 20004, 3, 0},
			{TCP, IPv4, ap("10.0.0.5:22"), ap("10.0.0.9:51234"), Established, 0, 20003, 0, 0x24},
			{TCP, IPv4, ap("127.0.0.1:5432"), ap("127.0.0.1:40000"), TimeWait, 0, 0, 0, 0},
		}},
		{"tcp", request{TCP, IPv4, Listen, 5432, 5432}, []Socket{
			{TCP, IPv4, ap("127.0.0.1:5432"), ap("0.0.0.0:0"), Listen, 105, 20002, 0, 0},
		}},
		{"tcp", request{TCP, IPv4, AllStates, 22, 5432}, []Socket{ // a range: 8080 left out
			{TCP, IPv4, ap("0.0.0.0:22"), ap("0.0.0.0:0"), Listen, 0, 20001, 0, 0},
			{TCP, IPv4, ap("127.0.0.1:5432"), ap("0.0.0.0:0"), Listen, 105, 20002, 0, 0},
			{TCP, IPv4, ap("10.0.0.5:22"), ap("10.0.0.9:51234"), Established, 0, 20003, 0, 0x24},
			{TCP, IPv4, ap("127.0.0.1:5432"), ap("127.0.0.1:40000"), TimeWait, 0, 0, 0, 0},
		}},
		{"tcp6", request{TCP, IPv6, AllStates, 0, 0}, []Socket{
			{TCP, IPv6, ap("[::]:80"), ap("[::]:0"), Listen, 0, 20005, 0, 0},
			{TCP, IPv6, ap("[::1]:631"), ap("[::]:0"), Listen, 0, 20007, 0, 0},
			{TCP, IPv6, ap("[::ffff:127.0.0.1]:80"), ap("[::ffff:127.0.0.1]:50000"), Established, 33, 20006, 0, 0},
			{TCP, IPv6, ap("[2001:db8::10]:443"), ap("[2001:db8:1::77]:61000"), CloseWait, 33, 20011, 0x1c, 0},
		}},
		{"tcp6", request{TCP, IPv6, Established | CloseWait, 443, 443}, []Socket{
			{TCP, IPv6, ap("[2001:db8::10]:443"), ap("[2001:db8:1::77]:61000"), CloseWait, 33, 20011, 0x1c, 0},
		}},
		{"udp", request{UDP, IPv4, udpStates, 0, 0}, []Socket{
			{UDP, IPv4, ap("0.0.0.0:68"), ap("0.0.0.0:0"), Close, 0, 20008, 0, 0},
			{UDP, IPv4, ap("127.0.0.53:53"), ap("0.0.0.0:0"), Close, 101, 20009, 0, 0},
			{UDP, IPv4, ap("10.0.0.5:41000"), ap("10.0.0.1:53"), Established, 101, 20012, 0, 0},
		}},
		{"udp", request{UDP, IPv4, Close, 0, 0}, []Socket{
			{UDP, IPv4, ap("0.0.0.0:68"), ap("0.0.0.0:0"), Close, 0, 20008, 0, 0},
			{UDP, IPv4, ap("127.0.0.53:53"), ap("0.0.0.0:0"), Close, 101, 20009, 0, 0},
		}},
		{"udp6", request{UDP, IPv6, udpStates, 0, 0}, []Socket{
			{UDP, IPv6, ap("[::]:5353"), ap("[::]:0"), Close, 107, 20010, 0, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%v/%d-%d", tt.file, tt.req.states, tt.req.port, tt.req.last), func(t *testing.T) {
			got, err := parseFixture(t, filepath.Join("testdata/proc/net", tt.file), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d sockets, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, e := range got {
				if e.Socket != tt.want[i] {
					t.Errorf("socket %d:\n got %+v\nwant %+v", i, e.Socket, tt.want[i])
				}
			}
		})
	}
}

// TestParseProcNetBigEndian reads the same table as a big-endian host
// writes it: each address word unswapped.
func TestParseProcNetBigEndian(t *testing.T) {
	const table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 7F000001:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 41234 1 0 100 0 0 10 0\n"
	got, err := parseProcNet(strings.NewReader(table), request{TCP, IPv4, Listen, 0, 0}, binary.BigEndian, nil)
	if err != nil || len(got) != 1 || got[0].Local != netip.MustParseAddrPort("127.0.0.1:8080") {
		t.Fatalf("got %+v, %v; want 127.0.0.1:8080", got, err)
	}
}

func TestParseProcNetMalformed(t *testing.T) {
	tests := []struct {
		file string
		line int
		what string
	}{
		{"no-header.tcp", 1, "header"},
		{"short-line.tcp", 3, "fields"},
		{"bad-address.tcp", 4, "local address"},
		{"bad-inode.tcp", 2, "inode"},
		{"bad-port.tcp", 2, "port"},
		{"no-colon-slot.tcp", 2, "slot"},
		{"big-uid.tcp", 2, "uid"},
		{"ipv4-in.tcp6", 2, "local address"},
	}
	for _, tt := range tests {
		req := request{TCP, IPv4, AllStates, 0, 0}
		if strings.HasSuffix(tt.file, "6") {
			req.family = IPv6
		}
		_, err := parseFixture(t, filepath.Join("testdata/procnet", tt.file), req)
		if err == nil {
			t.Errorf("%s: no error", tt.file)
			continue
		}
		if prefix := fmt.Sprintf("line %d: ", tt.line); !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.what) {
			t.Errorf("%s: error %q, want it to start %q and mention %q", tt.file, err, prefix, tt.what)
		}
	}
}

func TestParseProcNetEdges(t *testing.T) {
	const header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	tests := []struct {
		name, text string
		n          int
		err        bool
	}{
		{"empty", "", 0, true},
		{"header only", header, 0, false},
		{"no final newline", header + "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1", 1, false},
		{"unknown state skipped", header + "   0: 0100007F:1F90 00000000:0000 0E 00000000:00000000 00:00000000 00000000 0 0 1\n", 0, false},
		{"lower-case hex", header + "   0: 0100007f:1f90 00000000:0000 0a 00000000:00000000 00:00000000 00000000 0 0 1\n", 1, false},
		{"too long", header + strings.Repeat("x", 5000) + "\n", 0, true},
	}
	for _, tt := range tests {
		got, err := parseProcNet(strings.NewReader(tt.text), request{TCP, IPv4, AllStates, 0, 0}, binary.LittleEndian, nil)
		if (err != nil) != tt.err || len(got) != tt.n {
			t.Errorf("%s: %d sockets, error %v; want %d, error %v", tt.name, len(got), err, tt.n, tt.err)
		}
	}
}

// formatProcNet writes entries back in the kernel's format, for the fuzz
// test's round trip.
func formatProcNet(entries []Entry) []byte {
	var b bytes.Buffer
	b.WriteString("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n")
	addr := func(ap netip.AddrPort) string {
		var s strings.Builder
		a := ap.Addr().AsSlice()
		for i := 0; i < len(a); i += 4 {
			fmt.Fprintf(&s, "%08X", binary.LittleEndian.Uint32(a[i:]))
		}
		return fmt.Sprintf("%s:%04X", s.String(), ap.Port())
	}
	for i, e := range entries {
		st := 0
		for st < 16 && State(1)<<st != e.State {
			st++
		}
		fmt.Fprintf(&b, "%4d: %s %s %02X %08X:%08X 00:00000000 00000000 %5d 0 %d 1 0\n",
			i, addr(e.Local), addr(e.Remote), st, e.TxQueue, e.RxQueue, e.UID, e.Inode)
	}
	return b.Bytes()
}

func FuzzParseProcNet(f *testing.F) {
	for _, dir := range []string{"testdata/proc/net", "testdata/procnet"} {
		files, _ := os.ReadDir(dir)
		for _, file := range files {
			b, err := os.ReadFile(filepath.Join(dir, file.Name()))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b, strings.HasSuffix(file.Name(), "6"))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		req := request{TCP, IPv4, AllStates, 0, 0}
		if v6 {
			req.family = IPv6
		}
		got, err := parseProcNet(bytes.NewReader(b), req, binary.LittleEndian, nil)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Fatalf("error %q does not name the line", err)
			}
			return
		}
		for _, e := range got {
			if e.Local.Addr().Is4() != !v6 || e.Remote.Addr().Is4() != !v6 {
				t.Fatalf("family %v with addresses %v %v", e.Family, e.Local, e.Remote)
			}
			if e.State == 0 || e.State&(e.State-1) != 0 {
				t.Fatalf("state %v is not one state", e.State)
			}
		}
		again, err := parseProcNet(bytes.NewReader(formatProcNet(got)), req, binary.LittleEndian, nil)
		if err != nil {
			t.Fatalf("reparse: %v", err)
		}
		if len(again) != len(got) {
			t.Fatalf("reparse: %d sockets, want %d", len(again), len(got))
		}
		for i := range got {
			if again[i].Socket != got[i].Socket {
				t.Fatalf("reparse: %+v, want %+v", again[i].Socket, got[i].Socket)
			}
		}
	})
}
