// Package payloads holds the UDP probe payloads of portkit's UDP engine:
// for a port where a service is known to answer only a well-formed
// request, a minimal request of that protocol, written from its
// specification; elsewhere an empty datagram. Each payload is chosen to
// draw a reply from any implementation, and a small one: a probe, not a
// query for data.
package payloads

import (
	"encoding/binary"
	"slices"
	"sync"
)

// Payload is one probe payload and the ports it is sent to.
type Payload struct {
	Name   string   // the protocol's short name
	Ports  []uint16 // ascending
	Source string   // the specification it is written from, and what it asks
	Data   []byte
}

// For returns the payload to send to UDP port, or nil for an empty
// datagram. The bytes are shared: the caller must not modify them.
func For(port uint16) []byte { return table().byPort[port] }

// Table lists every payload, ordered by first port. The Ports and Data
// slices are shared: the caller must not modify them.
func Table() []Payload { return slices.Clone(table().list) }

type index struct {
	list   []Payload
	byPort map[uint16][]byte
}

// table is built once, on first use, and only read after.
var table = sync.OnceValue(func() index {
	ike := ikeSAInit()
	list := []Payload{
		{"rpcbind", []uint16{111}, "RFC 5531 §9, RFC 1833: ONC RPC NULL call to the portmapper, program 100000 version 2", rpcNull(100000, 2)},
		{"nfs", []uint16{2049}, "RFC 5531 §9, RFC 1813: ONC RPC NULL call to NFS, program 100003 version 3", rpcNull(100003, 3)},
		{"dns", []uint16{53}, "RFC 1035 §4.1: standard query for the root's NS records, no recursion", dnsQuery(0x706b, 0, nil, 2, 1)},
		{"mdns", []uint16{5353}, "RFC 6762 §6.7, RFC 6763 §9: one-shot unicast query for _services._dns-sd._udp.local PTR", dnsQuery(0x706b, 0, []string{"_services", "_dns-sd", "_udp", "local"}, 12, 1)},
		{"ntp", []uint16{123}, "RFC 5905 §7.3: NTPv4 client (mode 3) request", ntpRequest()},
		{"netbios-ns", []uint16{137}, "RFC 1002 §4.2.18: NODE STATUS REQUEST (NBSTAT) for the wildcard name *", nbstat()},
		{"snmp", []uint16{161}, "RFC 3416 §3, RFC 1157 §4, X.690 BER: SNMPv2c GetRequest for sysDescr.0, community public", snmpGet(1, "public", sysDescr)},
		{"xdmcp", []uint16{177}, "X Display Manager Control Protocol 1.1 (X.Org): Query with no authentication names", xdmcpQuery()},
		{"quic", []uint16{443, 853}, "RFC 9000 §6, §15, §14.1, RFC 8999: 1200-byte long header with the reserved version 0x1a2a3a4a, drawing Version Negotiation", quicVersionProbe()},
		{"ike", []uint16{500}, "RFC 7296 §1.2, §3: IKEv2 IKE_SA_INIT with SA (AES-CBC-128, HMAC-SHA2-256, group 14), KE and Nonce", ike},
		{"rip", []uint16{520}, "RFC 2453 §3.9.1: RIPv2 request for the whole routing table", ripRequest()},
		{"asf-rmcp", []uint16{623}, "DMTF DSP0136 (ASF 2.0) §3.2.4.1: RMCP presence ping", rmcpPing()},
		{"ms-sql-m", []uint16{1434}, "Microsoft [MC-SQLR] §2.2.2: SQL Server Browser CLNT_UCAST_EX", []byte{0x03}},
		{"ssdp", []uint16{1900}, "UPnP Device Architecture 1.1 §1.3.2: M-SEARCH for ssdp:all", []byte(ssdpSearch)},
		{"dtls", []uint16{3391, 5349, 5684, 6514}, "RFC 6347 §4.1, §4.2, RFC 5246 §7.4.1.2: DTLS 1.2 ClientHello, drawing HelloVerifyRequest or ServerHello", dtlsClientHello()},
		{"stun", []uint16{3478}, "RFC 8489 §5, §6: STUN Binding request", stunBinding()},
		{"ipsec-nat-t", []uint16{4500}, "RFC 3948 §2.2, RFC 7296 §2.23: the IKE_SA_INIT after the 4-byte non-ESP marker", append([]byte{0, 0, 0, 0}, ike...)},
		{"sip", []uint16{5060}, "RFC 3261 §11, RFC 3581: OPTIONS request, answered to the source port (rport)", []byte(sipOptions)},
		{"nat-pmp", []uint16{5351}, "RFC 6886 §3.2: NAT-PMP external address request (PCP servers, RFC 6887, answer it too)", []byte{0, 0}},
		{"coap", []uint16{5683}, "RFC 7252 §3, §4.3: empty Confirmable message (CoAP ping), drawing a Reset", []byte{0x40, 0x00, 0x70, 0x6b}},
		{"memcache", []uint16{11211}, "memcached protocol.txt, UDP protocol: frame header and the version command", memcachedVersion()},
	}
	slices.SortFunc(list, func(a, b Payload) int { return int(a.Ports[0]) - int(b.Ports[0]) })
	byPort := map[uint16][]byte{}
	for _, p := range list {
		for _, port := range p.Ports {
			byPort[port] = p.Data
		}
	}
	return index{list, byPort}
})

