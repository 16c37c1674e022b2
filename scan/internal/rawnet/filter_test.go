package rawnet

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
)

// TestReplyFilter runs the receive filter in x/net/bpf's virtual machine
// over packets as an AF_PACKET SOCK_DGRAM socket hands them over: from the
// IP header on.
func TestReplyFilter(t *testing.T) {
	const port = 40000
	ours4 := probe4 // sent from port 40000
	ours6 := probe6
	theirs4 := testProbe{ap("198.18.0.1:40001"), probe4.remote}
	theirs6 := testProbe{ap("[2001:db8::1]:40001"), probe6.remote}

	withOptions := func(pkt []byte) []byte { // 4 bytes of IP options
		out := append([]byte{0x46}, pkt[1:20]...)
		out = append(out, 1, 1, 1, 0)
		out = append(out, pkt[20:]...)
		binary.BigEndian.PutUint16(out[2:], uint16(len(out)))
		return out
	}
	fragment := set(ours4.answer(t, FlagSYN|FlagACK, 1), 7, 8) // offset 64 bytes
	firstFragment := set(ours4.answer(t, FlagSYN|FlagACK, 1), 6, 0x20)
	// An IPv6 SYN-ACK behind a hop-by-hop options header.
	hbh := ours6.answer(t, FlagSYN|FlagACK, 1)
	hbh = append(append(append([]byte{}, hbh[:40]...), ProtoTCP, 0, 1, 4, 0, 0, 0, 0), hbh[40:]...)
	hbh[6] = 0
	binary.BigEndian.PutUint16(hbh[4:], uint16(len(hbh)-40))
	arp := []byte{0, 1, 8, 0, 6, 4, 0, 1, 1, 2, 3, 4, 5, 6, 198, 18, 0, 1, 0, 0, 0, 0, 0, 0, 198, 18, 0, 2}

	tests := []struct {
		name string
		pkt  []byte
		pass bool
	}{
		{"IPv4 SYN-ACK to our port", ours4.answer(t, FlagSYN|FlagACK, 1), true},
		{"IPv4 RST to our port", ours4.answer(t, FlagRST|FlagACK, 1), true},
		{"IPv4 SYN-ACK to another port", theirs4.answer(t, FlagSYN|FlagACK, 1), false},
		{"our own SYN going out", ours4.syn(t), false},
		{"IPv4 SYN-ACK with IP options", withOptions(ours4.answer(t, FlagSYN|FlagACK, 1)), true},
		{"IPv4 SYN-ACK with IP options, another port", withOptions(theirs4.answer(t, FlagSYN|FlagACK, 1)), false},
		{"IPv4 UDP to our port", ours4.udpAnswer(t, "pong"), true},
		{"IPv4 UDP to another port", theirs4.udpAnswer(t, "pong"), false},
		{"later IPv4 fragment", fragment, false},
		{"first IPv4 fragment", firstFragment, true},
		{"port unreachable about our probe", icmpError(router, 3, 3, ours4.udp(t, "")), true},
		{"port unreachable about another's", icmpError(router, 3, 3, theirs4.udp(t, "")), false},
		{"unreachable quoting a header with options", icmpError(router, 3, 13, withOptions(ours4.syn(t))), true},
		{"unreachable from a header with options", withOptions(icmpError(router, 3, 13, ours4.syn(t))), true},
		{"both with options, another's", withOptions(icmpError(router, 3, 13, withOptions(theirs4.syn(t)))), false},
		{"both with options, ours", withOptions(icmpError(router, 3, 13, withOptions(ours4.syn(t)))), true},
		{"time exceeded about our probe", icmpError(router, 11, 0, ours4.syn(t)), true},
		{"parameter problem about our probe", icmpError(router, 12, 0, ours4.syn(t)), true},
		{"source quench about our probe", icmpError(router, 4, 0, ours4.syn(t)), true},
		{"ICMP redirect", icmpError(router, 5, 1, ours4.syn(t)), false},
		{"ICMP echo request", icmpError(router, 8, 0, ours4.syn(t)), false},
		{"ICMP error cut before the quoted ports", icmpError(router, 3, 3, ours4.udp(t, ""))[:IPv4HeaderLen+8+IPv4HeaderLen], false},
		{"IPv6 SYN-ACK to our port", ours6.answer(t, FlagSYN|FlagACK, 1), true},
		{"IPv6 SYN-ACK to another port", theirs6.answer(t, FlagSYN|FlagACK, 1), false},
		{"IPv6 UDP to our port", ours6.udpAnswer(t, "pong"), true},
		{"IPv6 SYN-ACK behind an extension header", hbh, false},
		{"ICMPv6 port unreachable about our probe", icmpError(probe6.remote.Addr(), 1, 4, ours6.udp(t, "")), true},
		{"ICMPv6 port unreachable about another's", icmpError(probe6.remote.Addr(), 1, 4, theirs6.udp(t, "")), false},
		{"ICMPv6 packet too big about our probe", icmpError(probe6.remote.Addr(), 2, 0, ours6.syn(t)), true},
		{"ICMPv6 time exceeded about our probe", icmpError(probe6.remote.Addr(), 3, 0, ours6.syn(t)), true},
		{"ICMPv6 parameter problem about our probe", icmpError(probe6.remote.Addr(), 4, 0, ours6.syn(t)), true},
		{"ICMPv6 echo request", icmpError(probe6.remote.Addr(), 128, 0, ours6.syn(t)), false},
		{"ICMPv6 neighbour solicitation", icmpError(probe6.remote.Addr(), 135, 0, ours6.syn(t)), false},
		{"ARP", arp, false},
		{"empty", nil, false},
	}

	const snaplen = 96
	prog, err := replyFilter(port, snaplen)
	if err != nil {
		t.Fatal(err)
	}
	ins, ok := bpf.Disassemble(prog)
	if !ok {
		t.Fatal("the filter does not disassemble")
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		n, err := vm.Run(tt.pkt)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if pass := n > 0; pass != tt.pass {
			t.Errorf("%s: filter keeps %d bytes, want pass=%v", tt.name, n, tt.pass)
		}
		// The kernel keeps min(n, the packet's length) bytes.
		if n > 0 && n != snaplen {
			t.Errorf("%s: filter returns %d, want the snap length %d", tt.name, n, snaplen)
		}
	}
	t.Logf("filter: %d instructions", len(prog))
}

func TestLinkErrors(t *testing.T) {
	for name, prog := range map[string][]any{
		"unknown label":    {goTo("nowhere"), label("here"), bpf.RetConstant{}},
		"backward jump":    {label("back"), bpf.RetConstant{}, jeq(1, "back")},
		"not instruction":  {"ret"},
		"jump to the next": {jeq(1, "next"), label("next"), bpf.RetConstant{}},
	} {
		_, err := link(prog)
		if (err == nil) != (name == "jump to the next") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
