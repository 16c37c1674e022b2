package proxyproto

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// Read reads one PROXY header, v1 or v2 as its signature says, and leaves
// the reader at the first byte after it.
//
// Read never asks br for bytes beyond the header: it peeks at the signature
// one byte at a time, then takes a v1 line byte by byte up to its CRLF and a
// v2 header by its declared length. So it returns as soon as the header is
// complete, even if the sender then waits for a reply, and it returns at
// the first byte that rules out a signature rather than waiting for more.
//
// Every error is an *Error. When the input does not start with a PROXY
// signature, the error wraps ErrNoHeader and Read has consumed nothing; so
// has it after a bad v2 version, command, family or length. After other
// errors, the position of br is unspecified: the spec says to drop the
// connection.
//
// br must have a buffer of at least 16 bytes, which bufio.NewReader and
// bufio.NewReaderSize guarantee.
func Read(br *bufio.Reader) (Header, error) {
	version, err := readSignature(br)
	if err != nil {
		return Header{}, err
	}
	if version == 1 {
		return readV1(br)
	}
	return readV2(br)
}

// readSignature peeks at the start of br and returns the version whose
// signature it holds, consuming nothing.
func readSignature(br *bufio.Reader) (int, error) {
	version, sig := 0, ""
	for n := 1; ; n++ {
		b, err := br.Peek(n)
		if len(b) < n {
			switch {
			case len(b) == 0 && errors.Is(err, io.EOF):
				return 0, &Error{Reason: "connection closed before a header", Err: io.EOF}
			case len(b) == 0:
				return 0, readError(0, err, "header")
			}
			return 0, readError(version, err, fmt.Sprintf("signature %q", b))
		}
		if n == 1 {
			switch b[0] {
			case sigV1[0]:
				version, sig = 1, sigV1
			case sigV2[0]:
				version, sig = 2, sigV2
			}
		}
		if sig == "" || b[n-1] != sig[n-1] {
			// Show what the connection sent, which is what one needs to
			// tell a misconfigured sender from a stray client.
			b, _ = br.Peek(min(br.Buffered(), 16))
			return 0, &Error{Reason: fmt.Sprintf("no header: connection starts with %q", b), Err: ErrNoHeader}
		}
		if n == len(sig) {
			return version, nil
		}
	}
}

// readError wraps err, a failure to get the bytes of what, which is
// truncated when err is io.EOF.
func readError(version int, err error, what string) *Error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &Error{Version: version, Reason: "truncated " + what, Err: io.ErrUnexpectedEOF}
	}
	return &Error{Version: version, Reason: "reading " + what + ": " + err.Error(), Err: err}
}

// readV1 reads the line whose signature readSignature saw.
func readV1(br *bufio.Reader) (Header, error) {
	// The line is read byte by byte rather than with ReadSlice so as to stop
	// at 107 bytes and at a bare CR, and to work with any buffer size.
	var line [maxV1Len]byte
	n := 0
	for {
		c, err := br.ReadByte()
		if err != nil {
			return Header{}, readError(1, err, fmt.Sprintf("line %q", line[:n]))
		}
		line[n] = c
		n++
		if c == '\n' {
			if n < 2 || line[n-2] != '\r' {
				return Header{}, errorf(1, "line %q ends in LF without CR", line[:n])
			}
			break
		}
		if n >= 2 && line[n-2] == '\r' {
			return Header{}, errorf(1, "CR not followed by LF in %q", line[:n])
		}
		if n == maxV1Len {
			return Header{}, errorf(1, "no CRLF in the first %d bytes %q", maxV1Len, line[:n])
		}
	}
	return parseV1(string(line[:n-2]))
}

// parseV1 parses a v1 line without its CRLF.
func parseV1(line string) (Header, error) {
	rest, ok := strings.CutPrefix(line, sigV1+" ")
	if !ok {
		return Header{}, errorf(1, "want a space after %q in %q", sigV1, line)
	}
	proto, rest, hasRest := strings.Cut(rest, " ")
	h := Header{Version: 1, Command: Proxy}
	switch proto {
	case "UNKNOWN":
		// The spec has the receiver ignore the rest of an UNKNOWN line and
		// use the real endpoints, which is what Local means.
		h.Command = Local
		return h, nil
	case "TCP4":
		h.Transport = TCP4
	case "TCP6":
		h.Transport = TCP6
	default:
		return Header{}, errorf(1, "unknown protocol %q, want TCP4, TCP6 or UNKNOWN", proto)
	}
	fields := strings.Split(rest, " ")
	if !hasRest || len(fields) != 4 {
		return Header{}, errorf(1, "%v line %q: want source and destination address and port after the protocol, each after exactly one space", proto, line)
	}
	src, err := parseV1Addr(fields[0], "source", h.Transport)
	if err != nil {
		return Header{}, err
	}
	dst, err := parseV1Addr(fields[1], "destination", h.Transport)
	if err != nil {
		return Header{}, err
	}
	sport, err := parseV1Port(fields[2], "source")
	if err != nil {
		return Header{}, err
	}
	dport, err := parseV1Port(fields[3], "destination")
	if err != nil {
		return Header{}, err
	}
	h.Source, h.Destination = netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)
	return h, nil
}

