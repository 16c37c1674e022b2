package portspec

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/portkit/portkit/registry"
)

var (
	tcpUDP  = PortOptions{Protos: []registry.Proto{registry.TCP, registry.UDP}}
	udpOnly = PortOptions{Protos: []registry.Proto{registry.UDP}}
)

func TestParsePorts(t *testing.T) {
	cases := []struct {
		spec string
		opts PortOptions
		want string // the list's String
	}{
		{"22,80,443", PortOptions{}, "T:22,80,443"},
		{"443,22,80,22", PortOptions{}, "T:22,80,443"},
		{" 22 , 80 ", PortOptions{}, "T:22,80"},
		{"1-1024", PortOptions{}, "T:1-1024"},
		{"1-5,3-8,10", PortOptions{}, "T:1-8,10"},
		{"-", PortOptions{}, "T:1-65535"},
		{"-1024", PortOptions{}, "T:1-1024"},
		{"60000-", PortOptions{}, "T:60000-65535"},
		{"0", PortOptions{}, "T:0"},
		{"0-", PortOptions{}, "T:0-65535"},
		{"0-3", PortOptions{}, "T:0-3"},
		{"65535", PortOptions{}, "T:65535"},
		{"T:80,U:53", PortOptions{}, "T:80,U:53"},
		{"T:1-100,U:53,161", PortOptions{}, "T:1-100,U:53,161"},
		{"80,U:53,T:443", PortOptions{}, "T:80,443,U:53"},
		{"t:22,u:53", PortOptions{}, "T:22,U:53"},
		{"T:,80", PortOptions{}, "T:80"},
		{"U: 53", PortOptions{}, "U:53"},
		{"53,161", udpOnly, "U:53,161"},
		{"53,T:22", udpOnly, "T:22,U:53"},
		{"53", tcpUDP, "T:53,U:53"},
		{"ssh,https", PortOptions{}, "T:22,443"},
		{"SSH", PortOptions{}, "T:22"},
		{"U:domain", PortOptions{}, "U:53"},
		{"ssh", tcpUDP, "T:22,U:22"},
		{"xmpp-client", tcpUDP, "T:5222"}, // IANA has it for TCP alone
		{"http-alt", PortOptions{}, "T:591,8008,8080"},
		{"x11", PortOptions{}, "T:6000-6063"},
		{"http,80,www", PortOptions{}, "T:80"},
	}
	for _, c := range cases {
		got, err := ParsePorts(c.spec, c.opts)
		if err != nil {
			t.Errorf("ParsePorts(%q) error: %v", c.spec, err)
			continue
		}
		if s := got.String(); s != c.want {
			t.Errorf("ParsePorts(%q) = %s, want %s", c.spec, s, c.want)
		}
	}
}

func TestParsePortsBad(t *testing.T) {
	for _, c := range readBadCases(t, "bad-ports.txt") {
		_, err := ParsePorts(c.in, PortOptions{})
		c.check(t, "ParsePorts", err)
	}
	_, err := ParsePorts("xmpp-client", udpOnly)
	badCase{"xmpp-client", "xmpp-client", "no udp port"}.check(t, "ParsePorts for UDP", err)
	if _, err := ParsePorts("80", PortOptions{Protos: []registry.Proto{registry.SCTP}}); err == nil {
		t.Error("PortOptions with SCTP accepted")
	}
}

func TestPortList(t *testing.T) {
	l, err := ParsePorts("U:161,53,T:443,22", PortOptions{})
	if err != nil {
		t.Fatal(err)
	}
	type pp struct {
		port  uint16
		proto registry.Proto
	}
	want := []pp{{22, registry.TCP}, {443, registry.TCP}, {53, registry.UDP}, {161, registry.UDP}}
	if l.Len() != len(want) {
		t.Fatalf("Len = %d", l.Len())
	}
	var all []pp
	for port, proto := range l.All() {
		all = append(all, pp{port, proto})
	}
	for i, w := range want {
		if port, proto := l.At(i); (pp{port, proto}) != w || all[i] != w {
			t.Errorf("At(%d) = %d/%v, All()[%d] = %v; want %v", i, port, proto, i, all[i], w)
		}
		if !l.Contains(w.port, w.proto) {
			t.Errorf("Contains(%v) = false", w)
		}
	}
	if l.Contains(22, registry.UDP) || l.Contains(22, registry.SCTP) || l.Ports(registry.SCTP) != nil {
		t.Error("Contains or Ports answer for a port or protocol not in the list")
	}
	tcp := l.Ports(registry.TCP)
	tcp[0] = 9
	if l.Ports(registry.TCP)[0] != 22 {
		t.Error("Ports returns the list's own storage")
	}
	var zero PortList
	if zero.Len() != 0 || zero.String() != "" || zero.Contains(0, registry.TCP) {
		t.Error("the zero PortList is not empty")
	}
}

func TestParsePortsAll(t *testing.T) {
	l, err := ParsePorts("-", tcpUDP)
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != 2*65535 || l.Contains(0, registry.TCP) {
		t.Errorf("- for TCP and UDP: Len %d", l.Len())
	}
	if port, proto := l.At(65535); port != 1 || proto != registry.UDP {
		t.Errorf("At(65535) = %d/%v, want 1/udp", port, proto)
	}
}

