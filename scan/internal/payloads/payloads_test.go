package payloads

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	seen := map[uint16]string{}
	prev := -1
	for _, p := range Table() {
		if p.Name == "" || p.Source == "" || len(p.Data) == 0 || len(p.Ports) == 0 {
			t.Errorf("incomplete entry %+v", p)
		}
		if int(p.Ports[0]) <= prev {
			t.Errorf("%s: table not ordered by first port", p.Name)
		}
		prev = int(p.Ports[0])
		if !slices.IsSorted(p.Ports) {
			t.Errorf("%s: ports %v not ascending", p.Name, p.Ports)
		}
		for _, port := range p.Ports {
			if other, ok := seen[port]; ok {
				t.Errorf("port %d has two payloads: %s and %s", port, other, p.Name)
			}
			seen[port] = p.Name
			if !bytes.Equal(For(port), p.Data) {
				t.Errorf("For(%d) is not %s's payload", port, p.Name)
			}
		}
		if len(p.Data) > 1200 {
			t.Errorf("%s: %d bytes, more than one datagram on any link should carry", p.Name, len(p.Data))
		}
	}
	for _, port := range []uint16{0, 7, 9, 80, 65535} {
		if For(port) != nil {
			t.Errorf("For(%d) = %x, want nil (an empty datagram)", port, For(port))
		}
	}
	// Table hands out its own list.
	l := Table()
	l[0].Name = "changed"
	if Table()[0].Name == "changed" {
		t.Error("Table returns the package's own slice")
	}
}

// TestHandChecked compares three payloads with bytes worked out by hand
// from their specifications.
func TestHandChecked(t *testing.T) {
	for port, want := range map[uint16]string{
		// ID 706b, flags 0, QDCOUNT 1, the root (00), NS (0002), IN (0001).
		53: "706b" + "0000" + "0001000000000000" + "00" + "0002" + "0001",
		// SEQUENCE(41) { INTEGER 1, OCTET STRING "public", GetRequest(28) {
		// INTEGER 706b6974, INTEGER 0, INTEGER 0, SEQUENCE(14) { SEQUENCE(12)
		// { OID 1.3.6.1.2.1.1.1.0, NULL } } } }
		161: "3029" + "020101" + "0406" + hex.EncodeToString([]byte("public")) + "a01c" + "0204706b6974" + "020100" + "020100" +
			"300e" + "300c" + "06082b06010201010100" + "0500",
		// ID, query, QDCOUNT 1; 32, "*" → CK, 15 NULs → AA…, 0; NBSTAT, IN.
		137: "706b" + "0000" + "0001" + "000000000000" + "20" + hex.EncodeToString([]byte("CK"+strings.Repeat("A", 30))) + "00" + "00210001",
	} {
		if got := hex.EncodeToString(For(port)); got != want {
			t.Errorf("port %d:\n got %s\nwant %s", port, got, want)
		}
	}
}

// The decoders below read each payload back the way its receiver would,
// field by field, and check that every length agrees with what follows.

func TestDNS(t *testing.T) {
	for _, tt := range []struct {
		port          uint16
		name          string
		qtype, qclass uint16
	}{
		{53, ".", 2, 1}, // NS, IN
		{5353, "_services._dns-sd._udp.local.", 12, 1}, // PTR, IN
	} {
		b := For(tt.port)
		if len(b) < 12 {
			t.Fatalf("port %d: %d bytes", tt.port, len(b))
		}
		h := func(i int) uint16 { return binary.BigEndian.Uint16(b[i:]) }
		if flags := h(2); flags != 0 {
			t.Errorf("port %d: flags %#04x, want a standard query without recursion", tt.port, flags)
		}
		if qd, an, ns, ar := h(4), h(6), h(8), h(10); qd != 1 || an != 0 || ns != 0 || ar != 0 {
			t.Errorf("port %d: counts %d/%d/%d/%d, want 1/0/0/0", tt.port, qd, an, ns, ar)
		}
		name, rest, err := readName(b[12:])
		if err != nil {
			t.Fatalf("port %d: %v", tt.port, err)
		}
		if name != tt.name || len(rest) != 4 {
			t.Errorf("port %d: question %q with %d bytes after, want %q and 4", tt.port, name, len(rest), tt.name)
		}
		if qt, qc := binary.BigEndian.Uint16(rest), binary.BigEndian.Uint16(rest[2:]); qt != tt.qtype || qc != tt.qclass {
			t.Errorf("port %d: type %d class %d, want %d %d", tt.port, qt, qc, tt.qtype, tt.qclass)
		}
	}
}

