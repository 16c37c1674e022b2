package knock

import (
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/bpf"
)

func TestFilter(t *testing.T) {
	cfg := &Config{
		SPAPort: DefaultSPAPort,
		Doors: []*Door{
			{Sequence: []Knock{{7000, TCP}, {8000, UDP}, {9000, TCP}}},
			{TOTP: &TOTP{Secret: make([]byte, 16), Low: 40000, High: 40999, Proto: UDP}},
		},
	}
	raw, err := cfg.Filter()
	if err != nil {
		t.Fatal(err)
	}
	prog, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("the filter does not disassemble")
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	c6, s6 := netip.MustParseAddr("2001:2::1"), netip.MustParseAddr("2001:2::2")
	frag := ipv4(client, server, UDP, udp(DefaultSPAPort, []byte("x")))
	frag[7] = 10 // a fragment offset: not the first fragment
	withOptions := ipv4(client, server, TCP, append(make([]byte, 8), tcp(7000, synFlag)...))
	withOptions[0] = 0x47 // a 28-byte IPv4 header
	for _, tc := range []struct {
		name string
		pkt  []byte
		want bool
	}{
		{"SPA", ipv4(client, server, UDP, udp(DefaultSPAPort, []byte("abc"))), true},
		{"SPA over IPv6", ipv6(c6, s6, UDP, udp(DefaultSPAPort, []byte("abc"))), true},
		{"TCP to the SPA port", ipv4(client, server, TCP, tcp(DefaultSPAPort, synFlag)), false},
		{"SYN to a knock port", ipv4(client, server, TCP, tcp(7000, synFlag)), true},
		{"SYN to a knock port over IPv6", ipv6(c6, s6, TCP, tcp(9000, synFlag)), true},
		{"SYN with IP options", withOptions, true},
		{"SYN-ACK to a knock port", ipv4(client, server, TCP, tcp(7000, synFlag|ackFlag)), false},
		{"ACK to a knock port", ipv4(client, server, TCP, tcp(7000, ackFlag)), false},
		{"UDP to a TCP knock port", ipv4(client, server, UDP, udp(7000, nil)), false},
		{"UDP to a UDP knock port", ipv4(client, server, UDP, udp(8000, nil)), true},
		{"SYN to a UDP knock port", ipv4(client, server, TCP, tcp(8000, synFlag)), false},
		{"UDP in the TOTP range", ipv4(client, server, UDP, udp(40500, nil)), true},
		{"UDP at the range's ends", ipv6(c6, s6, UDP, udp(40999, nil)), true},
		{"UDP below the range", ipv4(client, server, UDP, udp(39999, nil)), false},
		{"UDP above the range", ipv4(client, server, UDP, udp(41000, nil)), false},
		{"SYN to another port", ipv4(client, server, TCP, tcp(22, synFlag)), false},
		{"a later fragment", frag, false},
		{"ICMP", ipv4(client, server, 1, make([]byte, 8)), false},
	} {
		n, err := vm.Run(tc.pkt)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := n > 0; got != tc.want {
			t.Errorf("%s: kept %d bytes, want kept=%v", tc.name, n, tc.want)
		}
	}
}

// TestFilterMany: a config with more ports than the filter tests one by
// one still assembles, and still takes every one of them.
func TestFilterMany(t *testing.T) {
	var seq []Knock
	for i := range 500 {
		seq = append(seq, Knock{uint16(1000 + 3*i), TCP}, Knock{uint16(30000 + 3*i), UDP})
	}
	cfg := &Config{SPAPort: DefaultSPAPort, Doors: []*Door{{Sequence: seq}}}
	raw, err := cfg.Filter()
	if err != nil {
		t.Fatal(err)
	}
	prog, _ := bpf.Disassemble(raw)
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range seq {
		var p []byte
		if k.Proto == TCP {
			p = ipv4(client, server, TCP, tcp(k.Port, synFlag))
		} else {
			p = ipv4(client, server, UDP, udp(k.Port, nil))
		}
		if n, _ := vm.Run(p); n == 0 {
			t.Fatalf("%v dropped", k)
		}
	}
}

func TestTOTPCounter(t *testing.T) {
	tp := TOTP{Step: 30 * time.Second}
	if c := tp.Counter(time.Unix(59, 0)); c != 1 {
		t.Errorf("counter at 59s: %d", c)
	}
	if c := tp.Counter(time.Unix(60, 0)); c != 2 {
		t.Errorf("counter at 60s: %d", c)
	}
}
