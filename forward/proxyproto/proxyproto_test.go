package proxyproto

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// v2 returns a v2 header with the given version/command and family/protocol
// bytes, whose length field is the length of body.
func v2(verCmd, famProto byte, body ...string) string {
	b := strings.Join(body, "")
	return v2Len(verCmd, famProto, len(b), b)
}

// v2Len is v2 with a length field that need not match body.
func v2Len(verCmd, famProto byte, length int, body string) string {
	return sigV2 + string([]byte{verCmd, famProto, byte(length >> 8), byte(length)}) + body
}

// tlv encodes one TLV.
func tlv(typ byte, value string) string {
	return string([]byte{typ, byte(len(value) >> 8), byte(len(value))}) + value
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// Address blocks used by the v2 cases.
const (
	// 192.168.0.1:56324 -> 192.168.0.11:443
	inetBlock = "\xc0\xa8\x00\x01\xc0\xa8\x00\x0b\xdc\x04\x01\xbb"
	// [2001:db8::1]:1 -> [::ffff:10.0.0.1]:65535
	inet6Block = "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01" +
		"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x0a\x00\x00\x01" +
		"\x00\x01\xff\xff"
)

var (
	tcp4 = Header{Command: Proxy, Transport: TCP4, Source: ap("192.168.0.1:56324"), Destination: ap("192.168.0.11:443")}
	udp4 = Header{Command: Proxy, Transport: UDP4, Source: ap("192.168.0.1:56324"), Destination: ap("192.168.0.11:443")}
	tcp6 = Header{Command: Proxy, Transport: TCP6, Source: ap("[2001:db8::1]:1"), Destination: ap("[::ffff:10.0.0.1]:65535")}
	udp6 = Header{Command: Proxy, Transport: UDP6, Source: ap("[2001:db8::1]:1"), Destination: ap("[::ffff:10.0.0.1]:65535")}
)

// with returns h with Version v and the given TLVs.
func with(h Header, v int, tlvs ...TLV) Header {
	h.Version, h.TLVs = v, tlvs
	return h
}

func equalHeader(a, b Header) bool {
	if a.Version != b.Version || a.Command != b.Command || a.Transport != b.Transport ||
		a.Source != b.Source || a.Destination != b.Destination || len(a.TLVs) != len(b.TLVs) {
		return false
	}
	for i := range a.TLVs {
		if a.TLVs[i].Type != b.TLVs[i].Type || !bytes.Equal(a.TLVs[i].Value, b.TLVs[i].Value) {
			return false
		}
	}
	return true
}

const maxV1TCP6 = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"

var formatCases = []struct {
	name    string
	h       Header
	version int
	want    string
}{
	{"v1 tcp4", tcp4, 1, "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"},
	{"v1 tcp6", tcp6, 1, "PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 1 65535\r\n"},
	{"v1 tcp6 longest", Header{Command: Proxy, Transport: TCP6,
		Source:      ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
		Destination: ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")}, 1, maxV1TCP6},
	{"v1 ports 0", Header{Command: Proxy, Transport: TCP4, Source: ap("0.0.0.0:0"), Destination: ap("255.255.255.255:0")}, 1,
		"PROXY TCP4 0.0.0.0 255.255.255.255 0 0\r\n"},
	{"v1 unknown", Header{Command: Proxy}, 1, "PROXY UNKNOWN\r\n"},
	{"v1 local", Header{Command: Local}, 1, "PROXY UNKNOWN\r\n"},
	{"v1 ignores Version", with(tcp4, 2), 1, "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"},
	{"v2 tcp4", tcp4, 2, v2(0x21, 0x11, inetBlock)},
	{"v2 udp4", udp4, 2, v2(0x21, 0x12, inetBlock)},
	{"v2 tcp6", tcp6, 2, v2(0x21, 0x21, inet6Block)},
	{"v2 udp6", udp6, 2, v2(0x21, 0x22, inet6Block)},
	{"v2 unspec", Header{Command: Proxy}, 2, v2(0x21, 0x00)},
	{"v2 local", Header{Command: Local}, 2, v2(0x20, 0x00)},
	{"v2 local tlv", Header{Command: Local, TLVs: []TLV{{0x04, nil}}}, 2, v2(0x20, 0x00, tlv(0x04, ""))},
	{"v2 tlvs", with(tcp6, 0, TLV{0x02, []byte("example.com")}, TLV{0xe0, []byte{}}), 2,
		v2(0x21, 0x21, inet6Block, tlv(0x02, "example.com"), tlv(0xe0, ""))},
}

func TestFormat(t *testing.T) {
	for _, c := range formatCases {
		got, err := c.h.Format(c.version)
		if err != nil || string(got) != c.want {
			t.Errorf("%s: Format(%d) = %q, %v; want %q", c.name, c.version, got, err, c.want)
		}
	}
	if len(maxV1TCP6) != 104 {
		t.Errorf("longest TCP6 line is %d bytes, the spec says 104", len(maxV1TCP6))
	}
}

func TestFormatErrors(t *testing.T) {
	big := TLV{0xe0, make([]byte, maxV2Body)}
	cases := []struct {
		name    string
		h       Header
		version int
		want    string
	}{
		{"version 0", tcp4, 0, "proxy protocol: cannot format version 0, only 1 or 2"},
		{"version 3", tcp4, 3, "proxy protocol: cannot format version 3, only 1 or 2"},
		{"bad command", Header{Command: 2}, 2, "proxy protocol v2: bad command Command(0x2)"},
		{"bad transport", Header{Command: Proxy, Transport: 0x13}, 2, "proxy protocol v2: bad transport Transport(0x13)"},
		{"local with transport", Header{Command: Local, Transport: TCP4, Source: tcp4.Source, Destination: tcp4.Destination}, 2,
			"proxy protocol v2: a LOCAL header carries no addresses, but Transport is TCP4"},
		{"unspec with addresses", Header{Command: Proxy, Source: tcp4.Source}, 1,
			"proxy protocol v1: a header with Transport UNSPEC carries no addresses, but it has 192.168.0.1:56324 and invalid AddrPort"},
		{"missing address", Header{Command: Proxy, Transport: TCP4, Source: tcp4.Source}, 2,
			"proxy protocol v2: TCP4 header has no destination address"},
		{"v6 on TCP4", Header{Command: Proxy, Transport: TCP4, Source: ap("[::1]:1"), Destination: tcp4.Destination}, 1,
			"proxy protocol v1: source address ::1 is not IPv4, as TCP4 requires"},
		{"mapped on TCP4", Header{Command: Proxy, Transport: UDP4, Source: tcp4.Source, Destination: ap("[::ffff:1.2.3.4]:1")}, 2,
			"proxy protocol v2: destination address ::ffff:1.2.3.4 is not IPv4, as UDP4 requires"},
		{"v4 on TCP6", Header{Command: Proxy, Transport: TCP6, Source: tcp4.Source, Destination: tcp6.Destination}, 2,
			"proxy protocol v2: source address 192.168.0.1 is not IPv6, as TCP6 requires"},
		{"zone", Header{Command: Proxy, Transport: TCP6, Source: ap("[fe80::1%eth0]:1"), Destination: tcp6.Destination}, 2,
			"proxy protocol v2: source address fe80::1%eth0 has a zone, which no header can carry"},
		{"v1 udp", udp4, 1, "proxy protocol v1: v1 cannot carry UDP4, only TCP"},
		{"v1 tlvs", with(tcp4, 0, TLV{0x04, nil}), 1, "proxy protocol v1: v1 cannot carry TLVs"},
		{"v2 too long", with(tcp4, 0, big), 2, "proxy protocol v2: TLVs make the header body longer than 65535 bytes"},
	}
	for _, c := range cases {
		got, err := c.h.Format(c.version)
		var e *Error
		if !errors.As(err, &e) || err.Error() != c.want {
			t.Errorf("%s: Format(%d) = %q, %v; want error %q", c.name, c.version, got, err, c.want)
		}
	}
	// The longest body that fits must still format.
	fits := TLV{0xe0, make([]byte, maxV2Body-12-3)}
	if _, err := with(tcp4, 0, fits).Format(2); err != nil {
		t.Errorf("Format of a %d-byte body: %v", maxV2Body, err)
	}
}

var readCases = []struct {
	name string
	in   string
	want Header
}{
	{"v1 tcp4", "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", with(tcp4, 1)},
	{"v1 tcp6", "PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 1 65535\r\n", with(tcp6, 1)},
	{"v1 tcp6 long form", "PROXY TCP6 2001:0DB8:0:0:0:0:0:1 0:0:0:0:0:ffff:a00:1 1 65535\r\n", with(tcp6, 1)},
	{"v1 tcp6 longest", maxV1TCP6, Header{Version: 1, Command: Proxy, Transport: TCP6,
		Source:      ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
		Destination: ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")}},
	{"v1 ports 0", "PROXY TCP4 0.0.0.0 255.255.255.255 0 0\r\n", Header{Version: 1, Command: Proxy, Transport: TCP4,
		Source: ap("0.0.0.0:0"), Destination: ap("255.255.255.255:0")}},
	{"v1 unknown", "PROXY UNKNOWN\r\n", Header{Version: 1, Command: Local}},
	{"v1 unknown rest ignored", "PROXY UNKNOWN whatever  is\there 1 2\r\n", Header{Version: 1, Command: Local}},
	{"v1 unknown longest", "PROXY UNKNOWN " + maxV1TCP6[len("PROXY TCP6 "):], Header{Version: 1, Command: Local}},

	{"v2 tcp4", v2(0x21, 0x11, inetBlock), with(tcp4, 2)},
	{"v2 udp4", v2(0x21, 0x12, inetBlock), with(udp4, 2)},
	{"v2 tcp6", v2(0x21, 0x21, inet6Block), with(tcp6, 2)},
	{"v2 udp6", v2(0x21, 0x22, inet6Block), with(udp6, 2)},
	{"v2 tlvs", v2(0x21, 0x11, inetBlock, tlv(0x02, "example.com"), tlv(0x04, ""), tlv(0xea, "vpce-0123")),
		with(tcp4, 2, TLV{0x02, []byte("example.com")}, TLV{0x04, nil}, TLV{0xea, []byte("vpce-0123")})},
	{"v2 local", v2(0x20, 0x00), Header{Version: 2, Command: Local}},
	{"v2 local tlv", v2(0x20, 0x00, tlv(0x05, "id")), Header{Version: 2, Command: Local, TLVs: []TLV{{0x05, []byte("id")}}}},
	// A LOCAL header's addresses are ignored, its TLVs still read.
	{"v2 local with addresses", v2(0x20, 0x11, inetBlock, tlv(0x05, "id")), Header{Version: 2, Command: Local, TLVs: []TLV{{0x05, []byte("id")}}}},
	// A LOCAL header's family is ignored even when unassigned or too long
	// for the block, and then so is the whole block.
	{"v2 local bad family", v2(0x20, 0xff, "junk"), Header{Version: 2, Command: Local}},
	{"v2 local short block", v2(0x20, 0x21, inetBlock), Header{Version: 2, Command: Local}},
	{"v2 unspec", v2(0x21, 0x00, tlv(0x04, "")), Header{Version: 2, Command: Proxy, TLVs: []TLV{{0x04, nil}}}},
	{"v2 unix", v2(0x21, 0x31, strings.Repeat("/", 216), tlv(0x30, "ns")), Header{Version: 2, Command: Proxy, TLVs: []TLV{{0x30, []byte("ns")}}}},
	{"v2 unix dgram", v2(0x21, 0x32, strings.Repeat("\x00", 216)), Header{Version: 2, Command: Proxy}},
	{"v2 inet unspec", v2(0x21, 0x10, inetBlock), Header{Version: 2, Command: Proxy}},
	{"v2 unspec stream", v2(0x21, 0x01), Header{Version: 2, Command: Proxy}},
}

// read runs Read on in followed by payload and checks that exactly the
// payload is left.
func read(t *testing.T, in, payload string) (Header, error) {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(in + payload))
	h, err := Read(br)
	if err == nil {
		rest, _ := io.ReadAll(br)
		if string(rest) != payload {
			t.Errorf("Read(%q) left %q, want %q", in, rest, payload)
		}
	}
	return h, err
}

func TestRead(t *testing.T) {
	for _, c := range readCases {
		h, err := read(t, c.in, "GET / HTTP/1.1\r\n\r\n")
		if err != nil || !equalHeader(h, c.want) {
			t.Errorf("%s: Read(%q) = %+v, %v; want %+v", c.name, c.in, h, err, c.want)
		}
	}
}

func TestReadLeavesPayload(t *testing.T) {
	payload := "\r\n\r\n\x00\r\nQUIT\nPROXY TCP4 and more"
	for _, c := range readCases {
		for _, size := range []int{16, 4096} {
			br := bufio.NewReaderSize(strings.NewReader(c.in+payload), size)
			if _, err := Read(br); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			rest, _ := io.ReadAll(br)
			if string(rest) != payload {
				t.Errorf("%s with a %d-byte buffer: left %q, want %q", c.name, size, rest, payload)
			}
		}
	}
}

var badReadCases = []struct {
	name string
	in   string
	want string // the error's text, or its start when it quotes netip
	is   error  // what the error wraps, if anything
}{
	{"empty", "", "proxy protocol: connection closed before a header", io.EOF},
	{"http", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", `proxy protocol: no header: connection starts with "GET / HTTP/1.1\r\n"`, ErrNoHeader},
	{"tls", "\x16\x03\x01\x02\x00", `proxy protocol: no header: connection starts with "\x16\x03\x01\x02\x00"`, ErrNoHeader},
	{"v1 near miss", "PROXX TCP4", `proxy protocol: no header: connection starts with "PROXX TCP4"`, ErrNoHeader},
	{"v1 lower case", "proxy TCP4", `proxy protocol: no header: connection starts with "proxy TCP4"`, ErrNoHeader},
	{"v2 near miss", "\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x00", `proxy protocol: no header: connection starts with "\r\n\r\n\x00\r\nQUIX\n!\x11\x00\x00"`, ErrNoHeader},

	{"v1 truncated signature", "PRO", `proxy protocol v1: truncated signature "PRO"`, io.ErrUnexpectedEOF},
	{"v1 truncated", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2", `proxy protocol v1: truncated line "PROXY TCP4 1.2.3.4 5.6.7.8 1 2"`, io.ErrUnexpectedEOF},
	{"v1 truncated after CR", "PROXY UNKNOWN\r", `proxy protocol v1: truncated line "PROXY UNKNOWN\r"`, io.ErrUnexpectedEOF},
	{"v1 LF only", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\nrest", `proxy protocol v1: line "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n" ends in LF without CR`, nil},
	{"v1 CR only", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rrest", `proxy protocol v1: CR not followed by LF in "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rr"`, nil},
	{"v1 LFCR", "PROXY UNKNOWN\n\r", `proxy protocol v1: line "PROXY UNKNOWN\n" ends in LF without CR`, nil},
	{"v1 too long", "PROXY UNKNOWN " + strings.Repeat("f", 92) + "\r\n",
		`proxy protocol v1: no CRLF in the first 107 bytes "PROXY UNKNOWN ` + strings.Repeat("f", 92) + `\r"`, nil},
	{"v1 endless", "PROXY " + strings.Repeat("x", 200), `proxy protocol v1: no CRLF in the first 107 bytes "PROXY xxx`, nil},
	{"v1 no space", "PROXY\r\n", `proxy protocol v1: want a space after "PROXY" in "PROXY"`, nil},
	{"v1 no space before protocol", "PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n", `proxy protocol v1: want a space after "PROXY" in "PROXYTCP4 1.2.3.4 5.6.7.8 1 2"`, nil},
	{"v1 bad protocol", "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", `proxy protocol v1: unknown protocol "TCP5", want TCP4, TCP6 or UNKNOWN`, nil},
	{"v1 lower-case protocol", "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", `proxy protocol v1: unknown protocol "tcp4", want TCP4, TCP6 or UNKNOWN`, nil},
	{"v1 UDP4", "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", `proxy protocol v1: unknown protocol "UDP4", want TCP4, TCP6 or UNKNOWN`, nil},
	{"v1 two spaces", "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", `proxy protocol v1: unknown protocol "", want TCP4, TCP6 or UNKNOWN`, nil},
	{"v1 no addresses", "PROXY TCP4\r\n", `proxy protocol v1: TCP4 line "PROXY TCP4": want source and destination address and port after the protocol, each after exactly one space`, nil},
	{"v1 three fields", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", `proxy protocol v1: TCP4 line "PROXY TCP4 1.2.3.4 5.6.7.8 1": want source and destination`, nil},
	{"v1 double space", "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", `proxy protocol v1: TCP4 line "PROXY TCP4 1.2.3.4  5.6.7.8 1 2": want source and destination`, nil},
	{"v1 trailing space", "PROXY TCP6 ::1 ::1 1 2 \r\n", `proxy protocol v1: TCP6 line "PROXY TCP6 ::1 ::1 1 2 ": want source and destination`, nil},
	{"v1 tab", "PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n", `proxy protocol v1: TCP4 line "PROXY TCP4 1.2.3.4\t5.6.7.8 1 2": want source and destination`, nil},
	{"v1 short IPv4", "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", `proxy protocol v1: bad source address "1.2.3": ParseAddr("1.2.3"): `, nil},
	{"v1 octal IPv4", "PROXY TCP4 1.2.3.4 010.0.0.1 1 2\r\n", `proxy protocol v1: bad destination address "010.0.0.1": ParseAddr("010.0.0.1"): `, nil},
	{"v1 IPv4 octet 256", "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", `proxy protocol v1: bad source address "1.2.3.256": `, nil},
	{"v1 hostname", "PROXY TCP4 localhost 5.6.7.8 1 2\r\n", `proxy protocol v1: bad source address "localhost": `, nil},
	{"v1 IPv6 on TCP4", "PROXY TCP4 ::1 5.6.7.8 1 2\r\n", `proxy protocol v1: bad source address "::1": not IPv4, as TCP4 requires`, nil},
	{"v1 IPv4 on TCP6", "PROXY TCP6 ::1 5.6.7.8 1 2\r\n", `proxy protocol v1: bad destination address "5.6.7.8": not IPv6, as TCP6 requires`, nil},
	{"v1 long IPv6 group", "PROXY TCP6 ::12345 ::1 1 2\r\n", `proxy protocol v1: bad source address "::12345": `, nil},
	{"v1 zone", "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", `proxy protocol v1: bad source address "fe80::1%eth0": a zone is not allowed`, nil},
	{"v1 port too big", "PROXY TCP4 1.2.3.4 5.6.7.8 70000 2\r\n", `proxy protocol v1: bad source port "70000": above 65535`, nil},
	{"v1 port 65536", "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", `proxy protocol v1: bad destination port "65536": above 65535`, nil},
	{"v1 port huge", "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999999999999999999999\r\n", `proxy protocol v1: bad destination port "99999999999999999999999": above 65535`, nil},
	{"v1 port leading zero", "PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n", `proxy protocol v1: bad source port "080": leading zero`, nil},
	{"v1 port 00", "PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n", `proxy protocol v1: bad destination port "00": leading zero`, nil},
	{"v1 port 0 sign", "PROXY TCP4 1.2.3.4 5.6.7.8 0 +0\r\n", `proxy protocol v1: bad destination port "+0": not a decimal number`, nil},
	{"v1 port plus", "PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n", `proxy protocol v1: bad source port "+80": not a decimal number`, nil},
	{"v1 port minus", "PROXY TCP4 1.2.3.4 5.6.7.8 1 -1\r\n", `proxy protocol v1: bad destination port "-1": not a decimal number`, nil},
	{"v1 port hex", "PROXY TCP4 1.2.3.4 5.6.7.8 0x50 2\r\n", `proxy protocol v1: bad source port "0x50": not a decimal number`, nil},
	{"v1 port empty", "PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n", `proxy protocol v1: bad destination port "": empty`, nil},

	{"v2 truncated signature", "\r\n\r\n\x00\r\n", `proxy protocol v2: truncated signature "\r\n\r\n\x00\r\n"`, io.ErrUnexpectedEOF},
	{"v2 truncated header", sigV2 + "\x21\x11\x00", `proxy protocol v2: truncated header "\r\n\r\n\x00\r\nQUIT\n!\x11\x00"`, io.ErrUnexpectedEOF},
	{"v2 truncated addresses", v2Len(0x21, 0x11, 12, inetBlock[:5]), `proxy protocol v2: truncated header: length 12, got 5 bytes`, io.ErrUnexpectedEOF},
	{"v2 truncated tlv", v2Len(0x21, 0x11, 30, inetBlock+tlv(0x02, "abc")), `proxy protocol v2: truncated header: length 30, got 18 bytes`, io.ErrUnexpectedEOF},
	{"v2 version 1", v2(0x11, 0x11, inetBlock), `proxy protocol v2: bad version 1 in version/command byte 0x11, want 2`, nil},
	{"v2 version 3", v2(0x31, 0x11, inetBlock), `proxy protocol v2: bad version 3 in version/command byte 0x31, want 2`, nil},
	{"v2 version 0", v2(0x01, 0x11, inetBlock), `proxy protocol v2: bad version 0 in version/command byte 0x01, want 2`, nil},
	{"v2 command 2", v2(0x22, 0x11, inetBlock), `proxy protocol v2: bad command 0x2 in version/command byte 0x22, want 0 (LOCAL) or 1 (PROXY)`, nil},
	{"v2 command f", v2(0x2f, 0x00), `proxy protocol v2: bad command 0xf in version/command byte 0x2f, want 0 (LOCAL) or 1 (PROXY)`, nil},
	{"v2 family 4", v2(0x21, 0x41, inetBlock), `proxy protocol v2: bad address family 0x4 in family/protocol byte 0x41, want 0-3`, nil},
	{"v2 protocol 3", v2(0x21, 0x13, inetBlock), `proxy protocol v2: bad transport protocol 0x3 in family/protocol byte 0x13, want 0-2`, nil},
	{"v2 short inet", v2(0x21, 0x11, inetBlock[:8]), `proxy protocol v2: length 8 is shorter than the 12-byte address block of family/protocol 0x11`, nil},
	{"v2 inet block on inet6", v2(0x21, 0x21, inetBlock), `proxy protocol v2: length 12 is shorter than the 36-byte address block of family/protocol 0x21`, nil},
	{"v2 short unix", v2(0x21, 0x31, inet6Block), `proxy protocol v2: length 36 is shorter than the 216-byte address block of family/protocol 0x31`, nil},
	{"v2 tlv overrun", v2(0x21, 0x11, inetBlock, "\x04\x00\x05ab"), `proxy protocol v2: TLV type 0x04 at byte 28: value length 5 overruns the header by 3 bytes`, nil},
	{"v2 tlv max overrun", v2(0x21, 0x00, "\xe0\xff\xff"), `proxy protocol v2: TLV type 0xe0 at byte 16: value length 65535 overruns the header by 65535 bytes`, nil},
	{"v2 tlv cut", v2(0x21, 0x21, inet6Block, tlv(0x01, "h2"), "\x04\x00"), `proxy protocol v2: TLV at byte 57 cut off: 2 of its 3 type and length bytes`, nil},
	{"v2 local tlv cut", v2(0x20, 0x00, "\x04"), `proxy protocol v2: TLV at byte 16 cut off: 1 of its 3 type and length bytes`, nil},
}

func TestReadErrors(t *testing.T) {
	for _, c := range badReadCases {
		h, err := read(t, c.in, "")
		var e *Error
		if !errors.As(err, &e) || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: Read(%q) = %+v, %v;\nwant error %s", c.name, c.in, h, err, c.want)
			continue
		}
		if c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%s: error %v does not wrap %v", c.name, err, c.is)
		}
		if c.is == nil && e.Err != nil {
			t.Errorf("%s: error %v wraps %v, want nothing", c.name, err, e.Err)
		}
	}
}

// TestReadNoHeaderConsumesNothing checks that a caller that lets
// connections without a header through still gets all their bytes.
func TestReadNoHeaderConsumesNothing(t *testing.T) {
	for _, c := range badReadCases {
		if c.is != ErrNoHeader {
			continue
		}
		br := bufio.NewReader(strings.NewReader(c.in))
		if _, err := Read(br); !errors.Is(err, ErrNoHeader) {
			t.Fatalf("%s: %v", c.name, err)
		}
		rest, _ := io.ReadAll(br)
		if string(rest) != c.in {
			t.Errorf("%s: left %q, want all of %q", c.name, rest, c.in)
		}
	}
}

// TestRoundTrip formats each form in each version that can carry it and
// reads it back.
func TestRoundTrip(t *testing.T) {
	headers := []Header{
		tcp4, tcp6, udp4, udp6,
		{Command: Local},
		{Command: Proxy}, // v1 UNKNOWN
		with(tcp4, 0, TLV{0x01, []byte("h2")}, TLV{0x04, make([]byte, 1000)}),
		with(udp6, 0, TLV{0xf0, nil}),
		{Command: Local, TLVs: []TLV{{0x05, []byte("unique")}}},
		{Command: Proxy, Transport: TCP4, Source: ap("0.0.0.0:0"), Destination: ap("255.255.255.255:65535")},
		{Command: Proxy, Transport: TCP6, Source: ap("[::]:0"), Destination: ap("[::ffff:0.0.0.0]:0")},
	}
	for _, h := range headers {
		for _, version := range []int{1, 2} {
			b, err := h.Format(version)
			if version == 1 && (h.Transport == UDP4 || h.Transport == UDP6 || len(h.TLVs) > 0) {
				if err == nil {
					t.Errorf("%+v: Format(1) = %q, want an error", h, b)
				}
				continue
			}
			if err != nil {
				t.Errorf("%+v: Format(%d): %v", h, version, err)
				continue
			}
			got, err := read(t, string(b), "payload")
			want := with(h, version, h.TLVs...)
			if version == 1 && h.Transport == Unspec {
				want.Command = Local // UNKNOWN
			}
			if err != nil || !equalHeader(got, want) {
				t.Errorf("Read(%q) = %+v, %v; want %+v", b, got, err, want)
			}
		}
	}
}

// TestReadFragmented feeds headers one byte per read, as a slow or
// hostile sender might.
func TestReadFragmented(t *testing.T) {
	for _, c := range readCases {
		br := bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(c.in+"payload")), 16)
		h, err := Read(br)
		rest, _ := io.ReadAll(br)
		if err != nil || !equalHeader(h, c.want) || string(rest) != "payload" {
			t.Errorf("%s: Read = %+v, %v, left %q", c.name, h, err, rest)
		}
	}
}

// TestReadDoesNotWaitPastHeader sends a header and then nothing, as a
// client waiting for the server to speak first (SMTP, SSH) does: Read must
// return without waiting for more bytes.
func TestReadDoesNotWaitPastHeader(t *testing.T) {
	cases := []struct {
		name, in string
		ok       bool
	}{
		{"v1", "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", true},
		{"v1 unknown", "PROXY UNKNOWN\r\n", true},
		{"v2", v2(0x21, 0x11, inetBlock, tlv(0x04, "x")), true},
		{"v2 local", v2(0x20, 0x00), true},
		{"no header", "S", false},
		{"v2 bad version", v2(0x11, 0x11), false},
		{"v1 bare CR", "PROXY\rX", false},
	}
	for _, c := range cases {
		client, server := net.Pipe()
		go func() {
			// One write per byte, so that the reader sees every split.
			for i := 0; i < len(c.in); i++ {
				if _, err := client.Write([]byte{c.in[i]}); err != nil {
					return
				}
			}
		}()
		server.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := Read(bufio.NewReader(server))
		if errors.Is(err, os.ErrDeadlineExceeded) || (err == nil) != c.ok {
			t.Errorf("%s: Read = %v", c.name, err)
		}
		client.Close()
		server.Close()
	}
}

func TestReadTimeout(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	go client.Write([]byte("PROXY TCP4 1.2.3.4"))
	server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := Read(bufio.NewReader(server))
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, os.ErrDeadlineExceeded) || e.Version != 1 ||
		!strings.HasPrefix(err.Error(), `proxy protocol v1: reading line "PROXY TCP4 1.2.3.4": `) {
		t.Errorf("Read = %v, want a v1 deadline error", err)
	}
}

func TestForConn(t *testing.T) {
	tcp := func(s string) *net.TCPAddr { return net.TCPAddrFromAddrPort(ap(s)) }
	udp := func(s string) *net.UDPAddr { return net.UDPAddrFromAddrPort(ap(s)) }
	cases := []struct {
		name          string
		client, local net.Addr
		want          Header
	}{
		{"tcp4", tcp("192.168.0.1:56324"), tcp("192.168.0.11:443"), tcp4},
		{"tcp4 16-byte IP", &net.TCPAddr{IP: net.ParseIP("192.168.0.1"), Port: 56324}, &net.TCPAddr{IP: net.ParseIP("192.168.0.11"), Port: 443}, tcp4},
		{"tcp4 mapped", tcp("[::ffff:192.168.0.1]:56324"), tcp("[::ffff:192.168.0.11]:443"), tcp4},
		{"udp4", udp("192.168.0.1:56324"), udp("[::ffff:192.168.0.11]:443"), udp4},
		{"tcp6", tcp("[2001:db8::1]:1"), tcp("[2001:db8::2]:65535"),
			Header{Command: Proxy, Transport: TCP6, Source: ap("[2001:db8::1]:1"), Destination: ap("[2001:db8::2]:65535")}},
		{"udp6 zone", udp("[fe80::1%eth0]:1"), udp("[fe80::2%eth0]:2"),
			Header{Command: Proxy, Transport: UDP6, Source: ap("[fe80::1]:1"), Destination: ap("[fe80::2]:2")}},
		{"mixed families", tcp("[2001:db8::1]:1"), tcp("192.168.0.11:443"), Header{Command: Proxy}},
		{"mixed transports", tcp("192.168.0.1:1"), udp("192.168.0.11:443"), Header{Command: Proxy}},
		{"unix", &net.UnixAddr{Name: "/run/a", Net: "unix"}, &net.UnixAddr{Name: "/run/b", Net: "unix"}, Header{Command: Proxy}},
		{"nil", nil, nil, Header{Command: Proxy}},
		{"nil pointer", (*net.TCPAddr)(nil), tcp("192.168.0.11:443"), Header{Command: Proxy}},
		{"no IP", &net.TCPAddr{Port: 1}, tcp("192.168.0.11:443"), Header{Command: Proxy}},
	}
	for _, c := range cases {
		h := ForConn(c.client, c.local)
		if !equalHeader(h, c.want) {
			t.Errorf("%s: ForConn = %+v, want %+v", c.name, h, c.want)
		}
		if _, err := h.Format(2); err != nil {
			t.Errorf("%s: Format(2) of %+v: %v", c.name, h, err)
		}
	}
}

// TestV2Constants pins the derived constants to the spec's numbers.
func TestV2Constants(t *testing.T) {
	if v2HeaderLen != 16 || len(sigV2) != 12 {
		t.Errorf("v2 header %d bytes, signature %d; want 16, 12", v2HeaderLen, len(sigV2))
	}
	for fam, want := range map[byte]int{famUnspec: 0, famInet: 12, famInet6: 36, famUnix: 216} {
		if n, ok := addrBlockLen(fam); !ok || n != want {
			t.Errorf("addrBlockLen(%d) = %d, %v; want %d", fam, n, ok, want)
		}
	}
}

func TestReadErrorBeforeFirstByte(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	server.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := Read(bufio.NewReader(server))
	if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.HasPrefix(err.Error(), "proxy protocol: reading header: ") {
		t.Errorf("Read = %v, want a deadline error", err)
	}
}