// readName reads an uncompressed domain name (RFC 1035 §3.1).
func readName(b []byte) (string, []byte, error) {
	var labels []string
	for {
		if len(b) == 0 {
			return "", nil, fmt.Errorf("name runs past the message")
		}
		n := int(b[0])
		if n == 0 {
			return strings.Join(labels, ".") + ".", b[1:], nil
		}
		if n > 63 || len(b) < 1+n {
			return "", nil, fmt.Errorf("bad label length %d", n)
		}
		labels = append(labels, string(b[1:1+n]))
		b = b[1+n:]
	}
}

func TestNTP(t *testing.T) {
	b := For(123)
	if len(b) != 48 {
		t.Fatalf("%d bytes, want 48", len(b))
	}
	if li, vn, mode := b[0]>>6, b[0]>>3&7, b[0]&7; li != 3 || vn != 4 || mode != 3 {
		t.Errorf("LI %d VN %d mode %d, want 3 4 3 (unsynchronized NTPv4 client)", li, vn, mode)
	}
	if binary.BigEndian.Uint64(b[40:]) == 0 {
		t.Error("transmit timestamp zero: the server's origin timestamp would say nothing")
	}
	if !bytes.Equal(b[4:40], make([]byte, 36)) {
		t.Errorf("root delay, dispersion, reference ID and timestamps not zero: %x", b[4:40])
	}
}

func TestNetBIOS(t *testing.T) {
	b := For(137)
	if len(b) != 12+34+4 {
		t.Fatalf("%d bytes, want 50", len(b))
	}
	if binary.BigEndian.Uint16(b[2:]) != 0 || binary.BigEndian.Uint16(b[4:]) != 1 {
		t.Errorf("header %x, want a query with one question", b[:12])
	}
	if b[12] != 32 || b[45] != 0 {
		t.Fatalf("name length %d, terminator %d; want 32 and 0", b[12], b[45])
	}
	var name []byte
	for i := 13; i < 45; i += 2 {
		hi, lo := b[i]-'A', b[i+1]-'A'
		if hi > 15 || lo > 15 {
			t.Fatalf("name byte %q%q is not first-level encoded", b[i], b[i+1])
		}
		name = append(name, hi<<4|lo)
	}
	if want := append([]byte("*"), make([]byte, 15)...); !bytes.Equal(name, want) {
		t.Errorf("name %q, want * padded with NULs", name)
	}
	if q := b[46:]; !bytes.Equal(q, []byte{0, 0x21, 0, 1}) {
		t.Errorf("question type and class %x, want NBSTAT IN", q)
	}
}

func TestSNMP(t *testing.T) {
	msg, rest := readTLV(t, For(161))
	if len(rest) != 0 || msg.tag != 0x30 {
		t.Fatalf("message: tag %#x, %d bytes after it", msg.tag, len(rest))
	}
	fields := readAll(t, msg.value)
	if len(fields) != 3 {
		t.Fatalf("message has %d fields, want version, community, PDU", len(fields))
	}
	if v := fields[0]; v.tag != 0x02 || !bytes.Equal(v.value, []byte{1}) {
		t.Errorf("version %x, want INTEGER 1 (v2c)", v.value)
	}
	if c := fields[1]; c.tag != 0x04 || string(c.value) != "public" {
		t.Errorf("community %q, want OCTET STRING public", c.value)
	}
	pdu := fields[2]
	if pdu.tag != 0xa0 {
		t.Fatalf("PDU tag %#x, want GetRequest (0xa0)", pdu.tag)
	}
	pf := readAll(t, pdu.value)
	if len(pf) != 4 || pf[0].tag != 0x02 || pf[1].tag != 0x02 || pf[2].tag != 0x02 || pf[3].tag != 0x30 {
		t.Fatalf("PDU fields %+v, want request-id, error-status, error-index, bindings", pf)
	}
	if pf[0].value[0]&0x80 != 0 || !bytes.Equal(pf[1].value, []byte{0}) || !bytes.Equal(pf[2].value, []byte{0}) {
		t.Errorf("request-id %x (must be positive), error-status %x, error-index %x", pf[0].value, pf[1].value, pf[2].value)
	}
	binds := readAll(t, pf[3].value)
	if len(binds) != 1 || binds[0].tag != 0x30 {
		t.Fatalf("%d bindings, want 1", len(binds))
	}
	vb := readAll(t, binds[0].value)
	if len(vb) != 2 || vb[0].tag != 0x06 || vb[1].tag != 0x05 || len(vb[1].value) != 0 {
		t.Fatalf("binding %+v, want OID and NULL", vb)
	}
	if oid := decodeOID(vb[0].value); oid != "1.3.6.1.2.1.1.1.0" {
		t.Errorf("OID %s, want sysDescr.0", oid)
	}
}