// dnsQuery is a DNS message (RFC 1035 §4.1) with one question for name
// (nil for the root) of qtype and qclass.
func dnsQuery(id, flags uint16, name []string, qtype, qclass uint16) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = binary.BigEndian.AppendUint16(b, flags)
	b = append(b, 0, 1, 0, 0, 0, 0, 0, 0) // QDCOUNT 1, no answers, authority or additional records
	for _, label := range name {
		b = append(b, byte(len(label)))
		b = append(b, label...)
	}
	b = append(b, 0)
	b = binary.BigEndian.AppendUint16(b, qtype)
	return binary.BigEndian.AppendUint16(b, qclass)
}

// ntpRequest is an NTPv4 client packet (RFC 5905 §7.3): leap indicator 3
// (unsynchronized), version 4, mode 3, and a transmit timestamp, which the
// server copies into its reply's origin timestamp. The timestamp need not
// be the time: a client may send any value there (RFC 5905 §8, the
// "bogus" check is the client's).
func ntpRequest() []byte {
	b := make([]byte, 48)
	b[0] = 3<<6 | 4<<3 | 3
	b[2] = 6    // poll: 2^6 s
	b[3] = 0xec // precision: 2^-20 s
	copy(b[40:], "portkit!")
	return b
}

// nbstat is a NetBIOS name service NODE STATUS REQUEST (RFC 1002
// §4.2.18) for "*": the name padded with NULs to 16 bytes, each half-byte
// encoded as a letter from 'A' (RFC 1001 §14.1).
func nbstat() []byte {
	b := []byte{0x70, 0x6b, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0} // transaction ID, query, QDCOUNT 1
	var name [16]byte
	name[0] = '*'
	b = append(b, 32)
	for _, c := range name {
		b = append(b, 'A'+c>>4, 'A'+c&0x0f)
	}
	b = append(b, 0)
	return append(b, 0, 0x21, 0, 1) // NBSTAT, IN
}

// sysDescr is the OID 1.3.6.1.2.1.1.1.0 (RFC 1213).
var sysDescr = []uint32{1, 3, 6, 1, 2, 1, 1, 1, 0}

// snmpGet is an SNMP message (RFC 1157 §4, RFC 3416 §3) of version (0
// for v1, 1 for v2c) and community carrying a GetRequest-PDU for oid,
// encoded in BER (X.690).
func snmpGet(version int, community string, oid []uint32) []byte {
	varbind := tlv(0x30, append(tlv(0x06, encodeOID(oid)), 0x05, 0x00)) // name, value NULL
	pdu := tlv(0xa0, concat(                                            // GetRequest-PDU, [0] IMPLICIT
		tlv(0x02, []byte{0x70, 0x6b, 0x69, 0x74}), // request-id
		tlv(0x02, []byte{0}),                      // error-status
		tlv(0x02, []byte{0}),                      // error-index
		tlv(0x30, varbind),                        // variable-bindings
	))
	return tlv(0x30, concat(tlv(0x02, []byte{byte(version)}), tlv(0x04, []byte(community)), pdu))
}

// tlv is a BER tag, length (short or long form) and value.
func tlv(tag byte, v []byte) []byte {
	b := []byte{tag}
	switch n := len(v); {
	case n < 0x80:
		b = append(b, byte(n))
	case n <= 0xff:
		b = append(b, 0x81, byte(n))
	default:
		b = append(b, 0x82, byte(n>>8), byte(n))
	}
	return append(b, v...)
}

// encodeOID is the BER contents of an OBJECT IDENTIFIER: the first two
// arcs in one number, then each arc in base 128, high bit set on all but
// the last byte.
func encodeOID(arcs []uint32) []byte {
	var b []byte
	put := func(v uint32) {
		var tmp [5]byte
		i := len(tmp) - 1
		tmp[i] = byte(v & 0x7f)
		for v >>= 7; v > 0; v >>= 7 {
			i--
			tmp[i] = byte(v&0x7f) | 0x80
		}
		b = append(b, tmp[i:]...)
	}
	put(arcs[0]*40 + arcs[1])
	for _, a := range arcs[2:] {
		put(a)
	}
	return b
}

func concat(parts ...[]byte) []byte { return slices.Concat(parts...) }

