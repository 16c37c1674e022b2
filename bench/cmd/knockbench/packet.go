package main

import (
	"encoding/binary"
	"math/rand/v2"
)

// The junk of the flood, built here whole (IPv4 header included) for a
// raw socket, so that one sender can spoof many sources: a flood from one
// address would tell nothing about the per-source state knock daemons keep.

const (
	ipHeaderLen  = 20
	udpHeaderLen = 8
	tcpHeaderLen = 20
	protoTCP     = 6
	protoUDP     = 17
)

// junkSources is where the flood's packets claim to come from:
// 198.19.128.0/17, inside the benchmarking range and apart from the
// addresses valid packets ask openings for (198.19.0.0/24).
func junkSource(r *rand.Rand) [4]byte {
	v := r.Uint32()
	return [4]byte{198, 19, 128 | byte(v>>8)&0x7f, byte(v)}
}

// sum16 adds b to a ones' complement sum as big-endian 16-bit words.
func sum16(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

// fold finishes a ones' complement sum into a checksum.
func fold(sum uint32) uint16 {
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// ipHeader writes an IPv4 header for a datagram of total bytes into b.
func ipHeader(b []byte, proto byte, src, dst [4]byte, total int, id uint16) {
	b[0] = 0x45
	b[1] = 0
	binary.BigEndian.PutUint16(b[2:], uint16(total))
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], 0) // no fragment
	b[8] = 64
	b[9] = proto
	binary.BigEndian.PutUint16(b[10:], 0)
	copy(b[12:16], src[:])
	copy(b[16:20], dst[:])
	binary.BigEndian.PutUint16(b[10:], fold(sum16(0, b[:ipHeaderLen])))
}

// pseudoSum is the sum of the TCP/UDP pseudo-header.
func pseudoSum(proto byte, src, dst [4]byte, length int) uint32 {
	s := sum16(0, src[:])
	s = sum16(s, dst[:])
	return s + uint32(proto) + uint32(length)
}

// udpPacket writes into buf (which must hold it) an IPv4 UDP datagram
// carrying payload, whose ones' complement sum is payloadSum
// (sum16(0, payload), computed once per payload), and returns it.
func udpPacket(buf []byte, src, dst [4]byte, sport, dport, id uint16, payload []byte, payloadSum uint32) []byte {
	n := ipHeaderLen + udpHeaderLen + len(payload)
	b := buf[:n]
	ipHeader(b, protoUDP, src, dst, n, id)
	u := b[ipHeaderLen:]
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(udpHeaderLen+len(payload)))
	binary.BigEndian.PutUint16(u[6:], 0)
	copy(u[udpHeaderLen:], payload)
	s := pseudoSum(protoUDP, src, dst, udpHeaderLen+len(payload))
	s = sum16(s, u[:udpHeaderLen])
	// payloadSum is the sum of payload as if it began on an even offset,
	// which it does: the UDP header is 8 bytes.
	c := fold(s + payloadSum)
	if c == 0 {
		c = 0xffff // 0 means "no checksum" in UDP
	}
	binary.BigEndian.PutUint16(u[6:], c)
	return b
}

// synPacket writes into buf an IPv4 TCP SYN and returns it.
func synPacket(buf []byte, src, dst [4]byte, sport, dport, id uint16, seq uint32) []byte {
	n := ipHeaderLen + tcpHeaderLen
	b := buf[:n]
	ipHeader(b, protoTCP, src, dst, n, id)
	t := b[ipHeaderLen:]
	binary.BigEndian.PutUint16(t[0:], sport)
	binary.BigEndian.PutUint16(t[2:], dport)
	binary.BigEndian.PutUint32(t[4:], seq)
	binary.BigEndian.PutUint32(t[8:], 0)
	t[12] = tcpHeaderLen / 4 << 4
	t[13] = 0x02 // SYN
	binary.BigEndian.PutUint16(t[14:], 64240)
	binary.BigEndian.PutUint16(t[16:], 0)
	binary.BigEndian.PutUint16(t[18:], 0)
	binary.BigEndian.PutUint16(t[16:], fold(sum16(pseudoSum(protoTCP, src, dst, tcpHeaderLen), t)))
	return b
}

// base64Alphabet is what SPA payloads are made of: junk of it passes the
// servers' first checks (length, alphabet) and costs them an HMAC each.
const base64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// junkPayloads makes n payloads of base64 text, 150 to 600 characters
// (within fwknop's bounds, 140 to 1500), and the sum of each.
func junkPayloads(r *rand.Rand, n int) ([][]byte, []uint32) {
	ps := make([][]byte, n)
	sums := make([]uint32, n)
	for i := range ps {
		p := make([]byte, 150+r.IntN(451))
		for j := range p {
			p[j] = base64Alphabet[r.IntN(len(base64Alphabet))]
		}
		ps[i], sums[i] = p, sum16(0, p)
	}
	return ps, sums
}
