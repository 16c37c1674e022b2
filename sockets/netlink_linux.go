package sockets

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"syscall"
)

// From linux/netlink.h, linux/sock_diag.h and linux/inet_diag.h.
const (
	netlinkSockDiag  = 4  // NETLINK_SOCK_DIAG
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
	tcpDiagGetSock   = 18 // TCPDIAG_GETSOCK: the older request, for both families at once

	nlmsgError  = 2
	nlmsgDone   = 3
	nlmFRequest = 0x1
	nlmFDump    = 0x300 // NLM_F_ROOT|NLM_F_MATCH

	inetDiagReqBytecode = 1 // the request attribute that carries a filter
	inetDiagBCSGE       = 2 // INET_DIAG_BC_S_GE: local port >=
	inetDiagBCSLE       = 3 // INET_DIAG_BC_S_LE: local port <=

	sizeofNlmsghdr  = 16
	sizeofNlattr    = 4
	sizeofReqV2     = 56 // struct inet_diag_req_v2
	sizeofReqV1     = 60 // struct inet_diag_req
	sizeofDiagMsg   = 72 // struct inet_diag_msg
	sizeofSockid    = 48 // struct inet_diag_sockid
	sizeofPortRange = 16 // the bytecode appendPortRange writes
)

// recvBufSize is the receive buffer. The kernel sizes each datagram of a
// dump to the buffer the reader last offered, up to 32 KiB, and documents
// that size as enough; a datagram that still did not fit is an error, not
// a silently shortened table.
const recvBufSize = 32 << 10

// ne is the byte order of netlink headers and of the bytecode's ports.
var ne = binary.NativeEndian

// diagConn is a NETLINK_SOCK_DIAG socket. One List call opens one and runs
// its dumps one after another on it.
type diagConn struct {
	fd  int
	seq uint32
	req []byte
	buf []byte
}

func dialDiag() (*diagConn, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, netlinkSockDiag)
	if err != nil {
		return nil, &OpError{Op: "open netlink socket", Err: os.NewSyscallError("socket", err)}
	}
	return &diagConn{fd: fd, buf: make([]byte, recvBufSize)}, nil
}

func (c *diagConn) close() error { return syscall.Close(c.fd) }

// dump asks the kernel for the sockets of req's table in req's states and
// port, and appends them to out.
func (c *diagConn) dump(ctx context.Context, req request, out []Entry) ([]Entry, error) {
	c.seq++
	c.req = appendDiagRequest(c.req[:0], c.seq, req)
	return c.run(ctx, req, out)
}

// dumpTCP asks the kernel for the TCP sockets of both families in req's
// states and port, IPv4's first, as dump of req for each family would.
//
// One request walks the kernel's tables once for both families, where a
// request per family walks them twice. That matters for the states that
// are not Listen: the kernel finds those (Bound among them, which who and
// ls ask for) only by walking every TCP socket of the host, in every
// network namespace, some milliseconds per ten thousand sockets.
func (c *diagConn) dumpTCP(ctx context.Context, req request, out []Entry) ([]Entry, error) {
	c.seq++
	c.req = appendDiagRequestV1(c.req[:0], c.seq, req)
	n := len(out)
	out, err := c.run(ctx, req, out)
	if err != nil {
		return out, err
	}
	// The kernel lists them as it finds them: IPv4's first, in the order
	// found, as a request for IPv4 alone would.
	var v6 []Entry
	v4 := out[:n]
	for _, e := range out[n:] {
		if e.Family == IPv4 {
			v4 = append(v4, e)
		} else {
			v6 = append(v6, e)
		}
	}
	return append(v4, v6...), nil
}

// run reads the replies to the request in c.req, sent for req.
func (c *diagConn) run(ctx context.Context, req request, out []Entry) ([]Entry, error) {
	wrap := func(err error) error { return &OpError{Op: "dump", Proto: req.String(), Err: err} }
	if err := syscall.Sendto(c.fd, c.req, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return out, wrap(os.NewSyscallError("sendto", err))
	}
	for {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		n, _, err := syscall.Recvfrom(c.fd, c.buf, syscall.MSG_TRUNC)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return out, wrap(os.NewSyscallError("recvfrom", err))
		case n > len(c.buf):
			return out, wrap(fmt.Errorf("netlink message of %d bytes truncated to %d", n, len(c.buf)))
		}
		var done bool
		out, done, err = parseDiagReplies(c.buf[:n], c.seq, req, out)
		if err != nil {
			return out, wrap(err)
		}
		if done {
			return out, nil
		}
	}
}