// xdmcpQuery is an XDMCP Query: version 1, opcode Query (2), length of
// what follows, and an empty list of authentication names.
func xdmcpQuery() []byte { return []byte{0, 1, 0, 2, 0, 1, 0} }

// quicVersionProbe is a QUIC long-header packet of a reserved version
// (RFC 9000 §15: versions 0x?a?a?a?a are never supported, to exercise
// version negotiation), with connection IDs of 8 bytes and padded to the
// 1200 bytes a server needs to see before it answers (RFC 9000 §14.1). A
// server reads only the version-independent fields (RFC 8999) and answers
// with a Version Negotiation packet (RFC 9000 §6, §17.2.1).
func quicVersionProbe() []byte {
	b := []byte{0xc0}                                        // long header, fixed bit, type Initial
	b = append(b, 0x1a, 0x2a, 0x3a, 0x4a)                    // version
	b = append(b, 8, 'p', 'k', 'd', 'c', 'i', 'd', '0', '1') // destination connection ID
	b = append(b, 8, 'p', 'k', 's', 'c', 'i', 'd', '0', '1') // source connection ID
	return append(b, make([]byte, 1200-len(b))...)
}

// ikeSAInit is an IKEv2 IKE_SA_INIT request (RFC 7296 §1.2): header, SA
// payload with one proposal, KE payload for group 14 and a Nonce. A
// responder answers with its own IKE_SA_INIT, or with a notification
// (INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN, COOKIE): a reply either way.
func ikeSAInit() []byte {
	const (
		payloadSA    = 33
		payloadKE    = 34
		payloadNonce = 40
		group14      = 14 // 2048-bit MODP (RFC 3526)
	)
	transform := func(last bool, typ byte, id uint16, attrs []byte) []byte {
		more := byte(3)
		if last {
			more = 0
		}
		b := []byte{more, 0, 0, 0, typ, 0}
		b = binary.BigEndian.AppendUint16(b, id)
		b = append(b, attrs...)
		binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
		return b
	}
	transforms := concat(
		transform(false, 1, 12, []byte{0x80, 14, 0, 128}), // ENCR_AES_CBC, key length 128 (TV attribute)
		transform(false, 2, 5, nil),                       // PRF_HMAC_SHA2_256
		transform(false, 3, 12, nil),                      // AUTH_HMAC_SHA2_256_128
		transform(true, 4, group14, nil),                  // D-H group 14
	)
	proposal := append([]byte{0, 0, 0, 0, 1, 1, 0, 4}, transforms...) // last, length, #1, IKE, no SPI, 4 transforms
	binary.BigEndian.PutUint16(proposal[2:], uint16(len(proposal)))

	payload := func(next byte, body []byte) []byte {
		b := []byte{next, 0, 0, 0}
		binary.BigEndian.PutUint16(b[2:], uint16(4+len(body)))
		return append(b, body...)
	}
	// The public value g^1 = 2 of group 14, left-padded to the group's
	// 256 bytes: a valid element; the probe never completes the exchange.
	ke := make([]byte, 4+256)
	binary.BigEndian.PutUint16(ke, group14)
	ke[len(ke)-1] = 2
	nonce := []byte("portkit IKE_SA_INIT probe nonce!") // 32 bytes; at least 16 (§2.10)

	body := concat(payload(payloadKE, proposal), payload(payloadNonce, ke), payload(0, nonce))
	hdr := []byte("pkIKEspi")                                // initiator SPI
	hdr = append(hdr, make([]byte, 8)...)                    // responder SPI: zero in IKE_SA_INIT
	hdr = append(hdr, payloadSA, 0x20, 34, 0x08, 0, 0, 0, 0) // next, version 2.0, IKE_SA_INIT, Initiator, message ID 0
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(28+len(body)))
	return append(hdr, body...)
}

// ripRequest is a RIPv2 request with one entry of address family 0 and
// metric 16 (infinity): a request for the whole table, which a router
// answers to the requester's port (RFC 2453 §3.9.1).
func ripRequest() []byte {
	b := []byte{1, 2, 0, 0} // request, version 2
	b = append(b, make([]byte, 16)...)
	return binary.BigEndian.AppendUint32(b, 16)
}

// rmcpPing is an RMCP header (version 6, no acknowledgement, class ASF)
// and an ASF Presence Ping (IANA enterprise 4542, type 0x80).
func rmcpPing() []byte {
	return []byte{0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x80, 0x70, 0x00, 0x00}
}

// ssdpSearch is an SSDP M-SEARCH. HOST names the multicast group, as
// devices expect even of a unicast search.
const ssdpSearch = "M-SEARCH * HTTP/1.1\r\n" +
	"HOST: 239.255.255.250:1900\r\n" +
	"MAN: \"ssdp:discover\"\r\n" +
	"MX: 1\r\n" +
	"ST: ssdp:all\r\n" +
	"\r\n"

