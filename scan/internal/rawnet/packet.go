package rawnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// IANA protocol numbers of the transports rawnet builds and reads.
const (
	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoICMPv6 uint8 = 58
)

// DefaultTTL is the TTL (or IPv6 hop limit) of packets whose TTL is zero.
const DefaultTTL = 64

// Header sizes of what AppendTCP and AppendUDP build.
const (
	IPv4HeaderLen = 20
	IPv6HeaderLen = 40
	TCPHeaderLen  = 20 // without options
	UDPHeaderLen  = 8
	mssOptionLen  = 4
)

// TCPFlags are the flag bits of a TCP header.
type TCPFlags uint8

const (
	FlagFIN TCPFlags = 1 << iota
	FlagSYN
	FlagRST
	FlagPSH
	FlagACK
	FlagURG
	FlagECE
	FlagCWR
)

var flagNames = [...]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}

// String names the set flags, "SYN|ACK".
func (f TCPFlags) String() string {
	var names []string
	for i, n := range flagNames {
		if f&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "|")
}

// TCP is a TCP segment to build, with its IP header.
type TCP struct {
	Src, Dst netip.AddrPort // both IPv4 or both IPv6
	Seq, Ack uint32
	Flags    TCPFlags
	Window   uint16
	MSS      uint16 // adds the MSS option when non-zero
	TTL      uint8  // TTL or hop limit; 0 means DefaultTTL
	ID       uint16 // IPv4 identification
}

// UDP is a UDP datagram to build, with its IP header.
type UDP struct {
	Src, Dst netip.AddrPort // both IPv4 or both IPv6
	Payload  []byte
	TTL      uint8  // TTL or hop limit; 0 means DefaultTTL
	ID       uint16 // IPv4 identification
}

// AppendTCP appends the IP packet carrying seg to b.
func AppendTCP(b []byte, seg TCP) ([]byte, error) {
	hlen := TCPHeaderLen
	if seg.MSS != 0 {
		hlen += mssOptionLen
	}
	b, start, sum, err := appendHeaders(b, seg.Src, seg.Dst, ProtoTCP, seg.TTL, seg.ID, hlen)
	if err != nil {
		return b, err
	}
	b = binary.BigEndian.AppendUint32(b, seg.Seq)
	b = binary.BigEndian.AppendUint32(b, seg.Ack)
	b = append(b, byte(hlen/4)<<4, byte(seg.Flags))
	b = binary.BigEndian.AppendUint16(b, seg.Window)
	b = append(b, 0, 0, 0, 0) // checksum, urgent pointer
	if seg.MSS != 0 {
		b = append(b, 2, mssOptionLen) // kind MSS, length (RFC 9293 §3.2)
		b = binary.BigEndian.AppendUint16(b, seg.MSS)
	}
	binary.BigEndian.PutUint16(b[start+16:], checksum(b[start:], sum))
	return b, nil
}

// AppendUDP appends the IP packet carrying d to b.
func AppendUDP(b []byte, d UDP) ([]byte, error) {
	n := UDPHeaderLen + len(d.Payload)
	if n > 0xffff-IPv6HeaderLen {
		return b, fmt.Errorf("rawnet: UDP payload of %d bytes is too long", len(d.Payload))
	}
	b, start, sum, err := appendHeaders(b, d.Src, d.Dst, ProtoUDP, d.TTL, d.ID, n)
	if err != nil {
		return b, err
	}
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	b = append(b, 0, 0)
	b = append(b, d.Payload...)
	c := checksum(b[start:], sum)
	if c == 0 {
		c = 0xffff // zero means "no checksum" in UDP (RFC 768)
	}
	binary.BigEndian.PutUint16(b[start+6:], c)
	return b, nil
}

// appendHeaders appends the IP header for a transport segment of n bytes
// and the segment's ports, which TCP and UDP both start with; it returns
// where the segment starts and the sum of its checksum's pseudo-header.
func appendHeaders(b []byte, src, dst netip.AddrPort, proto, ttl uint8, id uint16, n int) ([]byte, int, uint32, error) {
	b, sum, err := appendIP(b, src.Addr(), dst.Addr(), proto, ttl, id, n)
	if err != nil {
		return b, 0, 0, err
	}
	start := len(b)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	b = binary.BigEndian.AppendUint16(b, dst.Port())
	return b, start, sum, nil
}

var errFamilies = errors.New("rawnet: source and destination must both be IPv4 or both IPv6")

// appendIP appends an IPv4 or IPv6 header for a payload of n bytes of proto
// and returns the sum of the transport checksum's pseudo-header.
func appendIP(b []byte, src, dst netip.Addr, proto, ttl uint8, id uint16, n int) ([]byte, uint32, error) {
	if ttl == 0 {
		ttl = DefaultTTL
	}
	switch {
	case src.Is4() && dst.Is4():
		start := len(b)
		b = append(b, 0x45, 0) // version 4, 5 words of header; TOS
		b = binary.BigEndian.AppendUint16(b, uint16(IPv4HeaderLen+n))
		b = binary.BigEndian.AppendUint16(b, id)
		b = append(b, 0, 0, ttl, proto, 0, 0) // flags and fragment offset, TTL, protocol, checksum
		s, d := src.As4(), dst.As4()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
		binary.BigEndian.PutUint16(b[start+10:], checksum(b[start:], 0))
		return b, sum16(b[start+12:start+20], uint32(proto)+uint32(n)), nil
	case src.Is6() && !src.Is4In6() && dst.Is6() && !dst.Is4In6():
		b = append(b, 0x60, 0, 0, 0) // version 6, traffic class, flow label
		b = binary.BigEndian.AppendUint16(b, uint16(n))
		b = append(b, proto, ttl)
		start := len(b)
		s, d := src.As16(), dst.As16()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
		return b, sum16(b[start:], uint32(proto)+uint32(n)), nil
	}
	return b, 0, fmt.Errorf("%w: %v and %v", errFamilies, src, dst)
}

// sum16 adds b as big-endian 16-bit words (an odd last byte padded with
// zero) to sum, without folding the carries.
func sum16(b []byte, sum uint32) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

// checksum is the Internet checksum (RFC 1071) of b with initial, a sum of
// the pseudo-header, already added: the ones' complement of the ones'
// complement sum. A packet whose checksum field is filled in sums, with its
// pseudo-header, to zero.
func checksum(b []byte, initial uint32) uint16 {
	sum := sum16(b, initial)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
