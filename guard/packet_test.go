package guard

import (
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"
)

var (
	local6 = netip.MustParseAddr("2001:2::2")
	scan6  = netip.MustParseAddr("2001:2::1")
)

func samplePackets() []Packet {
	return []Packet{
		{Flow: Flow{Src: scan4, Dst: local4, SrcPort: 40000, DstPort: 22, Proto: TCP}, Flags: SYN, TTL: 61, IPID: 54321, Seq: 7, Window: 1024},
		{Flow: Flow{Src: scan4, Dst: local4, SrcPort: 40000, DstPort: 23, Proto: TCP}, Flags: SYN, TTL: 64, SACKTS: true},
		{Flow: Flow{Src: scan6, Dst: local6, SrcPort: 40000, DstPort: 80, Proto: TCP}, Flags: FIN | PSH | URG, TTL: 64},
		{Flow: Flow{Src: scan4, Dst: local4, SrcPort: 53, DstPort: 161, Proto: UDP}, TTL: 64},
		{Flow: Flow{Src: scan6, Dst: local6, SrcPort: 53, DstPort: 161, Proto: UDP}, TTL: 64},
		{Outgoing: true, Flow: Flow{Src: local4, Dst: scan4, SrcPort: 22, DstPort: 40000, Proto: TCP}, Flags: RST | ACK, TTL: 64},
		{Outgoing: true, Flow: Flow{Src: local4, Dst: scan4, Proto: ICMP}, ICMPType: 3, ICMPCode: 3, TTL: 64,
			Quoted: Flow{Src: scan4, Dst: local4, SrcPort: 53, DstPort: 161, Proto: UDP}},
		{Outgoing: true, Flow: Flow{Src: local6, Dst: scan6, Proto: ICMP}, ICMPType: 1, ICMPCode: 4, TTL: 64,
			Quoted: Flow{Src: scan6, Dst: local6, SrcPort: 53, DstPort: 161, Proto: UDP}},
		{Outgoing: true, Flow: Flow{Src: local6, Dst: scan6, SrcPort: 80, DstPort: 40000, Proto: TCP}, Flags: RST, TTL: 64},
	}
}

// TestParseRoundTrip: what the builder writes, Parse reads back.
func TestParseRoundTrip(t *testing.T) {
	for i, want := range samplePackets() {
		var got Packet
		got.Outgoing = want.Outgoing
		if err := Parse(Marshal(&want), &got); err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		got.OptLen = 0
		if want.Src.Is6() {
			want.IPID = 0
		}
		if got != want {
			t.Errorf("%d:\n got %+v\nwant %+v", i, got, want)
		}
	}
}

// TestParseErrors: packets cut short or of other protocols are errors,
// never panics.
func TestParseErrors(t *testing.T) {
	full := Marshal(&samplePackets()[0])
	for _, b := range [][]byte{nil, {0x45}, full[:20], full[:30], {0x70, 0, 0, 0}, append([]byte{0x46}, full[1:]...)} {
		var p Packet
		if err := Parse(b, &p); err == nil {
			t.Errorf("% x: no error", b)
		}
	}
	frag := append([]byte(nil), full...)
	frag[6], frag[7] = 0, 10 // offset 80 bytes
	var p Packet
	if err := Parse(frag, &p); err == nil {
		t.Error("a later fragment parsed")
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range samplePackets() {
		f.Add(Marshal(&p))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Packet
		if Parse(b, &p) == nil && !p.Src.IsValid() {
			t.Fatal("parsed without a source")
		}
	})
}

// TestFilter runs both halves of the BPF program: inbound passes TCP,
// UDP and ICMP, outbound only resets and unreachables.
func TestFilter(t *testing.T) {
	for _, dir := range []struct {
		name string
		prog []bpf.Instruction
		out  bool
	}{{"inbound", inbound(256), false}, {"outbound", outbound(256), true}} {
		vm, err := bpf.NewVM(dir.prog)
		if err != nil {
			t.Fatalf("%s: %v", dir.name, err)
		}
		cases := append(samplePackets(),
			Packet{Outgoing: true, Flow: Flow{Src: local4, Dst: scan4, SrcPort: 22, DstPort: 40000, Proto: TCP}, Flags: SYN | ACK},
			Packet{Outgoing: true, Flow: Flow{Src: local6, Dst: scan6, SrcPort: 22, DstPort: 40000, Proto: TCP}, Flags: ACK},
			Packet{Outgoing: true, Flow: Flow{Src: local4, Dst: scan4, SrcPort: 53, DstPort: 40000, Proto: UDP}},
			Packet{Outgoing: true, Flow: Flow{Src: local4, Dst: scan4, Proto: ICMP}, ICMPType: 11,
				Quoted: Flow{Src: scan4, Dst: local4, SrcPort: 1, DstPort: 2, Proto: UDP}},
		)
		for i, p := range cases {
			if p.Outgoing != dir.out {
				if !dir.out {
					continue
				}
				p.Outgoing = true // an inbound kind, sent: only RST and unreachables pass
			}
			want := !dir.out || (p.Proto == TCP && p.Flags&RST != 0) || p.Unreachable()
			n, err := vm.Run(Marshal(&p))
			if err != nil {
				t.Fatal(err)
			}
			if (n > 0) != want {
				t.Errorf("%s %d (%v %s %s): kept %d, want kept=%v", dir.name, i, p.Proto, FlagString(p.Flags), p.Src, n, want)
			}
		}
	}
	if _, err := Filter(256); err != nil {
		t.Fatal(err)
	}
}
