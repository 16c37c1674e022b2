package rawnet

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Cookie is the sequence number of a SYN from src:srcPort to dst:dstPort:
// the low 32 bits of SipHash-2-4, keyed by key, of the two addresses (in
// their 16-byte form) and ports. Without the key a third party cannot make
// a reply that passes ValidCookie; with a key per scan, replies to an
// earlier scan fail too.
func Cookie(key [16]byte, srcIP, dstIP netip.Addr, srcPort, dstPort uint16) uint32 {
	var m [36]byte
	s, d := srcIP.As16(), dstIP.As16()
	copy(m[:16], s[:])
	copy(m[16:32], d[:])
	binary.BigEndian.PutUint16(m[32:], srcPort)
	binary.BigEndian.PutUint16(m[34:], dstPort)
	return uint32(sipHash24(key, m[:]))
}

// ValidCookie reports whether r answers a probe that carried its cookie: a
// TCP reply must acknowledge the cookie plus one (a SYN-ACK, and the RST a
// closed port sends for a SYN, both do); an ICMP error about TCP must quote
// the cookie as the sequence number. UDP probes carry no cookie: UDP
// replies and ICMP errors about UDP are valid by their ports alone.
func ValidCookie(key [16]byte, r *Reply) bool {
	switch r.Proto {
	case ProtoTCP:
		return r.Flags&FlagACK != 0 && r.Ack-1 == Cookie(key, r.Dst, r.Src, r.DstPort, r.SrcPort)
	case ProtoICMP, ProtoICMPv6:
		o := &r.Orig
		return o.Proto != ProtoTCP || o.Seq == Cookie(key, o.Src, o.Dst, o.SrcPort, o.DstPort)
	}
	return r.Proto == ProtoUDP
}

// sipHash24 is SipHash-2-4 of m under key k, as specified in Aumasson and
// Bernstein, "SipHash: a fast short-input PRF" (2012): the key and message
// words are little-endian, two SipRounds per message word, four to finish.
func sipHash24(k [16]byte, m []byte) uint64 {
	k0 := binary.LittleEndian.Uint64(k[:8])
	k1 := binary.LittleEndian.Uint64(k[8:])
	v0 := k0 ^ 0x736f6d6570736575 // "somepseudorandomlygeneratedbytes"
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573

	n := len(m)
	for ; len(m) >= 8; m = m[8:] {
		w := binary.LittleEndian.Uint64(m)
		v3 ^= w
		v0, v1, v2, v3 = sipRound(sipRound(v0, v1, v2, v3))
		v0 ^= w
	}
	// The last word: the remaining bytes, and the message length mod 256
	// in the top byte.
	w := uint64(n) << 56
	for i, c := range m {
		w |= uint64(c) << (8 * i)
	}
	v3 ^= w
	v0, v1, v2, v3 = sipRound(sipRound(v0, v1, v2, v3))
	v0 ^= w

	v2 ^= 0xff
	v0, v1, v2, v3 = sipRound(sipRound(v0, v1, v2, v3))
	v0, v1, v2, v3 = sipRound(sipRound(v0, v1, v2, v3))
	return v0 ^ v1 ^ v2 ^ v3
}

// sipRound is one SipRound: add, rotate, xor on the four state words.
func sipRound(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v2 += v3
	v1 = bits.RotateLeft64(v1, 13) ^ v0
	v3 = bits.RotateLeft64(v3, 16) ^ v2
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v1
	v0 += v3
	v1 = bits.RotateLeft64(v1, 17) ^ v2
	v3 = bits.RotateLeft64(v3, 21) ^ v0
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}