func TestBER(t *testing.T) {
	for _, tt := range []struct {
		dotted string
		arcs   []uint32
		want   string
	}{
		{"1.3.6.1.2.1.1.1.0", []uint32{1, 3, 6, 1, 2, 1, 1, 1, 0}, "2b06010201010100"},
		{"1.3.6.1.4.1.311", []uint32{1, 3, 6, 1, 4, 1, 311}, "2b060104018237"}, // 311 = 2·128 + 55
		{"2.999.16384", []uint32{2, 999, 16384}, "8837818000"},                 // 2·40+999 = 1079 = 8·128+55; 16384 = 128²
	} {
		if got := hex.EncodeToString(encodeOID(tt.arcs)); got != tt.want {
			t.Errorf("encodeOID(%s) = %s, want %s", tt.dotted, got, tt.want)
		}
		if got := decodeOID(encodeOID(tt.arcs)); got != tt.dotted {
			t.Errorf("decodeOID(encodeOID(%s)) = %s", tt.dotted, got)
		}
	}
	for n, want := range map[int]string{0: "0400", 127: "047f", 128: "048180", 255: "0481ff", 256: "04820100", 300: "0482012c"} {
		if got := hex.EncodeToString(tlv(4, make([]byte, n))[:len(want)/2]); got != want {
			t.Errorf("tlv of %d bytes starts %s, want %s", n, got, want)
		}
	}
}

type ber struct {
	tag   byte
	value []byte
}

// readTLV reads one BER element with a definite length.
func readTLV(t *testing.T, b []byte) (ber, []byte) {
	t.Helper()
	if len(b) < 2 {
		t.Fatalf("BER element of %d bytes", len(b))
	}
	tag, n, b := b[0], int(b[1]), b[2:]
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 2 || len(b) < k {
			t.Fatalf("bad long length form %#x", n)
		}
		n = 0
		for _, c := range b[:k] {
			n = n<<8 | int(c)
		}
		if n < 0x80 {
			t.Errorf("length %d in long form: DER and most agents want the short form", n)
		}
		b = b[k:]
	}
	if len(b) < n {
		t.Fatalf("tag %#x: length %d, %d bytes left", tag, n, len(b))
	}
	return ber{tag, b[:n]}, b[n:]
}

func readAll(t *testing.T, b []byte) []ber {
	t.Helper()
	var out []ber
	for len(b) > 0 {
		var e ber
		e, b = readTLV(t, b)
		out = append(out, e)
	}
	return out
}

func decodeOID(b []byte) string {
	var arcs []string
	v := uint64(0)
	for _, c := range b {
		v = v<<7 | uint64(c&0x7f)
		if c&0x80 != 0 {
			continue
		}
		if len(arcs) == 0 { // the first number holds two arcs
			first := min(v/40, 2)
			arcs = append(arcs, fmt.Sprint(first), fmt.Sprint(v-first*40))
		} else {
			arcs = append(arcs, fmt.Sprint(v))
		}
		v = 0
	}
	return strings.Join(arcs, ".")
}

