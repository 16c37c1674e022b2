package proxyproto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// Header is what a PROXY header says about the connection.
type Header struct {
	// Version is the protocol version Read found, 1 or 2. Format does not look
	// at it: it takes the version to write.
	Version int
	// Command is Local for a connection the proxy made itself (a health
	// check); the receiver then uses the real endpoints. A v1 "UNKNOWN" line
	// reads as Local.
	Command Command
	// Transport is the relayed connection's protocol and address family;
	// Unspec when the header carries no usable addresses.
	Transport Transport
	// Source is the client, Destination the address it connected to; both
	// zero when Command is Local or Transport is Unspec.
	Source, Destination netip.AddrPort
	// TLVs are the type-length-value fields after a v2 address block, in
	// order and uninterpreted. Read makes their values slices of one buffer
	// it allocates per header.
	TLVs []TLV
}

// TLV is one type-length-value field of a v2 header; the length is
// len(Value).
type TLV struct {
	Type  byte
	Value []byte
}

// Command says whose connection a header describes. Its values are the low
// nibble of a v2 header's 13th byte.
type Command byte

const (
	// Local: the proxy opened the connection itself, e.g. for a health
	// check, and the receiver is to use the real endpoints.
	Local Command = 0x0
	// Proxy: the proxy relays the connection of the client the header names.
	Proxy Command = 0x1
)

func (c Command) String() string {
	switch c {
	case Local:
		return "LOCAL"
	case Proxy:
		return "PROXY"
	}
	return fmt.Sprintf("Command(%#x)", byte(c))
}

// Transport is a relayed connection's protocol and address family. Its
// values are the v2 header's 14th byte (family in the high nibble, socket
// type in the low one), so that encoding needs no table.
type Transport byte

const (
	Unspec Transport = 0x00
	TCP4   Transport = 0x11
	UDP4   Transport = 0x12
	TCP6   Transport = 0x21
	UDP6   Transport = 0x22
)

func (t Transport) String() string {
	switch t {
	case Unspec:
		return "UNSPEC"
	case TCP4:
		return "TCP4"
	case UDP4:
		return "UDP4"
	case TCP6:
		return "TCP6"
	case UDP6:
		return "UDP6"
	}
	return fmt.Sprintf("Transport(0x%02x)", byte(t))
}

// The v2 family nibbles (high nibble of the 14th byte).
const (
	famUnspec = 0x0
	famInet   = 0x1
	famInet6  = 0x2
	famUnix   = 0x3
)

// The v2 socket type nibbles (low nibble of the 14th byte).
const (
	sockUnspec = 0x0
	sockStream = 0x1
	sockDgram  = 0x2
)

func (t Transport) family() byte { return byte(t) >> 4 }

// addrBlockLen is the size of the v2 address block of family fam: two
// addresses, plus two ports for the IP families. ok is false for a nibble
// the spec does not assign.
func addrBlockLen(fam byte) (n int, ok bool) {
	switch fam {
	case famUnspec:
		return 0, true
	case famInet:
		return 2*4 + 2*2, true
	case famInet6:
		return 2*16 + 2*2, true
	case famUnix:
		return 2 * 108, true
	}
	return 0, false
}

const (
	// sigV1 starts a v1 line; the spec identifies v1 by these five bytes.
	sigV1 = "PROXY"
	// sigV2 starts a v2 header. Its NUL and bare CRs make it invalid in the
	// text protocols a misconfigured receiver might otherwise half-accept.
	sigV2 = "\r\n\r\n\x00\r\nQUIT\n"
	// maxV1Len bounds a v1 line including CRLF: the spec's worst case,
	// "PROXY UNKNOWN" followed by two full-length IPv6 addresses and ports.
	maxV1Len = 107
	// v2HeaderLen is the fixed part of a v2 header: signature,
	// version/command, family/protocol, length.
	v2HeaderLen = len(sigV2) + 4
	// maxV2Body is the most a v2 length field can declare.
	maxV2Body = 0xffff
)

// ErrNoHeader is wrapped by Read's error when the connection does not start
// with a PROXY signature.
var ErrNoHeader = errors.New("no PROXY protocol header")

// Error is a header that could not be read or formatted.
type Error struct {
	// Version is 1 or 2 once known: Read saw that version's signature, or
	// Format was asked for it; 0 otherwise.
	Version int
	// Reason says what was wrong, e.g. `bad source port "70000": above 65535`.
	Reason string
	// Err is the cause, if any: ErrNoHeader, io.EOF (closed before the
	// first byte), io.ErrUnexpectedEOF (closed mid-header), or the reader's
	// error, such as a deadline.
	Err error
}

