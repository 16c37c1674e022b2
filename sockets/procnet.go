package sockets

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// procNetFields is how many leading columns of /proc/net/{tcp,udp}{,6} are
// read: sl, local_address, rem_address, st, tx_queue:rx_queue, tr:tm->when,
// retrnsmt, uid, timeout, inode. The columns after inode differ between TCP
// and UDP and are not needed.
const procNetFields = 10

// parseProcNet parses a /proc/net/{tcp,tcp6,udp,udp6} table from r and
// appends to out the sockets that req matches, reading req.family's address
// format. The first line must be the header; blank lines are skipped; a
// malformed line is an error naming its number.
//
// The kernel prints an address as the 32-bit words of its network-order
// bytes, each formatted with %08X as an integer of the host's byte order,
// which order names. On a little-endian host 127.0.0.1 reads "0100007F", and
// each of an IPv6 address's four words is swapped on its own: ::1 reads
// "00000000000000000000000001000000" and ::ffff:127.0.0.1
// "0000000000000000FFFF00000100007F". Ports are plain %04X.
func parseProcNet(r io.Reader, req request, order binary.ByteOrder, out []Entry) ([]Entry, error) {
	br := bufio.NewReader(r)
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return out, fmt.Errorf("line %d: longer than %d bytes", n, br.Size())
		case err != nil && err != io.EOF:
			return out, fmt.Errorf("line %d: %w", n, err)
		case n == 1 && !bytes.Contains(line, []byte("local_address")):
			return out, fmt.Errorf("line 1: want the header (sl local_address …), have %.40q", line)
		case n > 1:
			s, ok, perr := parseProcNetLine(line, req, order)
			if perr != nil {
				return out, fmt.Errorf("line %d: %w", n, perr)
			}
			if ok && req.match(&s) {
				out = append(out, Entry{Socket: s})
			}
		}
		if err == io.EOF {
			return out, nil
		}
	}
}

// parseProcNetLine parses one socket's line; ok is false for a blank line
// and for a state this package does not know.
func parseProcNetLine(line []byte, req request, order binary.ByteOrder) (s Socket, ok bool, err error) {
	var f [procNetFields][]byte
	n := splitFields(line, f[:])
	if n == 0 {
		return s, false, nil
	}
	if n < procNetFields {
		return s, false, fmt.Errorf("want at least %d fields, have %d", procNetFields, n)
	}
	if sl := f[0]; len(sl) < 2 || sl[len(sl)-1] != ':' {
		return s, false, fmt.Errorf("slot %q does not end in a colon", sl)
	}
	s.Proto, s.Family = req.proto, req.family
	if s.Local, err = parseProcAddr(f[1], req.family, order); err != nil {
		return s, false, fmt.Errorf("local address: %w", err)
	}
	if s.Remote, err = parseProcAddr(f[2], req.family, order); err != nil {
		return s, false, fmt.Errorf("remote address: %w", err)
	}
	st, ok := parseHex(f[3], 8)
	if !ok {
		return s, false, fmt.Errorf("state %q is not hex", f[3])
	}
	tx, rx, found := bytes.Cut(f[4], []byte{':'})
	txq, ok1 := parseHex(tx, 32)
	rxq, ok2 := parseHex(rx, 32)
	if !found || !ok1 || !ok2 {
		return s, false, fmt.Errorf("queues %q are not tx:rx in hex", f[4])
	}
	s.TxQueue, s.RxQueue = uint32(txq), uint32(rxq)
	uid, ok := parseDec(f[7], 32)
	if !ok {
		return s, false, fmt.Errorf("uid %q is not a decimal number", f[7])
	}
	s.UID = uint32(uid)
	if s.Inode, ok = parseDec(f[9], 64); !ok {
		return s, false, fmt.Errorf("inode %q is not a decimal number", f[9])
	}
	// A state added by a later kernel cannot be asked for: skip it.
	s.State, ok = kernelState(uint8(st))
	return s, ok, nil
}

// parseProcAddr parses "0100007F:0050", the form described at parseProcNet.
func parseProcAddr(b []byte, fam Family, order binary.ByteOrder) (netip.AddrPort, error) {
	host, port, found := bytes.Cut(b, []byte{':'})
	width := 8
	if fam == IPv6 {
		width = 32
	}
	if !found || len(host) != width {
		return netip.AddrPort{}, fmt.Errorf("%q is not %d hex digits, a colon and a port", b, width)
	}
	var a [16]byte
	for i := 0; i < width/8; i++ {
		w, ok := parseHex(host[8*i:8*i+8], 32)
		if !ok {
			return netip.AddrPort{}, fmt.Errorf("%q is not hex", host)
		}
		order.PutUint32(a[4*i:], uint32(w))
	}
	p, ok := parseHex(port, 16)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("port %q is not hex", port)
	}
	ip := netip.AddrFrom16(a)
	if fam == IPv4 {
		ip = netip.AddrFrom4([4]byte(a[:4]))
	}
	return netip.AddrPortFrom(ip, uint16(p)), nil
}

// splitFields stores the space-separated fields of line in f and returns how
// many it found, at most len(f); it does not allocate.
func splitFields(line []byte, f [][]byte) int {
	n := 0
	for n < len(f) {
		i := 0
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		line = line[i:]
		if len(line) == 0 {
			break
		}
		j := 0
		for j < len(line) && !isSpace(line[j]) {
			j++
		}
		f[n], line = line[:j], line[j:]
		n++
	}
	return n
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// parseHex parses 1 to bits/4 hex digits. Unlike strconv it takes a []byte
// without converting it to a string: this runs once a field on tables of
// tens of thousands of lines.
func parseHex(b []byte, bits int) (uint64, bool) {
	if len(b) == 0 || len(b) > bits/4 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(c)
	}
	return v, true
}

// parseDec parses a decimal number that fits in bits bits.
func parseDec(b []byte, bits int) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	limit := uint64(1)<<bits - 1 // all ones for 64, as 1<<64 wraps to 0
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (limit-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}