func TestSSDP(t *testing.T) {
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(For(1900))))
	if err != nil {
		t.Fatal(err)
	}
	if req.Method != "M-SEARCH" || req.RequestURI != "*" || req.Proto != "HTTP/1.1" {
		t.Errorf("request line %s %s %s", req.Method, req.RequestURI, req.Proto)
	}
	if req.Host != "239.255.255.250:1900" || req.Header.Get("MAN") != `"ssdp:discover"` || req.Header.Get("ST") != "ssdp:all" || req.Header.Get("MX") == "" {
		t.Errorf("headers %v, host %s", req.Header, req.Host)
	}
}

func TestSIP(t *testing.T) {
	b := For(5060)
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(b)))
	line, err := r.ReadLine()
	if err != nil || !strings.HasPrefix(line, "OPTIONS sip:") || !strings.HasSuffix(line, " SIP/2.0") {
		t.Fatalf("request line %q, %v", line, err)
	}
	h, err := r.ReadMIMEHeader()
	if err != nil {
		t.Fatal(err)
	}
	// RFC 3261 §8.1.1: the headers every request carries.
	for _, name := range []string{"To", "From", "Cseq", "Call-Id", "Max-Forwards", "Via"} {
		if h.Get(name) == "" {
			t.Errorf("no %s header", name)
		}
	}
	via := h.Get("Via")
	if !strings.HasPrefix(via, "SIP/2.0/UDP ") || !strings.Contains(via, ";branch=z9hG4bK") || !strings.HasSuffix(via, ";rport") {
		t.Errorf("Via %q: want UDP, a branch with the RFC 3261 magic cookie, rport", via)
	}
	if h.Get("Cseq") != "1 OPTIONS" || h.Get("Content-Length") != "0" || !strings.Contains(h.Get("From"), ";tag=") {
		t.Errorf("CSeq %q, Content-Length %q, From %q", h.Get("Cseq"), h.Get("Content-Length"), h.Get("From"))
	}
	if !bytes.HasSuffix(b, []byte("\r\n\r\n")) {
		t.Error("headers not ended by an empty line, or a body follows")
	}
}

func TestIKE(t *testing.T) {
	checkIKE(t, For(500))
	natt := For(4500)
	if !bytes.Equal(natt[:4], []byte{0, 0, 0, 0}) {
		t.Errorf("NAT-T payload starts %x, want the non-ESP marker", natt[:4])
	}
	checkIKE(t, natt[4:])
}