func (e *Error) Error() string {
	if e.Version == 1 || e.Version == 2 {
		return "proxy protocol v" + strconv.Itoa(e.Version) + ": " + e.Reason
	}
	return "proxy protocol: " + e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(version int, format string, args ...any) *Error {
	return &Error{Version: version, Reason: fmt.Sprintf(format, args...)}
}

// ForConn returns the Proxy header describing an accepted connection from
// client to local: *net.TCPAddr or *net.UDPAddr, both of the same kind.
// IPv4-mapped IPv6 addresses, which dual-stack sockets report for IPv4
// peers, are unmapped so that an IPv4 client is sent as such. Zones are
// dropped, as neither version can carry them. When the addresses are of
// other kinds or of different families, the header has Transport Unspec,
// which the spec provides for connections it cannot describe. Version is
// left zero: the caller picks it with Format.
func ForConn(client, local net.Addr) Header {
	h := Header{Command: Proxy}
	var src, dst netip.AddrPort
	var udp bool
	switch c := client.(type) {
	case *net.TCPAddr:
		l, ok := local.(*net.TCPAddr)
		if !ok || c == nil || l == nil {
			return h
		}
		src, dst = c.AddrPort(), l.AddrPort()
	case *net.UDPAddr:
		l, ok := local.(*net.UDPAddr)
		if !ok || c == nil || l == nil {
			return h
		}
		src, dst, udp = c.AddrPort(), l.AddrPort(), true
	default:
		return h
	}
	src = netip.AddrPortFrom(src.Addr().Unmap().WithZone(""), src.Port())
	dst = netip.AddrPortFrom(dst.Addr().Unmap().WithZone(""), dst.Port())
	switch {
	case src.Addr().Is4() && dst.Addr().Is4():
		h.Transport = TCP4
		if udp {
			h.Transport = UDP4
		}
	case src.Addr().Is6() && dst.Addr().Is6():
		h.Transport = TCP6
		if udp {
			h.Transport = UDP6
		}
	default:
		return h
	}
	h.Source, h.Destination = src, dst
	return h
}

// Format encodes h as a header of the given version, 1 or 2. It fails when
// h is inconsistent (addresses of the wrong family, addresses on a Local or
// Unspec header) or when the version cannot carry it: v1 carries neither
// UDP nor TLVs, and a v2 header must fit its 16-bit length.
func (h Header) Format(version int) ([]byte, error) {
	if version != 1 && version != 2 {
		return nil, errorf(0, "cannot format version %d, only 1 or 2", version)
	}
	if err := h.check(version); err != nil {
		return nil, err
	}
	if version == 1 {
		return h.formatV1(), nil
	}
	return h.formatV2()
}

// check reports whether h describes one connection consistently, so that
// Format never writes a header Read would reject or read differently.
func (h Header) check(version int) error {
	switch h.Command {
	case Local:
		if h.Transport != Unspec {
			return errorf(version, "a LOCAL header carries no addresses, but Transport is %v", h.Transport)
		}
	case Proxy:
	default:
		return errorf(version, "bad command %v", h.Command)
	}
	var want func(netip.Addr) bool
	var family string
	switch h.Transport {
	case Unspec:
		if h.Source != (netip.AddrPort{}) || h.Destination != (netip.AddrPort{}) {
			return errorf(version, "a header with Transport UNSPEC carries no addresses, but it has %v and %v", h.Source, h.Destination)
		}
	case TCP4, UDP4:
		want, family = netip.Addr.Is4, "IPv4"
	case TCP6, UDP6:
		want, family = netip.Addr.Is6, "IPv6"
	default:
		return errorf(version, "bad transport %v", h.Transport)
	}
	if want != nil {
		for _, a := range [...]struct {
			which string
			addr  netip.Addr
		}{{"source", h.Source.Addr()}, {"destination", h.Destination.Addr()}} {
			switch {
			case !a.addr.IsValid():
				return errorf(version, "%v header has no %s address", h.Transport, a.which)
			case !want(a.addr):
				return errorf(version, "%s address %v is not %s, as %v requires", a.which, a.addr, family, h.Transport)
			case a.addr.Zone() != "":
				return errorf(version, "%s address %v has a zone, which no header can carry", a.which, a.addr)
			}
		}
	}
	if version == 1 {
		if h.Transport == UDP4 || h.Transport == UDP6 {
			return errorf(1, "v1 cannot carry %v, only TCP", h.Transport)
		}
		if len(h.TLVs) > 0 {
			return errorf(1, "v1 cannot carry TLVs")
		}
	}
	return nil
}

func (h Header) formatV1() []byte {
	b := make([]byte, 0, maxV1Len)
	b = append(b, sigV1+" "...)
	if h.Transport == Unspec {
		return append(b, "UNKNOWN\r\n"...)
	}
	b = append(b, h.Transport.String()...)
	b = append(b, ' ')
	b = h.Source.Addr().AppendTo(b)
	b = append(b, ' ')
	b = h.Destination.Addr().AppendTo(b)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(h.Source.Port()), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(h.Destination.Port()), 10)
	return append(b, "\r\n"...)
}

func (h Header) formatV2() ([]byte, error) {
	addrLen, _ := addrBlockLen(h.Transport.family())
	bodyLen := addrLen
	for _, t := range h.TLVs {
		bodyLen += 3 + len(t.Value)
		if bodyLen > maxV2Body {
			// Checked as we go so that huge values cannot overflow the sum.
			return nil, errorf(2, "TLVs make the header body longer than %d bytes", maxV2Body)
		}
	}
	b := make([]byte, 0, v2HeaderLen+bodyLen)
	b = append(b, sigV2...)
	b = append(b, 0x20|byte(h.Command), byte(h.Transport))
	b = binary.BigEndian.AppendUint16(b, uint16(bodyLen))
	switch h.Transport {
	case TCP4, UDP4:
		s, d := h.Source.Addr().As4(), h.Destination.Addr().As4()
		b = append(append(b, s[:]...), d[:]...)
	case TCP6, UDP6:
		s, d := h.Source.Addr().As16(), h.Destination.Addr().As16()
		b = append(append(b, s[:]...), d[:]...)
	}
	if addrLen > 0 {
		b = binary.BigEndian.AppendUint16(b, h.Source.Port())
		b = binary.BigEndian.AppendUint16(b, h.Destination.Port())
	}
	for _, t := range h.TLVs {
		b = append(b, t.Type)
		b = binary.BigEndian.AppendUint16(b, uint16(len(t.Value)))
		b = append(b, t.Value...)
	}
	return b, nil
}