// appendDiagRequest appends a SOCK_DIAG_BY_FAMILY dump request for req: a
// netlink header, an inet_diag_req_v2 whose idiag_states makes the kernel
// skip other states (and, for listeners only, walk just the listening hash),
// and, when a port is asked for, bytecode that makes it skip other ports.
func appendDiagRequest(b []byte, seq uint32, req request) []byte {
	size := sizeofNlmsghdr + sizeofReqV2
	if req.port != 0 {
		size += sizeofNlattr + sizeofPortRange
	}
	b = ne.AppendUint32(b, uint32(size))
	b = ne.AppendUint16(b, sockDiagByFamily)
	b = ne.AppendUint16(b, nlmFRequest|nlmFDump)
	b = ne.AppendUint32(b, seq)
	b = ne.AppendUint32(b, 0) // port id: the kernel fills in ours

	family, proto := byte(syscall.AF_INET), byte(syscall.IPPROTO_TCP)
	if req.family == IPv6 {
		family = syscall.AF_INET6
	}
	if req.proto == UDP {
		proto = syscall.IPPROTO_UDP
	}
	b = append(b, family, proto, 0, 0) // no extensions, padding
	b = ne.AppendUint32(b, uint32(req.states))
	var sockid [sizeofSockid]byte // dumps ignore it
	b = append(b, sockid[:]...)

	if req.port != 0 {
		b = ne.AppendUint16(b, sizeofNlattr+sizeofPortRange)
		b = ne.AppendUint16(b, inetDiagReqBytecode)
		b = appendPortRange(b, req.port, req.last)
	}
	return b
}

// appendDiagRequestV1 appends a TCPDIAG_GETSOCK dump request for req's
// states and port in both families: the request older than
// SOCK_DIAG_BY_FAMILY, which the kernel answers for both address families
// at once (family AF_UNSPEC), with messages of type TCPDIAG_GETSOCK.
func appendDiagRequestV1(b []byte, seq uint32, req request) []byte {
	size := sizeofNlmsghdr + sizeofReqV1
	if req.port != 0 {
		size += sizeofNlattr + sizeofPortRange
	}
	b = ne.AppendUint32(b, uint32(size))
	b = ne.AppendUint16(b, tcpDiagGetSock)
	b = ne.AppendUint16(b, nlmFRequest|nlmFDump)
	b = ne.AppendUint32(b, seq)
	b = ne.AppendUint32(b, 0) // port id: the kernel fills in ours

	b = append(b, syscall.AF_UNSPEC, 0, 0, 0) // both families, no extensions
	var sockid [sizeofSockid]byte             // dumps ignore it
	b = append(b, sockid[:]...)
	b = ne.AppendUint32(b, uint32(req.states))
	b = ne.AppendUint32(b, 0) // idiag_dbs, unused

	if req.port != 0 {
		b = ne.AppendUint16(b, sizeofNlattr+sizeofPortRange)
		b = ne.AppendUint16(b, inetDiagReqBytecode)
		b = appendPortRange(b, req.port, req.last)
	}
	return b
}

// appendPortRange appends inet_diag bytecode that accepts the sockets whose
// local port is in [lo, hi].
//
// The kernel runs bytecode as 4-byte ops {code u8, yes u8, no u16}: after a
// test it moves yes bytes forward if the test held and no bytes if not. A
// socket is accepted when the program ends exactly at its end and rejected
// when a jump lands past it, which the kernel allows by up to 4 bytes. A
// port test reads its port from the no field of the op that follows it, in
// host byte order. S_GE and S_LE work on every kernel with inet_diag; S_EQ
// would save an op but needs Linux 4.16.
func appendPortRange(b []byte, lo, hi uint16) []byte {
	const reject = sizeofPortRange + 4 // from the start: one op past the end
	b = append(b, inetDiagBCSGE, 8)
	b = ne.AppendUint16(b, reject)
	b = append(b, 0, 0)
	b = ne.AppendUint16(b, lo)
	b = append(b, inetDiagBCSLE, 8)
	b = ne.AppendUint16(b, reject-8) // this op is 8 bytes in
	b = append(b, 0, 0)
	b = ne.AppendUint16(b, hi)
	return b
}

