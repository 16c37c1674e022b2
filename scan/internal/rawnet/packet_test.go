package rawnet

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"
)

func TestChecksumVectors(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want uint16
	}{
		// RFC 1071 §3: the sum of these bytes is ddf2, its complement 220d.
		{"RFC 1071 example", "0001f203f4f5f6f7", 0x220d},
		// An IPv4 header with its checksum field zeroed.
		{"IPv4 header", "450000730000400040110000c0a80001c0a800c7", 0xb861},
		{"odd length", "01", 0xfeff},
		{"empty", "", 0xffff},
	}
	for _, tt := range tests {
		b, _ := hex.DecodeString(tt.hex)
		if got := checksum(b, 0); got != tt.want {
			t.Errorf("%s: checksum = %#04x, want %#04x", tt.name, got, tt.want)
		}
	}
}

// The expected packets were worked out independently of this package, field
// by field, with their checksums.
func TestAppendVectors(t *testing.T) {
	tests := []struct {
		name  string
		build func([]byte) ([]byte, error)
		want  string
	}{
		{"IPv4 SYN with MSS", func(b []byte) ([]byte, error) {
			return AppendTCP(b, TCP{
				Src: ap("198.18.0.1:40000"), Dst: ap("198.18.0.2:80"),
				Seq: 0x01020304, Flags: FlagSYN, Window: 1024, MSS: 1460, ID: 0x1234,
			})
		}, "4500002c123400004006dc70c6120001c61200029c40005001020304000000006002040067680000020405b4"},
		{"IPv6 SYN", func(b []byte) ([]byte, error) {
			return AppendTCP(b, TCP{
				Src: ap("[2001:db8::1]:40000"), Dst: ap("[2001:db8::2]:443"),
				Seq: 0xdeadbeef, Flags: FlagSYN, Window: 65535,
			})
		}, "600000000014064020010db800000000000000000000000120010db80000000000000000000000029c4001bbdeadbeef000000005002ffff18d50000"},
		{"IPv4 UDP", func(b []byte) ([]byte, error) {
			return AppendUDP(b, UDP{Src: ap("198.18.0.1:40000"), Dst: ap("198.18.0.2:53"), Payload: []byte("abc"), TTL: 32, ID: 7})
		}, "4500001f0007000020110ea0c6120001c61200029c400035000b12d8616263"},
		{"IPv6 UDP", func(b []byte) ([]byte, error) {
			return AppendUDP(b, UDP{Src: ap("[::1]:40000"), Dst: ap("[::1]:161"), Payload: []byte("hello!")})
		}, "60000000000e114000000000000000000000000000000001000000000000000000000000000000019c4000a1000e1efc68656c6c6f21"},
	}
	for _, tt := range tests {
		prefix := []byte("keep")
		got, err := tt.build(prefix)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if !bytes.HasPrefix(got, []byte("keep")) {
			t.Errorf("%s: the bytes before the packet were overwritten", tt.name)
		}
		if h := hex.EncodeToString(got[4:]); h != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, h, tt.want)
		}
		if !transportSumsToZero(got[4:]) {
			t.Errorf("%s: transport checksum does not verify", tt.name)
		}
	}
}

// transportSumsToZero verifies a packet's transport checksum over its
// pseudo-header, and the IPv4 header checksum.
func transportSumsToZero(pkt []byte) bool {
	var pseudo uint32
	var body []byte
	if pkt[0]>>4 == 4 {
		ihl := int(pkt[0]&0xf) * 4
		if checksum(pkt[:ihl], 0) != 0 {
			return false
		}
		body = pkt[ihl:]
		pseudo = sum16(pkt[12:20], uint32(pkt[9])+uint32(len(body)))
	} else {
		body = pkt[IPv6HeaderLen:]
		pseudo = sum16(pkt[8:40], uint32(pkt[6])+uint32(len(body)))
	}
	return checksum(body, pseudo) == 0
}

func TestAppendFamilies(t *testing.T) {
	for _, tt := range []struct{ src, dst string }{
		{"198.18.0.1:1", "[2001:db8::1]:2"},
		{"[2001:db8::1]:1", "198.18.0.1:2"},
		{"[::ffff:198.18.0.1]:1", "[::ffff:198.18.0.2]:2"},
	} {
		_, err := AppendTCP(nil, TCP{Src: ap(tt.src), Dst: ap(tt.dst)})
		if !errors.Is(err, errFamilies) {
			t.Errorf("AppendTCP %s → %s: err = %v, want the families error", tt.src, tt.dst, err)
		}
		if _, err := AppendUDP(nil, UDP{Src: ap(tt.src), Dst: ap(tt.dst)}); !errors.Is(err, errFamilies) {
			t.Errorf("AppendUDP %s → %s: err = %v, want the families error", tt.src, tt.dst, err)
		}
	}
	if _, err := AppendTCP(nil, TCP{}); err == nil {
		t.Error("AppendTCP with no addresses: no error")
	}
}

func TestUDPZeroChecksumIsAllOnes(t *testing.T) {
	// Find a payload whose checksum comes out zero, which UDP must send as
	// 0xffff; two bytes are enough to reach any sum.
	src, dst := ap("198.18.0.1:1000"), ap("198.18.0.2:2000")
	pkt, _ := AppendUDP(nil, UDP{Src: src, Dst: dst, Payload: []byte{0, 0}})
	c := binary.BigEndian.Uint16(pkt[26:])
	// Adding c to the (complemented) sum makes the sum 0xffff: the
	// checksum of the payload {c>>8, c} is zero.
	pkt, _ = AppendUDP(nil, UDP{Src: src, Dst: dst, Payload: []byte{byte(c >> 8), byte(c)}})
	if got := binary.BigEndian.Uint16(pkt[26:]); got != 0xffff {
		t.Errorf("checksum field = %#04x, want 0xffff", got)
	}
	if !transportSumsToZero(pkt) {
		t.Error("checksum does not verify")
	}
}

func TestTCPFlagsString(t *testing.T) {
	for f, want := range map[TCPFlags]string{0: "none", FlagSYN: "SYN", FlagSYN | FlagACK: "SYN|ACK", FlagRST | FlagACK: "RST|ACK"} {
		if got := f.String(); got != want {
			t.Errorf("%#x.String() = %q, want %q", uint8(f), got, want)
		}
	}
}

func BenchmarkAppendSYN(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 64)
	key := [16]byte{1}
	src, dst := ap("198.18.0.1:40000"), ap("198.18.0.2:0")
	var port uint16
	for b.Loop() {
		port++
		d := netip.AddrPortFrom(dst.Addr(), port)
		seq := Cookie(key, src.Addr(), d.Addr(), src.Port(), port)
		buf, _ = AppendTCP(buf[:0], TCP{Src: src, Dst: d, Seq: seq, Flags: FlagSYN, Window: 1024, MSS: 1460})
	}
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