func checkIKE(t *testing.T, b []byte) {
	t.Helper()
	if len(b) < 28 {
		t.Fatalf("%d bytes", len(b))
	}
	if bytes.Equal(b[:8], make([]byte, 8)) || !bytes.Equal(b[8:16], make([]byte, 8)) {
		t.Errorf("SPIs %x %x: want the initiator's set, the responder's zero", b[:8], b[8:16])
	}
	if next, ver, exch, flags := b[16], b[17], b[18], b[19]; next != 33 || ver != 0x20 || exch != 34 || flags != 0x08 {
		t.Errorf("next %d version %#x exchange %d flags %#x, want SA, 2.0, IKE_SA_INIT, Initiator", next, ver, exch, flags)
	}
	if id, n := binary.BigEndian.Uint32(b[20:]), binary.BigEndian.Uint32(b[24:]); id != 0 || int(n) != len(b) {
		t.Errorf("message ID %d, length %d of %d", id, n, len(b))
	}
	payloads := map[byte][]byte{}
	next, rest := b[16], b[28:]
	for next != 0 {
		if len(rest) < 4 {
			t.Fatalf("payload %d cut short", next)
		}
		n := int(binary.BigEndian.Uint16(rest[2:]))
		if n < 4 || n > len(rest) || rest[1] != 0 {
			t.Fatalf("payload %d: length %d of %d, flags %#x", next, n, len(rest), rest[1])
		}
		payloads[next] = rest[4:n]
		next, rest = rest[0], rest[n:]
	}
	if len(rest) != 0 {
		t.Errorf("%d bytes after the last payload", len(rest))
	}

	sa := payloads[33]
	if len(sa) < 8 || sa[0] != 0 || int(binary.BigEndian.Uint16(sa[2:])) != len(sa) || sa[4] != 1 || sa[5] != 1 || sa[6] != 0 {
		t.Fatalf("proposal %x: want the last and only, #1, IKE, no SPI, its length the SA's", sa)
	}
	var types []byte
	tr := sa[8:]
	for i := 0; i < int(sa[7]); i++ {
		if len(tr) < 8 {
			t.Fatalf("transform %d cut short", i)
		}
		n := int(binary.BigEndian.Uint16(tr[2:]))
		last := i == int(sa[7])-1
		if n < 8 || n > len(tr) || (tr[0] == 0) != last || (tr[0] != 0 && tr[0] != 3) {
			t.Fatalf("transform %d: %x", i, tr[:8])
		}
		types = append(types, tr[4])
		if tr[4] == 1 && !bytes.Equal(tr[8:n], []byte{0x80, 14, 0, 128}) {
			t.Errorf("encryption transform attributes %x, want key length 128", tr[8:n])
		}
		tr = tr[n:]
	}
	if len(tr) != 0 || !bytes.Equal(types, []byte{1, 2, 3, 4}) {
		t.Errorf("transform types %v with %d bytes left, want 1 2 3 4", types, len(tr))
	}
	ke := payloads[34]
	if len(ke) != 4+256 || binary.BigEndian.Uint16(ke) != 14 {
		t.Errorf("KE of %d bytes for group %d, want 260 for group 14", len(ke), binary.BigEndian.Uint16(ke))
	}
	if nonce := payloads[40]; len(nonce) < 16 || len(nonce) > 256 {
		t.Errorf("nonce of %d bytes, want 16 to 256 (RFC 7296 §3.9)", len(nonce))
	}
}

func TestQUIC(t *testing.T) {
	for _, port := range []uint16{443, 853} {
		b := For(port)
		if len(b) != 1200 {
			t.Errorf("port %d: %d bytes, want 1200", port, len(b))
		}
		if b[0]&0xc0 != 0xc0 {
			t.Errorf("port %d: first byte %#x, want a long header with the fixed bit", port, b[0])
		}
		if v := binary.BigEndian.Uint32(b[1:]); v&0x0f0f0f0f != 0x0a0a0a0a {
			t.Errorf("port %d: version %#08x is not a reserved one", port, v)
		}
		dcid := int(b[5])
		scid := int(b[6+dcid])
		if dcid < 8 || dcid > 20 || scid > 20 {
			t.Errorf("port %d: connection IDs of %d and %d bytes", port, dcid, scid)
		}
	}
}

func TestDTLS(t *testing.T) {
	b := For(5684)
	if len(b) < 13 || b[0] != 22 || binary.BigEndian.Uint16(b[1:]) != 0xfeff || !bytes.Equal(b[3:11], make([]byte, 8)) {
		t.Fatalf("record header %x: want handshake, DTLS 1.0, epoch and sequence 0", b[:13])
	}
	if n := int(binary.BigEndian.Uint16(b[11:])); n != len(b)-13 {
		t.Fatalf("record length %d, %d bytes follow", n, len(b)-13)
	}
	hs := b[13:]
	u24 := func(p []byte) int { return int(p[0])<<16 | int(p[1])<<8 | int(p[2]) }
	if hs[0] != 1 || u24(hs[1:]) != len(hs)-12 || binary.BigEndian.Uint16(hs[4:]) != 0 || u24(hs[6:]) != 0 || u24(hs[9:]) != len(hs)-12 {
		t.Fatalf("handshake header %x: want ClientHello, unfragmented, its lengths the body's", hs[:12])
	}
	body := hs[12:]
	if binary.BigEndian.Uint16(body) != 0xfefd {
		t.Errorf("client_version %x, want DTLS 1.2", body[:2])
	}
	p := body[2+32:]
	if p[0] != 0 || p[1] != 0 {
		t.Fatalf("session_id %d and cookie %d bytes, want empty", p[0], p[1])
	}
	p = p[2:]
	ns := int(binary.BigEndian.Uint16(p))
	if ns == 0 || ns%2 != 0 || ns+2 > len(p) {
		t.Fatalf("cipher_suites of %d bytes", ns)
	}
	p = p[2+ns:]
	if !bytes.Equal(p[:2], []byte{1, 0}) {
		t.Fatalf("compression_methods %x, want null only", p[:2])
	}
	p = p[2:]
	if n := int(binary.BigEndian.Uint16(p)); n != len(p)-2 {
		t.Fatalf("extensions of %d bytes, %d follow", n, len(p)-2)
	}
	var exts []uint16
	for p = p[2:]; len(p) > 0; {
		if len(p) < 4 || int(binary.BigEndian.Uint16(p[2:])) > len(p)-4 {
			t.Fatalf("extension cut short: %x", p)
		}
		exts = append(exts, binary.BigEndian.Uint16(p))
		p = p[4+int(binary.BigEndian.Uint16(p[2:])):]
	}
	if !slices.Equal(exts, []uint16{10, 11, 13}) {
		t.Errorf("extensions %v, want supported_groups, ec_point_formats, signature_algorithms", exts)
	}
}

