package guard

import (
	"encoding/binary"
)

// Marshal builds the IPv4 or IPv6 packet p describes, what Parse reads
// back: TCP (with an MSS option, and SACK and timestamps when p.SACKTS),
// UDP with a small payload, or ICMP quoting p.Quoted. Checksums are left
// zero. It makes capture files for tests and for trying rules out.
func Marshal(p *Packet) []byte {
	var l4 []byte
	proto := uint8(p.Proto)
	switch p.Proto {
	case TCP:
		opts := []byte{2, 4, 5, 0xb4} // MSS
		if p.SACKTS {
			opts = append(opts, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7) // SACK, timestamps, NOP, window scale
		}
		l4 = make([]byte, 20+len(opts))
		binary.BigEndian.PutUint16(l4[0:], p.SrcPort)
		binary.BigEndian.PutUint16(l4[2:], p.DstPort)
		binary.BigEndian.PutUint32(l4[4:], p.Seq)
		binary.BigEndian.PutUint32(l4[8:], p.Ack)
		l4[12] = byte(len(l4)/4) << 4
		l4[13] = p.Flags
		binary.BigEndian.PutUint16(l4[14:], p.Window)
		copy(l4[20:], opts)
	case UDP:
		l4 = make([]byte, 8+4)
		binary.BigEndian.PutUint16(l4[0:], p.SrcPort)
		binary.BigEndian.PutUint16(l4[2:], p.DstPort)
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	case ICMP:
		q := &Packet{Flow: p.Quoted, TTL: 64}
		quoted := Marshal(q)
		l4 = append([]byte{p.ICMPType, p.ICMPCode, 0, 0, 0, 0, 0, 0}, quoted[:min(len(quoted), 48+8)]...)
		if p.Src.Is6() {
			proto = 58
		}
	}
	if p.Src.Is4() {
		ip := make([]byte, 20, 20+len(l4))
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)))
		binary.BigEndian.PutUint16(ip[4:], p.IPID)
		ip[8], ip[9] = max(p.TTL, 1), proto
		s, d := p.Src.As4(), p.Dst.As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		return append(ip, l4...)
	}
	ip := make([]byte, 40, 40+len(l4))
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(len(l4)))
	ip[6], ip[7] = proto, max(p.TTL, 1)
	s, d := p.Src.As16(), p.Dst.As16()
	copy(ip[8:], s[:])
	copy(ip[24:], d[:])
	return append(ip, l4...)
}
