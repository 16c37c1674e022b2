package guard

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
)

// Proto is a packet's transport protocol.
type Proto uint8

// The protocols guard looks at.
const (
	TCP  Proto = 6
	UDP  Proto = 17
	ICMP Proto = 1 // ICMP or ICMPv6
)

func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case ICMP:
		return "icmp"
	}
	return fmt.Sprintf("proto-%d", uint8(p))
}

// TCP flags.
const (
	FIN = 0x01
	SYN = 0x02
	RST = 0x04
	PSH = 0x08
	ACK = 0x10
	URG = 0x20
	ECE = 0x40
	CWR = 0x80
)

// FlagString names TCP flags as nmap and tcpdump users read them:
// "SYN", "FIN,PSH,URG", "NULL" for none.
func FlagString(f uint8) string { return string(appendFlags(nil, f)) }

// appendFlags appends FlagString(f) to b.
func appendFlags(b []byte, f uint8) []byte {
	if f == 0 {
		return append(b, "NULL"...)
	}
	names := [8]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}
	first := true
	for i, n := range names {
		if f&(1<<i) != 0 {
			if !first {
				b = append(b, ',')
			}
			b, first = append(b, n...), false
		}
	}
	return b
}

// Flow is the addresses and ports of a packet, as its sender sent it.
type Flow struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Proto            Proto
}

// Reverse is the flow of an answer.
func (f Flow) Reverse() Flow {
	return Flow{Src: f.Dst, Dst: f.Src, SrcPort: f.DstPort, DstPort: f.SrcPort, Proto: f.Proto}
}

// Packet is what guard reads of one IP packet.
type Packet struct {
	At       time.Time
	Outgoing bool // sent by this host
	Flow
	TTL      uint8  // TTL or hop limit
	IPID     uint16 // IPv4 identification; zero for IPv6
	Flags    uint8  // TCP flags
	Seq, Ack uint32 // TCP
	Window   uint16 // TCP
	OptLen   int    // bytes of TCP options
	// SACKTS is true when a TCP SYN offers both SACK and timestamps, as
	// an operating system's own stack does and raw-packet scanners do not.
	SACKTS bool
	// ICMP type and code, and for an ICMP error the flow of the packet
	// it quotes (Quoted.Proto zero when it quotes none that guard reads).
	ICMPType, ICMPCode uint8
	Quoted             Flow
}

// Unreachable reports whether p is an ICMP or ICMPv6 destination
// unreachable error.
func (p *Packet) Unreachable() bool {
	if p.Proto != ICMP {
		return false
	}
	if p.Src.Is4() {
		return p.ICMPType == 3
	}
	return p.ICMPType == 1
}

// ParseError is a packet guard cannot read.
type ParseError struct {
	What string // what was wrong
	Len  int    // the packet's length
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("packet of %d bytes: %s", e.Len, e.What)
}

// Parse reads an IPv4 or IPv6 packet starting at its IP header into p.
// Non-first fragments and protocols other than TCP, UDP and ICMP are
// errors. Parse keeps nothing of b.
func Parse(b []byte, p *Packet) error {
	at, out := p.At, p.Outgoing
	*p = Packet{At: at, Outgoing: out}
	proto, l4, err := parseIP(b, &p.Flow, &p.TTL, &p.IPID)
	if err != nil {
		return err
	}
	return parseL4(proto, l4, len(b), p, false)
}

func perr(what string, b []byte) error { return &ParseError{What: what, Len: len(b)} }

