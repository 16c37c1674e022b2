package service

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
)

// Directory, naming and Windows protocols: LDAP, DNS, RDP, SMB2.

// ldapDetector reads the root DSE (RFC 4512 §5.1) with a base search
// (RFC 4511 §4.5.1) for every user and operational attribute, then asks
// StartTLS (RFC 4511 §4.14) for the certificate.
var ldapDetector = &detector{name: "ldap", ports: []uint16{389, 636}, probe: func(s *session) (Result, bool) {
	b := s.exchange(ldapRootDSE, ldapDone)
	msgs := berSplit(b)
	if len(msgs) == 0 {
		return Result{}, false
	}
	id, op, ok := ldapHead(msgs[0])
	if !ok || id != 1 || op != 0x64 && op != 0x65 {
		return Result{}, false
	}
	r := Result{Service: "ldap", Confidence: 10, Evidence: "LDAP SearchResult for the root DSE"}
	text := string(b)
	for _, vendor := range []struct{ mark, product string }{
		{"OpenLDAProotDSE", "OpenLDAP"}, {"389 Project", "389 Directory Server"}, {"Active Directory", "Microsoft Active Directory"},
	} {
		if strings.Contains(text, vendor.mark) {
			r.Product = vendor.product
		}
	}
	if !strings.Contains(text, "1.3.6.1.4.1.1466.20037") || s.tls != nil {
		return r, true
	}
	s.reset()
	reply := s.exchange(ldapStartTLS, ldapDone)
	if msgs := berSplit(reply); len(msgs) > 0 {
		if _, op, ok := ldapHead(msgs[0]); ok && op == 0x78 && ldapResultCode(msgs[0]) == 0 {
			upgrade(s, &r, "ldap")
		}
	}
	return r, true
}}

// ldapRootDSE is LDAPMessage{1, SearchRequest{"", baseObject, never, 0,
// 0, FALSE, present objectClass, {"*", "+"}}}.
var ldapRootDSE = []byte{
	0x30, 0x2b, 0x02, 0x01, 0x01, 0x63, 0x26,
	0x04, 0x00, 0x0a, 0x01, 0x00, 0x0a, 0x01, 0x00, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x01, 0x01, 0x00,
	0x87, 0x0b, 'o', 'b', 'j', 'e', 'c', 't', 'C', 'l', 'a', 's', 's',
	0x30, 0x06, 0x04, 0x01, '*', 0x04, 0x01, '+',
}

// ldapStartTLS is LDAPMessage{2, ExtendedRequest{requestName StartTLS}}.
var ldapStartTLS = append([]byte{0x30, 0x1d, 0x02, 0x01, 0x02, 0x77, 0x18, 0x80, 0x16}, "1.3.6.1.4.1.1466.20037"...)

// ldapDone reports that a SearchResultDone or ExtendedResponse came, or
// anything not LDAP.
func ldapDone(b []byte) bool {
	msgs := berSplit(b)
	for _, m := range msgs {
		_, op, ok := ldapHead(m)
		if !ok || op == 0x65 || op == 0x78 {
			return true
		}
	}
	return len(b) > 0 && b[0] != 0x30
}

// berSplit cuts whole BER SEQUENCEs off the front of b.
func berSplit(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 2 && b[0] == 0x30 {
		n, hl, ok := berLen(b[1:])
		if !ok || 1+hl+n > len(b) {
			break
		}
		out = append(out, b[:1+hl+n])
		b = b[1+hl+n:]
	}
	return out
}

// berLen reads a BER length (X.690 §8.1.3): its value and size.
func berLen(b []byte) (n, size int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	if b[0] < 0x80 {
		return int(b[0]), 1, true
	}
	k := int(b[0] & 0x7f)
	if k == 0 || k > 3 || len(b) < 1+k {
		return 0, 0, false
	}
	for _, c := range b[1 : 1+k] {
		n = n<<8 | int(c)
	}
	return n, 1 + k, true
}

