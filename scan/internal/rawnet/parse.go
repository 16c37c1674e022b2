package rawnet

import (
	"encoding/binary"
	"net/netip"
)

// Reply is a packet read back from the network: a TCP segment, a UDP
// datagram or an ICMP error. Fields that do not apply to its protocol are
// zero.
type Reply struct {
	Src, Dst netip.Addr // the outer IP header's addresses
	TTL      uint8      // TTL or hop limit
	Proto    uint8      // ProtoTCP, ProtoUDP, ProtoICMP or ProtoICMPv6

	SrcPort, DstPort uint16   // TCP and UDP
	Seq, Ack         uint32   // TCP
	Flags            TCPFlags // TCP
	Window           uint16   // TCP

	// Payload is the TCP or UDP payload as captured, which may be cut short
	// of PayloadLen; it shares the packet's memory.
	Payload    []byte
	PayloadLen int

	ICMPType, ICMPCode uint8 // ICMP and ICMPv6 errors
	// Orig is the header of the packet an ICMP error is about, as quoted in
	// the error.
	Orig Original
}

// Original is the start of the packet quoted in an ICMP error: RFC 792 and
// RFC 4443 quote at least the IP header and 8 bytes of the transport header,
// which hold the ports and, for TCP, the sequence number.
type Original struct {
	Proto            uint8
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Seq              uint32 // TCP
}

// Flow names a probe by its two ends and protocol.
type Flow struct {
	Proto  uint8          // ProtoTCP or ProtoUDP
	Local  netip.AddrPort // portkit's end
	Remote netip.AddrPort // the target's end
}

// Flow returns the probe the reply answers: for TCP and UDP the reply's
// ends reversed, for an ICMP error the quoted packet's.
func (r *Reply) Flow() Flow {
	if r.Proto == ProtoICMP || r.Proto == ProtoICMPv6 {
		o := &r.Orig
		return Flow{o.Proto, netip.AddrPortFrom(o.Src, o.SrcPort), netip.AddrPortFrom(o.Dst, o.DstPort)}
	}
	return Flow{r.Proto, netip.AddrPortFrom(r.Dst, r.DstPort), netip.AddrPortFrom(r.Src, r.SrcPort)}
}

// Kind is what a reply says about the probe it answers. Mapped to port
// states the way nmap does: a SYN-ACK or a UDP reply means open; a RST
// means closed, and so does a port unreachable for a UDP probe; other
// unreachables, and a port unreachable for a TCP probe, mean filtered.
type Kind uint8

const (
	KindOther           Kind = iota // says nothing about a port (e.g. a bare ACK)
	KindSynAck                      // TCP SYN and ACK
	KindReset                       // TCP RST
	KindUDP                         // a UDP datagram
	KindPortUnreachable             // ICMP port unreachable
	KindUnreachable                 // another ICMP destination unreachable
	KindTimeExceeded                // ICMP time exceeded
	KindICMPError                   // another ICMP error (parameter problem, packet too big, source quench)
)

// Kind classifies the reply.
func (r *Reply) Kind() Kind {
	switch r.Proto {
	case ProtoTCP:
		switch {
		case r.Flags&FlagRST != 0:
			return KindReset
		case r.Flags&(FlagSYN|FlagACK) == FlagSYN|FlagACK:
			return KindSynAck
		}
	case ProtoUDP:
		return KindUDP
	case ProtoICMP:
		switch r.ICMPType {
		case icmpUnreachable:
			if r.ICMPCode == 3 {
				return KindPortUnreachable
			}
			return KindUnreachable
		case icmpTimeExceeded:
			return KindTimeExceeded
		}
		return KindICMPError
	case ProtoICMPv6:
		switch r.ICMPType {
		case icmp6Unreachable:
			if r.ICMPCode == 4 {
				return KindPortUnreachable
			}
			return KindUnreachable
		case icmp6TimeExceeded:
			return KindTimeExceeded
		}
		return KindICMPError
	}
	return KindOther
}

// Reason names the reply in nmap's words: "syn-ack", "reset",
// "udp-response", "port-unreach", "host-unreach", "net-unreach",
// "proto-unreach", "admin-prohibited", "time-exceeded", or "icmp-error".
func (r *Reply) Reason() string {
	switch r.Kind() {
	case KindSynAck:
		return "syn-ack"
	case KindReset:
		return "reset"
	case KindUDP:
		return "udp-response"
	case KindPortUnreachable:
		return "port-unreach"
	case KindTimeExceeded:
		return "time-exceeded"
	case KindUnreachable:
		if r.Proto == ProtoICMP {
			switch r.ICMPCode {
			case 0, 6, 11: // network unreachable, unknown, unreachable for TOS
				return "net-unreach"
			case 2:
				return "proto-unreach"
			case 9, 10, 13: // network, host or communication administratively prohibited
				return "admin-prohibited"
			}
			return "host-unreach"
		}
		switch r.ICMPCode {
		case 0: // no route to destination
			return "net-unreach"
		case 1, 5, 6: // administratively prohibited, failed ingress/egress policy, reject route
			return "admin-prohibited"
		}
		return "host-unreach"
	case KindICMPError:
		return "icmp-error"
	}
	return ""
}

// ICMP error types rawnet reads (RFC 792, RFC 4443).
const (
	icmpUnreachable  = 3
	icmpSourceQuench = 4
	icmpTimeExceeded = 11
	icmpParamProblem = 12

	icmp6Unreachable  = 1
	icmp6TooBig       = 2
	icmp6TimeExceeded = 3
	icmp6ParamProblem = 4
)

// ParseError says why a packet is not a reply rawnet reads.
type ParseError string

func (e ParseError) Error() string { return "rawnet: " + string(e) }