func TestReadPortsFile(t *testing.T) {
	in := "# web\n80,443\n8000-8100 # dev\nT:\n22\nU:53, 161\n\n\n"
	got, err := ReadPortsFile(strings.NewReader(in), "ports.txt", PortOptions{})
	if err != nil || got.String() != "T:22,80,443,8000-8100,U:53,161" {
		t.Errorf("ReadPortsFile = %v, %v", got, err)
	}
	if tcp, udp := got.ProtoString(registry.TCP), got.ProtoString(registry.UDP); tcp != "22,80,443,8000-8100" || udp != "53,161" {
		t.Errorf("ProtoString = %q, %q", tcp, udp)
	}
	for _, c := range []fileCase{
		{"80\n443\n\n99999\n", 4, "99999"},
		{"80\nU:\n", 2, "U:"},
		{"80,ssh,htp\n", 1, "htp"},
	} {
		_, err := ReadPortsFile(strings.NewReader(c.in), "ports.txt", PortOptions{})
		c.check(t, "ports.txt", err)
	}
	if _, err := ReadPortsFile(strings.NewReader("# nothing\n"), "empty.txt", PortOptions{}); err == nil {
		t.Error("a file without ports was accepted")
	}
}

func TestTop(t *testing.T) {
	if got := Top(5, registry.TCP); !slices.Equal(got, []uint16{80, 443, 22, 21, 25}) {
		t.Errorf("Top(5, tcp) = %v", got)
	}
	if got := Top(3, registry.UDP); !slices.Equal(got, []uint16{53, 123, 161}) {
		t.Errorf("Top(3, udp) = %v", got)
	}
	for _, c := range []struct {
		proto registry.Proto
		min   int
		head  []uint16 // among the first 100
	}{
		{registry.TCP, 1000, []uint16{80, 443, 22, 21, 25, 3389, 110, 445, 139, 143, 53, 135, 3306, 8080, 5432, 6379}},
		{registry.UDP, 200, []uint16{53, 123, 161, 137, 67, 69, 500, 514, 1900, 5353}},
	} {
		all := Top(1<<20, c.proto)
		if len(all) < c.min {
			t.Errorf("%v: %d ports ranked, want at least %d", c.proto, len(all), c.min)
		}
		seen := map[uint16]bool{}
		for _, p := range all {
			if seen[p] || p == 0 {
				t.Errorf("%v: port %d twice, or port 0", c.proto, p)
			}
			seen[p] = true
		}
		for _, p := range c.head {
			if !slices.Contains(all[:100], p) {
				t.Errorf("%v: %d is not in the first 100", c.proto, p)
			}
		}
		for p := 1; p < 1024; p++ { // every IANA well-known assignment is ranked
			for _, s := range registry.ByPort(uint16(p), c.proto) {
				if s.Name != "" && s.Proto == c.proto && !seen[uint16(p)] {
					t.Errorf("%v: IANA's %d (%s) is not ranked", c.proto, p, s.Name)
				}
			}
		}
	}
	if Top(0, registry.TCP) != nil || Top(-1, registry.TCP) != nil || Top(10, registry.SCTP) != nil {
		t.Error("Top of nothing is not nil")
	}
	top := Top(1, registry.TCP)
	top[0] = 1
	if Top(1, registry.TCP)[0] != 80 {
		t.Error("Top returns the table itself")
	}
}

func TestTopPorts(t *testing.T) {
	l, err := TopPorts(100, tcpUDP)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(l.Ports(registry.TCP)); n != 100 || len(l.Ports(registry.UDP)) != 100 {
		t.Errorf("TopPorts(100, tcp+udp) = %d TCP, %d UDP", n, len(l.Ports(registry.UDP)))
	}
	if !slices.IsSorted(l.Ports(registry.TCP)) || !l.Contains(80, registry.TCP) || !l.Contains(53, registry.UDP) {
		t.Error("TopPorts is not sorted or misses 80/tcp, 53/udp")
	}
	if _, err := TopPorts(0, PortOptions{}); err == nil {
		t.Error("TopPorts(0) accepted")
	}
	if _, err := TopPorts(10, PortOptions{Protos: []registry.Proto{registry.DCCP}}); err == nil {
		t.Error("TopPorts for DCCP accepted")
	}
}

func FuzzParsePorts(f *testing.F) {
	for _, s := range []string{
		"22,80,443", "1-1024", "-", "-1024", "60000-", "0", "T:80,U:53", "T:1-100,U:53,161",
		"ssh,https", "U:domain", "x11", "sshh", "80-22", "T:", "S:80", "1-2-3", "22,,80", " T: 22 ",
	} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(2))
	}
	reg := registry.New()
	protoSets := [][]registry.Proto{nil, {registry.TCP}, {registry.UDP}, {registry.TCP, registry.UDP}}
	f.Fuzz(func(t *testing.T, spec string, protos uint8) {
		opts := PortOptions{Protos: protoSets[protos%4], Registry: reg}
		l, err := ParsePorts(spec, opts)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Input != spec {
				t.Fatalf("error %v: want an *Error with the input", err)
			}
			checkError(t, err)
			return
		}
		if l.Len() == 0 {
			t.Fatal("no error and no ports")
		}
		for _, proto := range []registry.Proto{registry.TCP, registry.UDP} {
			ports := l.Ports(proto)
			for i := 1; i < len(ports); i++ {
				if ports[i] <= ports[i-1] {
					t.Fatalf("%v ports not strictly increasing: %v", proto, ports)
				}
			}
			if l.Contains(0, proto) && !strings.Contains(spec, "0") {
				t.Fatalf("port 0 without a 0 in %q", spec)
			}
		}
		// String reads back to the same list, whatever the options.
		back, err := ParsePorts(l.String(), PortOptions{Protos: protoSets[(protos+1)%4], Registry: reg})
		if err != nil || back.String() != l.String() || back.Len() != l.Len() {
			t.Fatalf("ParsePorts(%q).String() = %q reads back as %v, %v", spec, l.String(), back, err)
		}
	})
}