// ldapHead reads an LDAPMessage's messageID and protocolOp tag.
func ldapHead(m []byte) (id int, op byte, ok bool) {
	_, hl, ok := berLen(m[1:])
	if !ok {
		return 0, 0, false
	}
	p := m[1+hl:]
	if len(p) < 3 || p[0] != 0x02 || int(p[1]) > 4 || len(p) < 2+int(p[1])+1 {
		return 0, 0, false
	}
	for _, c := range p[2 : 2+int(p[1])] {
		id = id<<8 | int(c)
	}
	return id, p[2+int(p[1])], true
}

// ldapResultCode reads an LDAPResult's resultCode, -1 if unreadable.
func ldapResultCode(m []byte) int {
	_, hl, _ := berLen(m[1:])
	p := m[1+hl:]
	p = p[2+int(p[1]):] // past messageID
	_, hl, ok := berLen(p[1:])
	if !ok || len(p) < 1+hl+3 {
		return -1
	}
	p = p[1+hl:]
	if p[0] != 0x0a || p[1] != 1 {
		return -1
	}
	return int(p[2])
}

// dnsVersionQuery is a DNS query (RFC 1035 §4.1) for version.bind, TXT,
// class CHAOS: the name servers that answer it give their version.
var dnsVersionQuery = []byte{0x70, 0x6b, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
	7, 'v', 'e', 'r', 's', 'i', 'o', 'n', 4, 'b', 'i', 'n', 'd', 0, 0, 16, 0, 3}

// dnsTCPDetector sends the query over TCP with its length prefix (RFC
// 1035 §4.2.2).
var dnsTCPDetector = &detector{name: "dns", ports: []uint16{53}, plainOnly: true, probe: func(s *session) (Result, bool) {
	q := binary.BigEndian.AppendUint16(nil, uint16(len(dnsVersionQuery)))
	b := s.exchange(append(q, dnsVersionQuery...), func(b []byte) bool {
		return len(b) >= 2 && len(b) >= 2+int(binary.BigEndian.Uint16(b))
	})
	if len(b) < 2 {
		return Result{}, false
	}
	return parseDNSVersion(b[2:])
}}

// parseDNSVersion recognises the reply to dnsVersionQuery and reads the
// TXT answer.
func parseDNSVersion(b []byte) (Result, bool) {
	if len(b) < 12 || b[0] != 0x70 || b[1] != 0x6b || b[2]&0x80 == 0 {
		return Result{}, false
	}
	rcode := b[3] & 0x0f
	r := Result{Service: "dns", Confidence: 8, Evidence: "reply to a version.bind query, rcode " + strconv.Itoa(int(rcode))}
	qd, an := binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:])
	p := 12
	for range qd {
		if p = skipName(b, p); p < 0 || p+4 > len(b) {
			return r, true
		}
		p += 4
	}
	for range an {
		if p = skipName(b, p); p < 0 || p+10 > len(b) {
			return r, true
		}
		typ, n := binary.BigEndian.Uint16(b[p:]), int(binary.BigEndian.Uint16(b[p+8:]))
		p += 10
		if p+n > len(b) {
			return r, true
		}
		if typ == 16 && n > 0 {
			l := int(b[p])
			if 1+l <= n {
				dnsProduct(string(b[p+1:p+1+l]), &r)
				return r, true
			}
		}
		p += n
	}
	return r, true
}

// skipName returns the offset after the name at p, or -1.
func skipName(b []byte, p int) int {
	for range 128 {
		if p >= len(b) {
			return -1
		}
		switch l := int(b[p]); {
		case l == 0:
			return p + 1
		case l&0xc0 == 0xc0:
			return p + 2
		default:
			p += 1 + l
		}
	}
	return -1
}

// dnsProduct reads the version.bind text of the common name servers.
func dnsProduct(txt string, r *Result) {
	r.Confidence, r.Evidence = 10, "version.bind: "+quote(txt)
	switch {
	case strings.HasPrefix(txt, "dnsmasq-"):
		r.Product, r.Version = "dnsmasq", strings.TrimPrefix(txt, "dnsmasq-")
	case strings.HasPrefix(txt, "unbound "):
		r.Product, r.Version = "Unbound", strings.TrimPrefix(txt, "unbound ")
	case strings.HasPrefix(txt, "PowerDNS "):
		f := strings.Fields(txt)
		r.Product, r.Version = strings.Join(f[:len(f)-1], " "), f[len(f)-1]
	case strings.HasPrefix(txt, "Knot DNS "):
		r.Product, r.Version = "Knot DNS", strings.TrimPrefix(txt, "Knot DNS ")
	case len(txt) > 0 && txt[0] >= '0' && txt[0] <= '9':
		r.Product = "BIND"
		r.Version, r.Info, _ = strings.Cut(txt, "-")
	default:
		r.Info = txt
	}
}