const (
	errShort       ParseError = "packet too short"
	errVersion     ParseError = "not IPv4 or IPv6"
	errIPv4Header  ParseError = "bad IPv4 header length"
	errFragment    ParseError = "a fragment other than the first"
	errProto       ParseError = "not TCP, UDP or ICMP"
	errTCPHeader   ParseError = "bad TCP header length"
	errNotICMPErr  ParseError = "not an ICMP error"
	errQuoted      ParseError = "ICMP error quotes too little of its packet"
	errQuotedProto ParseError = "ICMP error is about neither TCP nor UDP"
)

// ParseReply parses pkt, which starts at the IP header, into r. Ethernet
// padding after the IP packet is ignored; of a packet cut short by the
// capture, PayloadLen still tells the length its headers give. r's Payload
// shares pkt's memory.
func ParseReply(pkt []byte, r *Reply) error {
	*r = Reply{}
	ip, body, n, err := parseIP(pkt)
	if err != nil {
		return err
	}
	r.Src, r.Dst, r.Proto, r.TTL = ip.src, ip.dst, ip.proto, ip.ttl
	switch r.Proto {
	case ProtoTCP:
		if len(body) < TCPHeaderLen {
			return errShort
		}
		off := int(body[12]>>4) * 4
		if off < TCPHeaderLen || off > len(body) {
			return errTCPHeader
		}
		r.SrcPort = binary.BigEndian.Uint16(body)
		r.DstPort = binary.BigEndian.Uint16(body[2:])
		r.Seq = binary.BigEndian.Uint32(body[4:])
		r.Ack = binary.BigEndian.Uint32(body[8:])
		r.Flags = TCPFlags(body[13])
		r.Window = binary.BigEndian.Uint16(body[14:])
		r.Payload, r.PayloadLen = body[off:], n-off
	case ProtoUDP:
		if len(body) < UDPHeaderLen {
			return errShort
		}
		r.SrcPort = binary.BigEndian.Uint16(body)
		r.DstPort = binary.BigEndian.Uint16(body[2:])
		r.Payload = body[UDPHeaderLen:]
		r.PayloadLen = min(int(binary.BigEndian.Uint16(body[4:])), n) - UDPHeaderLen
		if r.PayloadLen < 0 {
			return errShort
		}
	case ProtoICMP, ProtoICMPv6:
		if len(body) < 8 {
			return errShort
		}
		r.ICMPType, r.ICMPCode = body[0], body[1]
		if !isICMPError(r.Proto, r.ICMPType) {
			return errNotICMPErr
		}
		return parseQuoted(body[8:], r.Proto, &r.Orig)
	default:
		return errProto
	}
	if len(r.Payload) > r.PayloadLen {
		r.Payload = r.Payload[:r.PayloadLen]
	}
	return nil
}

type ipHeader struct {
	src, dst   netip.Addr
	proto, ttl uint8
}

// parseIP reads the IP header at the start of pkt and returns it, what
// follows it as captured, and the length of what follows by the header.
// IPv6 extension headers are not followed: the receive filter passes only
// packets whose transport header comes first.
func parseIP(pkt []byte) (h ipHeader, body []byte, n int, err error) {
	if len(pkt) < 1 {
		return h, nil, 0, errShort
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < IPv4HeaderLen {
			return h, nil, 0, errShort
		}
		ihl := int(pkt[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(pkt[2:]))
		if ihl < IPv4HeaderLen || ihl > len(pkt) || total < ihl {
			return h, nil, 0, errIPv4Header
		}
		if binary.BigEndian.Uint16(pkt[6:])&0x1fff != 0 {
			return h, nil, 0, errFragment
		}
		h = ipHeader{netip.AddrFrom4([4]byte(pkt[12:16])), netip.AddrFrom4([4]byte(pkt[16:20])), pkt[9], pkt[8]}
		if total < len(pkt) {
			pkt = pkt[:total] // link-layer padding
		}
		return h, pkt[ihl:], total - ihl, nil
	case 6:
		if len(pkt) < IPv6HeaderLen {
			return h, nil, 0, errShort
		}
		h = ipHeader{netip.AddrFrom16([16]byte(pkt[8:24])), netip.AddrFrom16([16]byte(pkt[24:40])), pkt[6], pkt[7]}
		n := int(binary.BigEndian.Uint16(pkt[4:]))
		body := pkt[IPv6HeaderLen:]
		if n < len(body) {
			body = body[:n]
		}
		return h, body, n, nil
	}
	return h, nil, 0, errVersion
}

func isICMPError(proto, typ uint8) bool {
	if proto == ProtoICMP {
		return typ == icmpUnreachable || typ == icmpSourceQuench || typ == icmpTimeExceeded || typ == icmpParamProblem
	}
	return typ == icmp6Unreachable || typ == icmp6TooBig || typ == icmp6TimeExceeded || typ == icmp6ParamProblem
}

// parseQuoted reads the packet quoted in an ICMP error: an IP header of the
// ICMP version's family and the first 8 bytes of a TCP or UDP header.
func parseQuoted(q []byte, icmp uint8, o *Original) error {
	ip, body, _, err := parseIP(q)
	if err != nil || ip.src.Is4() != (icmp == ProtoICMP) || len(body) < 8 {
		return errQuoted
	}
	if ip.proto != ProtoTCP && ip.proto != ProtoUDP {
		return errQuotedProto
	}
	o.Proto, o.Src, o.Dst = ip.proto, ip.src, ip.dst
	o.SrcPort = binary.BigEndian.Uint16(body)
	o.DstPort = binary.BigEndian.Uint16(body[2:])
	if o.Proto == ProtoTCP {
		o.Seq = binary.BigEndian.Uint32(body[4:])
	}
	return nil
}