// sipOptions is a SIP OPTIONS request. The Via's rport parameter (RFC
// 3581) makes the server answer to the source address and port, since
// the probe cannot know its own address when written.
const sipOptions = "OPTIONS sip:portkit.invalid SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP portkit.invalid;branch=z9hG4bK706b6974;rport\r\n" +
	"Max-Forwards: 70\r\n" +
	"From: <sip:portkit@portkit.invalid>;tag=706b6974\r\n" +
	"To: <sip:portkit.invalid>\r\n" +
	"Call-ID: 706b6974@portkit.invalid\r\n" +
	"CSeq: 1 OPTIONS\r\n" +
	"Contact: <sip:portkit@portkit.invalid>\r\n" +
	"Accept: application/sdp\r\n" +
	"Content-Length: 0\r\n" +
	"\r\n"

// rpcNull is an ONC RPC call (RFC 5531 §9) of procedure 0, NULL, which
// every program has, with AUTH_NONE credentials and verifier, in XDR.
func rpcNull(prog, vers uint32) []byte {
	var b []byte
	for _, w := range []uint32{
		0x706b6974, // xid
		0,          // CALL
		2,          // RPC version
		prog, vers,
		0,    // procedure NULL
		0, 0, // credentials: AUTH_NONE, no body
		0, 0, // verifier: AUTH_NONE, no body
	} {
		b = binary.BigEndian.AppendUint32(b, w)
	}
	return b
}

// stunBinding is a STUN Binding request: type 0x0001, no attributes,
// the magic cookie, and a 96-bit transaction ID.
func stunBinding() []byte {
	b := []byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42}
	return append(b, "portkit-stun"...)
}

// dtlsClientHello is a DTLS 1.2 ClientHello in one record (RFC 6347
// §4.1, §4.2.2) with an empty cookie: a server answers with a
// HelloVerifyRequest carrying a cookie (§4.2.1), or its ServerHello, or an
// alert. The record layer says DTLS 1.0 as clients do for the first
// flight, the hello DTLS 1.2.
func dtlsClientHello() []byte {
	suites := []uint16{
		0xc02b, // TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (RFC 5289)
		0xc02f, // TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 (RFC 5289)
		0xc0ae, // TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 (RFC 7251), CoAP's
		0xc0a8, // TLS_PSK_WITH_AES_128_CCM_8 (RFC 6655), CoAP's
		0x009c, // TLS_RSA_WITH_AES_128_GCM_SHA256 (RFC 5288)
		0x002f, // TLS_RSA_WITH_AES_128_CBC_SHA (RFC 5246)
	}
	ext := func(typ uint16, data []byte) []byte {
		b := binary.BigEndian.AppendUint16(nil, typ)
		b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
		return append(b, data...)
	}
	exts := concat(
		ext(10, []byte{0, 4, 0, 29, 0, 23}),     // supported_groups: x25519, secp256r1 (RFC 8422)
		ext(11, []byte{1, 0}),                   // ec_point_formats: uncompressed (RFC 8422)
		ext(13, []byte{0, 6, 4, 3, 8, 4, 4, 1}), // signature_algorithms (RFC 8446 §4.2.3 code points)
	)
	hello := []byte{0xfe, 0xfd}                                  // client_version DTLS 1.2
	hello = append(hello, "portkit DTLS ClientHello random!"...) // 32 bytes
	hello = append(hello, 0, 0)                                  // session_id, cookie: empty
	hello = binary.BigEndian.AppendUint16(hello, uint16(2*len(suites)))
	for _, s := range suites {
		hello = binary.BigEndian.AppendUint16(hello, s)
	}
	hello = append(hello, 1, 0) // compression: null
	hello = binary.BigEndian.AppendUint16(hello, uint16(len(exts)))
	hello = append(hello, exts...)

	n := len(hello)
	hs := []byte{1, byte(n >> 16), byte(n >> 8), byte(n)} // client_hello, length
	hs = append(hs, 0, 0)                                 // message_seq
	hs = append(hs, 0, 0, 0)                              // fragment_offset
	hs = append(hs, byte(n>>16), byte(n>>8), byte(n))     // fragment_length: all of it
	hs = append(hs, hello...)

	rec := []byte{22, 0xfe, 0xff, 0, 0, 0, 0, 0, 0, 0, 0} // handshake, DTLS 1.0, epoch 0, sequence 0
	rec = binary.BigEndian.AppendUint16(rec, uint16(len(hs)))
	return append(rec, hs...)
}

// memcachedVersion is the memcached UDP frame header (request ID,
// sequence number 0, 1 datagram, reserved) and the version command:
// its answer is one short line, where stats would draw kilobytes.
func memcachedVersion() []byte {
	return append([]byte{0x70, 0x6b, 0, 0, 0, 1, 0, 0}, "version\r\n"...)
}