// parseIP reads the IP header and returns the transport protocol number
// and what follows the header.
func parseIP(b []byte, f *Flow, ttl *uint8, id *uint16) (uint8, []byte, error) {
	if len(b) < 1 {
		return 0, nil, perr("empty", b)
	}
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return 0, nil, perr("IPv4 header cut short", b)
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return 0, nil, perr("IPv4 header length wrong", b)
		}
		if binary.BigEndian.Uint16(b[6:8])&0x1fff != 0 {
			return 0, nil, perr("IPv4 fragment after the first", b)
		}
		f.Src = netip.AddrFrom4([4]byte(b[12:16]))
		f.Dst = netip.AddrFrom4([4]byte(b[16:20]))
		*ttl = b[8]
		*id = binary.BigEndian.Uint16(b[4:6])
		end := int(binary.BigEndian.Uint16(b[2:4]))
		if end < ihl || end > len(b) {
			end = len(b) // a snapped capture, or a quoted packet
		}
		return b[9], b[ihl:end], nil
	case 6:
		if len(b) < 40 {
			return 0, nil, perr("IPv6 header cut short", b)
		}
		f.Src = netip.AddrFrom16([16]byte(b[8:24]))
		f.Dst = netip.AddrFrom16([16]byte(b[24:40]))
		*ttl = b[7]
		next, rest := b[6], b[40:]
		// Extension headers, a bounded number of them.
		for range 8 {
			switch next {
			case 0, 43, 60: // hop-by-hop, routing, destination options
				if len(rest) < 8 {
					return 0, nil, perr("IPv6 extension header cut short", b)
				}
				n := (int(rest[1]) + 1) * 8
				if len(rest) < n {
					return 0, nil, perr("IPv6 extension header cut short", b)
				}
				next, rest = rest[0], rest[n:]
			case 44: // fragment
				if len(rest) < 8 {
					return 0, nil, perr("IPv6 fragment header cut short", b)
				}
				if binary.BigEndian.Uint16(rest[2:4])&0xfff8 != 0 {
					return 0, nil, perr("IPv6 fragment after the first", b)
				}
				next, rest = rest[0], rest[8:]
			default:
				return next, rest, nil
			}
		}
		return 0, nil, perr("too many IPv6 extension headers", b)
	}
	return 0, nil, perr(fmt.Sprintf("IP version %d", b[0]>>4), b)
}

func parseL4(proto uint8, l4 []byte, total int, p *Packet, quoted bool) error {
	bad := func(what string) error { return &ParseError{What: what, Len: total} }
	switch proto {
	case 6:
		p.Proto = TCP
		// A quoted header may be cut to its first 8 bytes (RFC 792).
		if len(l4) < 4 || (!quoted && len(l4) < 20) {
			return bad("TCP header cut short")
		}
		p.SrcPort = binary.BigEndian.Uint16(l4[0:2])
		p.DstPort = binary.BigEndian.Uint16(l4[2:4])
		if quoted {
			return nil
		}
		p.Seq = binary.BigEndian.Uint32(l4[4:8])
		p.Ack = binary.BigEndian.Uint32(l4[8:12])
		p.Flags = l4[13]
		p.Window = binary.BigEndian.Uint16(l4[14:16])
		off := int(l4[12]>>4) * 4
		if off < 20 {
			return bad("TCP data offset below 20")
		}
		if off > len(l4) {
			off = len(l4) // options beyond the snap length
		}
		p.OptLen = off - 20
		p.SACKTS = sackAndTimestamps(l4[20:off])
	case 17:
		p.Proto = UDP
		if len(l4) < 4 || (!quoted && len(l4) < 8) {
			return bad("UDP header cut short")
		}
		p.SrcPort = binary.BigEndian.Uint16(l4[0:2])
		p.DstPort = binary.BigEndian.Uint16(l4[2:4])
	case 1, 58:
		if quoted {
			return bad("ICMP quoting ICMP")
		}
		p.Proto = ICMP
		if (proto == 1) != p.Src.Is4() {
			return bad("ICMP of the other IP version")
		}
		if len(l4) < 8 {
			return bad("ICMP header cut short")
		}
		p.ICMPType, p.ICMPCode = l4[0], l4[1]
		if p.Unreachable() {
			var q Packet
			var ttl uint8
			var id uint16
			qp, ql4, err := parseIP(l4[8:], &q.Flow, &ttl, &id)
			if err == nil && parseL4(qp, ql4, total, &q, true) == nil && q.Proto != ICMP {
				p.Quoted = q.Flow
			}
		}
	default:
		return bad(fmt.Sprintf("protocol %d", proto))
	}
	return nil
}

// sackAndTimestamps reports whether TCP options offer both SACK (kind 4)
// and timestamps (kind 8).
func sackAndTimestamps(opts []byte) bool {
	var sack, ts bool
	for len(opts) > 0 {
		kind := opts[0]
		if kind == 0 {
			break
		}
		if kind == 1 {
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || opts[1] < 2 || int(opts[1]) > len(opts) {
			break
		}
		switch kind {
		case 4:
			sack = true
		case 8:
			ts = true
		}
		opts = opts[opts[1]:]
	}
	return sack && ts
}