// parseV1Addr parses the address s of a TCP4 or TCP6 line. netip's parser
// matches the spec's rules: it rejects leading zeros in IPv4 (which some
// parsers read as octal) and IPv6 groups of more than 4 digits.
func parseV1Addr(s, which string, t Transport) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return netip.Addr{}, errorf(1, "bad %s address %q: %v", which, s, err)
	case a.Zone() != "":
		return netip.Addr{}, errorf(1, "bad %s address %q: a zone is not allowed", which, s)
	case t == TCP4 && !a.Is4():
		return netip.Addr{}, errorf(1, "bad %s address %q: not IPv4, as TCP4 requires", which, s)
	case t == TCP6 && !a.Is6():
		// An IPv4 client on TCP6 must be written as IPv6 (::ffff:a.b.c.d).
		return netip.Addr{}, errorf(1, "bad %s address %q: not IPv6, as TCP6 requires", which, s)
	}
	return a, nil
}

// parseV1Port parses a port by hand because strconv accepts signs, and the
// spec forbids leading zeros.
func parseV1Port(s, which string) (uint16, error) {
	bad := func(why string) error { return errorf(1, "bad %s port %q: %s", which, s, why) }
	if s == "" {
		return 0, bad("empty")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, bad("not a decimal number")
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, bad("leading zero")
	}
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
		if n > 0xffff {
			return 0, bad("above 65535")
		}
	}
	return uint16(n), nil
}

// readV2 reads the header whose signature readSignature saw.
func readV2(br *bufio.Reader) (Header, error) {
	hdr, err := br.Peek(v2HeaderLen)
	if len(hdr) < v2HeaderLen {
		return Header{}, readError(2, err, fmt.Sprintf("header %q", hdr))
	}
	verCmd, famProto := hdr[len(sigV2)], hdr[len(sigV2)+1]
	bodyLen := int(binary.BigEndian.Uint16(hdr[len(sigV2)+2:]))
	if v := verCmd >> 4; v != 2 {
		return Header{}, errorf(2, "bad version %d in version/command byte 0x%02x, want 2", v, verCmd)
	}
	cmd := Command(verCmd & 0x0f)
	if cmd != Local && cmd != Proxy {
		return Header{}, errorf(2, "bad command %#x in version/command byte 0x%02x, want 0 (LOCAL) or 1 (PROXY)", byte(cmd), verCmd)
	}
	fam, sock := famProto>>4, famProto&0x0f
	addrLen, famOK := addrBlockLen(fam)
	// A LOCAL header's family is to be ignored, so only PROXY ones are
	// held to the assigned values and to a length that fits the addresses.
	if cmd == Proxy {
		if !famOK {
			return Header{}, errorf(2, "bad address family %#x in family/protocol byte 0x%02x, want 0-3", fam, famProto)
		}
		if sock != sockUnspec && sock != sockStream && sock != sockDgram {
			return Header{}, errorf(2, "bad transport protocol %#x in family/protocol byte 0x%02x, want 0-2", sock, famProto)
		}
		if bodyLen < addrLen {
			return Header{}, errorf(2, "length %d is shorter than the %d-byte address block of family/protocol 0x%02x", bodyLen, addrLen, famProto)
		}
	}
	if _, err := br.Discard(v2HeaderLen); err != nil {
		return Header{}, readError(2, err, "header")
	}
	body := make([]byte, bodyLen)
	if n, err := io.ReadFull(br, body); err != nil {
		return Header{}, readError(2, err, fmt.Sprintf("header: length %d, got %d bytes", bodyLen, n))
	}

	h := Header{Version: 2, Command: cmd}
	if cmd == Local && (!famOK || bodyLen < addrLen) {
		// Nothing in the block can be located; the spec says to discard it.
		return h, nil
	}
	if cmd == Proxy {
		// Other families and an UNSPEC socket type fall back to UNSPEC, as
		// the spec allows: the addresses are skipped, the TLVs still read.
		switch t := Transport(famProto); t {
		case TCP4, UDP4:
			h.Transport = t
			h.Source = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[0:4])), binary.BigEndian.Uint16(body[8:]))
			h.Destination = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[4:8])), binary.BigEndian.Uint16(body[10:]))
		case TCP6, UDP6:
			h.Transport = t
			h.Source = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[0:16])), binary.BigEndian.Uint16(body[32:]))
			h.Destination = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[16:32])), binary.BigEndian.Uint16(body[34:]))
		}
	}
	h.TLVs, err = parseTLVs(body[addrLen:], v2HeaderLen+addrLen)
	if err != nil {
		return Header{}, err
	}
	return h, nil
}

// parseTLVs splits b, which starts at byte offset of the header, into TLVs.
func parseTLVs(b []byte, offset int) ([]TLV, error) {
	var tlvs []TLV
	for i := 0; i < len(b); {
		if len(b)-i < 3 {
			return nil, errorf(2, "TLV at byte %d cut off: %d of its 3 type and length bytes", offset+i, len(b)-i)
		}
		typ, n := b[i], int(binary.BigEndian.Uint16(b[i+1:]))
		if n > len(b)-i-3 {
			return nil, errorf(2, "TLV type 0x%02x at byte %d: value length %d overruns the header by %d bytes", typ, offset+i, n, n-(len(b)-i-3))
		}
		i += 3
		// Capped so that a caller appending to one value cannot overwrite
		// the next.
		tlvs = append(tlvs, TLV{Type: typ, Value: b[i : i+n : i+n]})
		i += n
	}
	return tlvs, nil
}