// parseDiagReplies parses one datagram of the replies to dump request seq,
// appending the sockets in it to out; done is set by the message that ends
// the dump.
func parseDiagReplies(b []byte, seq uint32, req request, out []Entry) (_ []Entry, done bool, err error) {
	for len(b) >= sizeofNlmsghdr {
		size := ne.Uint32(b)
		typ := ne.Uint16(b[4:])
		mseq := ne.Uint32(b[8:])
		if size < sizeofNlmsghdr || uint64(size) > uint64(len(b)) {
			return out, false, fmt.Errorf("netlink message of %d bytes in %d", size, len(b))
		}
		body := b[sizeofNlmsghdr:size]
		b = b[min(int(size+3)&^3, len(b)):]
		if mseq != seq {
			continue // left over from an earlier request
		}
		switch typ {
		case nlmsgDone:
			// A dump that failed part way says why here.
			if len(body) >= 4 {
				if errno := int32(ne.Uint32(body)); errno < 0 {
					return out, true, syscall.Errno(-errno)
				}
			}
			return out, true, nil
		case nlmsgError:
			if len(body) < 4 {
				return out, false, errors.New("short netlink error message")
			}
			if errno := int32(ne.Uint32(body)); errno < 0 {
				return out, true, syscall.Errno(-errno)
			}
			// 0 acknowledges the request; dumps end with NLMSG_DONE.
		case sockDiagByFamily, tcpDiagGetSock:
			s, ok, err := parseDiagMsg(body, req.proto)
			if err != nil {
				return out, false, err
			}
			if ok {
				out = append(out, Entry{Socket: s})
			}
		}
	}
	return out, false, nil
}

// withZone gives a link-local a the zone of interface index ifindex, in
// decimal.
func withZone(a netip.Addr, ifindex uint32) netip.Addr {
	if ifindex == 0 || !a.IsLinkLocalUnicast() && !a.IsLinkLocalMulticast() {
		return a
	}
	return a.WithZone(strconv.FormatUint(uint64(ifindex), 10))
}

// parseDiagMsg parses a struct inet_diag_msg, ignoring the attributes after
// it; ok is false for a state this package does not know.
func parseDiagMsg(b []byte, proto Proto) (s Socket, ok bool, err error) {
	if len(b) < sizeofDiagMsg {
		return s, false, fmt.Errorf("inet_diag_msg of %d bytes, want %d", len(b), sizeofDiagMsg)
	}
	s.Proto = proto
	sport := binary.BigEndian.Uint16(b[4:])
	dport := binary.BigEndian.Uint16(b[6:])
	src, dst := [16]byte(b[8:24]), [16]byte(b[24:40])
	switch b[0] {
	case syscall.AF_INET:
		s.Family = IPv4
		s.Local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(src[:4])), sport)
		s.Remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte(dst[:4])), dport)
	case syscall.AF_INET6:
		s.Family = IPv6
		// A link-local address means nothing without its interface,
		// which the kernel gives by index (idiag_if); zoneNames names it.
		ifindex := ne.Uint32(b[40:])
		s.Local = netip.AddrPortFrom(withZone(netip.AddrFrom16(src), ifindex), sport)
		s.Remote = netip.AddrPortFrom(withZone(netip.AddrFrom16(dst), ifindex), dport)
	default:
		return s, false, fmt.Errorf("inet_diag_msg of address family %d", b[0])
	}
	s.RxQueue = ne.Uint32(b[56:])
	s.TxQueue = ne.Uint32(b[60:])
	s.UID = ne.Uint32(b[64:])
	s.Inode = uint64(ne.Uint32(b[68:]))
	s.State, ok = kernelState(b[1])
	if proto == TCP && s.State == Close {
		// Asked for TCP_BOUND_INACTIVE, the kernel lists those sockets in
		// their own state, CLOSE: bound, neither listening nor connected.
		s.State = Bound
	}
	return s, ok, nil
}