// rdpDetector sends an X.224 Connection Request with an RDP Negotiation
// Request ([MS-RDPBCGR] §2.2.1.1) asking TLS or CredSSP; the Connection
// Confirm says which, and then the TLS handshake gives the certificate.
var rdpDetector = &detector{name: "rdp", ports: []uint16{3389}, plainOnly: true, probe: func(s *session) (Result, bool) {
	req := []byte{0x03, 0, 0, 0x13, 0x0e, 0xe0, 0, 0, 0, 0, 0, 0x01, 0, 0x08, 0, 0x0b, 0, 0, 0}
	b := s.exchange(req, func(b []byte) bool { return len(b) >= 4 && len(b) >= int(binary.BigEndian.Uint16(b[2:])) })
	if len(b) < 11 || b[0] != 3 || b[1] != 0 || b[5] != 0xd0 {
		return Result{}, false
	}
	r := Result{Service: "rdp", Confidence: 10, Evidence: "X.224 Connection Confirm"}
	if len(b) >= 19 && b[11] == 0x02 {
		proto := binary.LittleEndian.Uint32(b[15:])
		r.Info = "security " + map[uint32]string{0: "standard RDP", 1: "TLS", 2: "CredSSP", 8: "CredSSP early auth"}[proto]
		if proto != 0 {
			s.reset()
			upgrade(s, &r, "rdp")
		}
	}
	return r, true
}}

// smbDetector sends an SMB2 NEGOTIATE ([MS-SMB2] §2.2.3) over NetBIOS
// session framing (RFC 1002 §4.3.1) offering dialects 2.0.2 to 3.0.2; the
// response names the dialect chosen.
var smbDetector = &detector{name: "smb", ports: []uint16{445, 139}, plainOnly: true, probe: func(s *session) (Result, bool) {
	hdr := make([]byte, 64)
	copy(hdr, "\xfeSMB")
	hdr[4] = 64
	hdr[14] = 1 // credits requested
	dialects := []uint16{0x0202, 0x0210, 0x0300, 0x0302}
	body := []byte{36, 0, byte(len(dialects)), 0, 1, 0, 0, 0, 0, 0, 0, 0}
	body = append(body, "portkit-smb-guid"...)
	body = append(body, 0, 0, 0, 0, 0, 0, 0, 0)
	for _, d := range dialects {
		body = binary.LittleEndian.AppendUint16(body, d)
	}
	msg := append(hdr, body...)
	pkt := append([]byte{0, 0, byte(len(msg) >> 8), byte(len(msg))}, msg...)
	b := s.exchange(pkt, func(b []byte) bool { return len(b) >= 4 && len(b) >= 4+int(binary.BigEndian.Uint32(b)&0xffffff) })
	if len(b) < 4+64+6 || b[0] != 0 {
		return Result{}, false
	}
	m := b[4:]
	switch {
	case bytes.HasPrefix(m, []byte("\xfeSMB")) && m[12] == 0 && m[13] == 0:
		d := binary.LittleEndian.Uint16(m[64+4:])
		return Result{Service: "smb", Confidence: 10, Info: "SMB2 dialect " + smbDialect(d),
			Evidence: "SMB2 NEGOTIATE response"}, true
	case bytes.HasPrefix(m, []byte("\xffSMB")):
		return Result{Service: "smb", Confidence: 8, Info: "SMB1 only", Evidence: "SMB1 reply to an SMB2 NEGOTIATE"}, true
	}
	return Result{}, false
}}

func smbDialect(d uint16) string {
	return strconv.Itoa(int(d>>8)) + "." + strconv.Itoa(int(d>>4&0xf)) + "." + strconv.Itoa(int(d&0xf))
}
