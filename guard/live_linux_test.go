//go:build linux

package guard

import (
	"bytes"
	"testing"
)

// TestSnaplenKeepsHeaders: the live capture's snap length keeps all Parse
// reads of packets with the longest headers it may meet: what it makes of
// the packet cut to guardSnaplen is what it makes of the whole.
func TestSnaplenKeepsHeaders(t *testing.T) {
	// IPv4 with 40 bytes of options (no-ops), of protocol proto.
	ip4 := func(proto byte, payload []byte) []byte {
		h := make([]byte, 60)
		h[0], h[8], h[9] = 0x4f, 64, proto
		n := len(h) + len(payload)
		h[2], h[3] = byte(n>>8), byte(n)
		copy(h[12:], []byte{198, 18, 0, 1, 198, 18, 0, 2})
		for i := 20; i < 60; i++ {
			h[i] = 1
		}
		return append(h, payload...)
	}
	// A SYN with 40 bytes of options, SACK permitted and timestamps last,
	// and some payload after them.
	tcp := func() []byte {
		h := make([]byte, 60)
		h[0], h[1], h[2], h[3] = 0x9c, 0x40, 0x4e, 0x20
		h[12], h[13], h[15] = 0xf0, 0x02, 0xff
		opts := h[20:]
		for i := range 28 {
			opts[i] = 1
		}
		copy(opts[28:], []byte{4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0})
		return append(h, bytes.Repeat([]byte{'x'}, 200)...)
	}
	// ICMP port unreachable quoting an IPv4 datagram with options.
	unreach := append([]byte{3, 3, 0, 0, 0, 0, 0, 0}, ip4(17, append([]byte{0, 53, 0, 161, 0, 8, 0, 0}, bytes.Repeat([]byte{'y'}, 100)...))...)
	// IPv6, a 56-byte hop-by-hop header, then the SYN.
	ip6 := func(payload []byte) []byte {
		h := make([]byte, 40+56)
		h[0], h[6], h[7] = 0x60, 0, 64
		h[4], h[5] = byte((56+len(payload))>>8), byte(56+len(payload))
		copy(h[8:], []byte{0x20, 0x01, 0, 2, 15: 1})
		copy(h[24:], []byte{0x20, 0x01, 0, 2, 15: 2})
		h[40], h[41] = 6, 56/8-1
		h[42], h[43] = 1, 52 // PadN over the rest
		return append(h, payload...)
	}
	for _, c := range []struct {
		name string
		pkt  []byte
	}{
		{"IPv4 and TCP options", ip4(6, tcp())},
		{"ICMP error quoting options", ip4(1, unreach)},
		{"IPv6 hop-by-hop and TCP options", ip6(tcp())},
	} {
		if len(c.pkt) <= guardSnaplen {
			t.Fatalf("%s: %d bytes, not cut by the snap length", c.name, len(c.pkt))
		}
		var whole, cut Packet
		if err := Parse(c.pkt, &whole); err != nil {
			t.Fatalf("%s: whole: %v", c.name, err)
		}
		// The headers were read whole: the options' last, or the quote.
		if whole.Proto == TCP && (!whole.SACKTS || whole.OptLen != 40) || whole.Proto == ICMP && whole.Quoted.DstPort != 161 {
			t.Fatalf("%s: whole: %+v", c.name, whole)
		}
		if err := Parse(c.pkt[:guardSnaplen], &cut); err != nil {
			t.Fatalf("%s: cut to %d bytes: %v", c.name, guardSnaplen, err)
		}
		if cut != whole {
			t.Errorf("%s: cut to %d bytes:\n got %+v\nwant %+v", c.name, guardSnaplen, cut, whole)
		}
	}
}