func TestSmallPayloads(t *testing.T) {
	u16 := func(b []byte, i int) uint16 { return binary.BigEndian.Uint16(b[i:]) }
	u32 := func(b []byte, i int) uint32 { return binary.BigEndian.Uint32(b[i:]) }

	for port, prog := range map[uint16][2]uint32{111: {100000, 2}, 2049: {100003, 3}} {
		b := For(port)
		if len(b) != 40 || u32(b, 4) != 0 || u32(b, 8) != 2 || u32(b, 12) != prog[0] || u32(b, 16) != prog[1] || u32(b, 20) != 0 || !bytes.Equal(b[24:], make([]byte, 16)) {
			t.Errorf("port %d: RPC call %x, want CALL, RPC 2, program %d version %d, NULL, AUTH_NONE", port, b, prog[0], prog[1])
		}
	}
	if b := For(11211); len(b) < 8 || u16(b, 2) != 0 || u16(b, 4) != 1 || u16(b, 6) != 0 || string(b[8:]) != "version\r\n" {
		t.Errorf("memcached %q: want sequence 0 of 1 datagram, then version", b)
	}
	if b := For(3478); len(b) != 20 || u16(b, 0) != 1 || u16(b, 2) != 0 || u32(b, 4) != 0x2112a442 {
		t.Errorf("STUN %x: want a Binding request, no attributes, the magic cookie", b)
	}
	if b := For(5683); len(b) != 4 || b[0]>>6 != 1 || b[0]>>4&3 != 0 || b[0]&0xf != 0 || b[1] != 0 {
		t.Errorf("CoAP %x: want version 1, Confirmable, no token, code 0.00", b)
	}
	if b := For(520); len(b) != 24 || b[0] != 1 || b[1] != 2 || u16(b, 4) != 0 || u32(b, 20) != 16 {
		t.Errorf("RIP %x: want a v2 request with one entry of family 0 and metric 16", b)
	}
	if b := For(623); len(b) != 12 || b[0] != 6 || b[2] != 0xff || b[3] != 6 || u32(b, 4) != 4542 || b[8] != 0x80 || int(b[11]) != len(b)-12 {
		t.Errorf("RMCP %x: want version 6, no ACK, class ASF, enterprise 4542, Presence Ping, no data", b)
	}
	if b := For(5351); !bytes.Equal(b, []byte{0, 0}) {
		t.Errorf("NAT-PMP %x, want version 0 opcode 0", b)
	}
	if b := For(177); len(b) != 7 || u16(b, 0) != 1 || u16(b, 2) != 2 || int(u16(b, 4)) != len(b)-6 || b[6] != 0 {
		t.Errorf("XDMCP %x: want version 1 Query, its length, no authentication names", b)
	}
	if b := For(1434); !bytes.Equal(b, []byte{3}) {
		t.Errorf("SQL Server Browser %x, want CLNT_UCAST_EX", b)
	}
}

func BenchmarkFor(b *testing.B) {
	b.ReportAllocs()
	port := uint16(0)
	for b.Loop() {
		port++
		For(port)
	}
}
