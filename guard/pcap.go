package guard

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Link types of the captures guard replays (tcpdump's LINKTYPE_ values).
const (
	LinkNull     = 0
	LinkEthernet = 1
	LinkRaw      = 101
	LinkLoop     = 108
	LinkLinuxSLL = 113
	LinkIPv4     = 228
	LinkIPv6     = 229
	LinkSLL2     = 276
)

// Direction is what a capture says of a packet's direction.
type Direction uint8

// The directions.
const (
	DirUnknown Direction = iota
	DirIn
	DirOut
)

// Frame is one packet of a capture file, from its IP header.
type Frame struct {
	At  time.Time
	IP  []byte // valid until the next call of Next
	Dir Direction
}

// CaptureError is a capture file that cannot be read.
type CaptureError struct {
	Offset int64 // of the record or block that is wrong
	What   string
}

func (e *CaptureError) Error() string {
	return fmt.Sprintf("capture file at byte %d: %s", e.Offset, e.What)
}

// maxRecord bounds one record: a corrupt length must not allocate
// gigabytes.
const maxRecord = 256 << 10

// CaptureReader reads pcap and pcapng files in pure Go.
type CaptureReader struct {
	r      *bufio.Reader
	off    int64
	ng     bool
	order  binary.ByteOrder
	nanos  bool     // pcap: nanosecond timestamps
	links  []uint16 // pcapng: link type of each interface
	tsUnit []int64  // pcapng: nanoseconds per timestamp unit, per interface
	link   uint16   // pcap
	buf    []byte
}

// NewCaptureReader reads the file header of a pcap or pcapng file.
func NewCaptureReader(r io.Reader) (*CaptureReader, error) {
	c := &CaptureReader{r: bufio.NewReaderSize(r, 64<<10)}
	var hdr [4]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return nil, &CaptureError{0, "not a pcap or pcapng file: too short"}
	}
	switch m := binary.LittleEndian.Uint32(hdr[:]); m {
	case 0xa1b2c3d4, 0xa1b23c4d:
		c.order, c.nanos = binary.LittleEndian, m == 0xa1b23c4d
	case 0xd4c3b2a1, 0x4d3cb2a1:
		c.order, c.nanos = binary.BigEndian, m == 0x4d3cb2a1
	case 0x0a0d0d0a:
		c.ng = true
		return c, c.readSHB(hdr)
	default:
		return nil, &CaptureError{0, fmt.Sprintf("not a pcap or pcapng file: magic %#08x", m)}
	}
	var rest [20]byte
	if _, err := io.ReadFull(c.r, rest[:]); err != nil {
		return nil, &CaptureError{4, "pcap header cut short"}
	}
	c.link = uint16(c.order.Uint32(rest[16:20]))
	c.off = 24
	return c, nil
}

// readSHB reads a pcapng section header block, its type already read.
func (c *CaptureReader) readSHB(typ [4]byte) error {
	var h [8]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		return &CaptureError{c.off, "pcapng section header cut short"}
	}
	switch binary.LittleEndian.Uint32(h[4:8]) {
	case 0x1a2b3c4d:
		c.order = binary.LittleEndian
	case 0x4d3c2b1a:
		c.order = binary.BigEndian
	default:
		return &CaptureError{c.off, "pcapng byte-order magic wrong"}
	}
	n := c.order.Uint32(h[0:4])
	if n < 28 || n > maxRecord || n%4 != 0 {
		return &CaptureError{c.off, fmt.Sprintf("pcapng section header length %d", n)}
	}
	if _, err := c.r.Discard(int(n) - 12); err != nil {
		return &CaptureError{c.off, "pcapng section header cut short"}
	}
	c.off += int64(n)
	c.links, c.tsUnit = nil, nil // interfaces are per section
	return nil
}

// Next returns the next packet that has an IP header, io.EOF at the end.
// Packets of other link-layer protocols are skipped.
func (c *CaptureReader) Next() (Frame, error) {
	for {
		f, link, err := c.record()
		if err != nil {
			return f, err
		}
		if link < 0 {
			continue
		}
		ip, dir, ok := stripLink(uint16(link), f.IP)
		if !ok {
			continue
		}
		f.IP = ip
		if f.Dir == DirUnknown {
			f.Dir = dir
		}
		return f, nil
	}
}

func (c *CaptureReader) read(n int) ([]byte, error) {
	if cap(c.buf) < n {
		c.buf = make([]byte, n)
	}
	b := c.buf[:n]
	_, err := io.ReadFull(c.r, b)
	return b, err
}

// record reads one packet record and its link type; -1 for a block that
// holds no packet.
func (c *CaptureReader) record() (Frame, int, error) {
	start := c.off
	if !c.ng {
		h, err := c.read(16)
		if err == io.EOF {
			return Frame{}, 0, io.EOF
		}
		if err != nil {
			return Frame{}, 0, &CaptureError{start, "record header cut short"}
		}
		sec, frac := c.order.Uint32(h[0:4]), c.order.Uint32(h[4:8])
		incl := c.order.Uint32(h[8:12])
		if incl > maxRecord {
			return Frame{}, 0, &CaptureError{start, fmt.Sprintf("record of %d bytes", incl)}
		}
		if !c.nanos {
			frac *= 1000
		}
		at := time.Unix(int64(sec), int64(frac))
		b, err := c.read(int(incl))
		if err != nil {
			return Frame{}, 0, &CaptureError{start, "record cut short"}
		}
		c.off += 16 + int64(incl)
		return Frame{At: at, IP: b}, int(c.link), nil
	}
	h, err := c.read(8)
	if err == io.EOF {
		return Frame{}, 0, io.EOF
	}
	if err != nil {
		return Frame{}, 0, &CaptureError{start, "block header cut short"}
	}
	typ := c.order.Uint32(h[0:4])
	if typ == 0x0a0d0d0a {
		if err := c.readSHB([4]byte{}); err != nil {
			return Frame{}, 0, err
		}
		return Frame{}, -1, nil
	}
	n := c.order.Uint32(h[4:8])
	if n < 12 || n > maxRecord || n%4 != 0 {
		return Frame{}, 0, &CaptureError{start, fmt.Sprintf("pcapng block length %d", n)}
	}
	body, err := c.read(int(n) - 8)
	if err != nil {
		return Frame{}, 0, &CaptureError{start, "pcapng block cut short"}
	}
	c.off += int64(n)
	body = body[:len(body)-4] // the trailing length
	switch typ {
	case 1: // interface description
		if len(body) < 8 {
			return Frame{}, 0, &CaptureError{start, "interface description cut short"}
		}
		unit := int64(1000) // microseconds by default
		for opts := body[8:]; len(opts) >= 4; {
			code, l := c.order.Uint16(opts[0:2]), int(c.order.Uint16(opts[2:4]))
			if code == 0 || 4+l > len(opts) {
				break
			}
			if code == 9 && l >= 1 { // if_tsresol
				v := opts[4]
				if v&0x80 == 0 && v <= 9 {
					unit = 1
					for range 9 - int(v) {
						unit *= 10
					}
				}
			}
			opts = opts[4+(l+3)&^3:]
		}
		c.links = append(c.links, c.order.Uint16(body[0:2]))
		c.tsUnit = append(c.tsUnit, unit)
		return Frame{}, -1, nil
	case 6: // enhanced packet
		if len(body) < 20 {
			return Frame{}, 0, &CaptureError{start, "enhanced packet block cut short"}
		}
		ifc := c.order.Uint32(body[0:4])
		if int(ifc) >= len(c.links) {
			return Frame{}, 0, &CaptureError{start, fmt.Sprintf("packet of interface %d, which is not described", ifc)}
		}
		ts := uint64(c.order.Uint32(body[4:8]))<<32 | uint64(c.order.Uint32(body[8:12]))
		capLen := c.order.Uint32(body[12:16])
		if int(capLen) > len(body)-20 {
			return Frame{}, 0, &CaptureError{start, "packet longer than its block"}
		}
		unit := c.tsUnit[ifc]
		at := time.Unix(0, 0).Add(time.Duration(int64(ts) * unit))
		f := Frame{At: at, IP: body[20 : 20+capLen]}
		// epb_flags: the low two bits are the direction.
		for opts := body[20+(capLen+3)&^3:]; len(opts) >= 4; {
			code, l := c.order.Uint16(opts[0:2]), int(c.order.Uint16(opts[2:4]))
			if code == 0 || 4+l > len(opts) {
				break
			}
			if code == 2 && l == 4 {
				switch c.order.Uint32(opts[4:8]) & 3 {
				case 1:
					f.Dir = DirIn
				case 2:
					f.Dir = DirOut
				}
			}
			opts = opts[4+(l+3)&^3:]
		}
		return f, int(c.links[ifc]), nil
	}
	return Frame{}, -1, nil
}

// stripLink removes the link-layer header and says the direction where
// the link layer tells it.
func stripLink(link uint16, b []byte) ([]byte, Direction, bool) {
	switch link {
	case LinkRaw, LinkIPv4, LinkIPv6:
		return b, DirUnknown, len(b) > 0
	case LinkNull, LinkLoop:
		if len(b) < 4 {
			return nil, 0, false
		}
		return b[4:], DirUnknown, true
	case LinkEthernet:
		if len(b) < 14 {
			return nil, 0, false
		}
		et, b := binary.BigEndian.Uint16(b[12:14]), b[14:]
		for range 2 { // 802.1Q and QinQ tags
			if et != 0x8100 && et != 0x88a8 {
				break
			}
			if len(b) < 4 {
				return nil, 0, false
			}
			et, b = binary.BigEndian.Uint16(b[2:4]), b[4:]
		}
		return b, DirUnknown, et == 0x0800 || et == 0x86dd
	case LinkLinuxSLL:
		if len(b) < 16 {
			return nil, 0, false
		}
		et := binary.BigEndian.Uint16(b[14:16])
		return b[16:], sllDir(binary.BigEndian.Uint16(b[0:2])), et == 0x0800 || et == 0x86dd
	case LinkSLL2:
		if len(b) < 20 {
			return nil, 0, false
		}
		et := binary.BigEndian.Uint16(b[0:2])
		return b[20:], sllDir(uint16(b[10])), et == 0x0800 || et == 0x86dd
	}
	return nil, 0, false
}

func sllDir(pktType uint16) Direction {
	if pktType == 4 { // PACKET_OUTGOING
		return DirOut
	}
	return DirIn
}

// PcapWriter writes a pcap file of Linux cooked (SLL) records, which keep
// each packet's direction: the format guard's tests write their fixtures
// in and tcpdump -i any writes.
type PcapWriter struct{ w io.Writer }

// NewPcapWriter writes the file header.
func NewPcapWriter(w io.Writer) (*PcapWriter, error) {
	h := make([]byte, 24)
	binary.LittleEndian.PutUint32(h[0:4], 0xa1b23c4d) // nanoseconds
	binary.LittleEndian.PutUint16(h[4:6], 2)
	binary.LittleEndian.PutUint16(h[6:8], 4)
	binary.LittleEndian.PutUint32(h[16:20], 65535)
	binary.LittleEndian.PutUint32(h[20:24], LinkLinuxSLL)
	_, err := w.Write(h)
	return &PcapWriter{w}, err
}

// Write writes one IP packet.
func (p *PcapWriter) Write(at time.Time, ip []byte, outgoing bool) error {
	if len(ip) == 0 {
		return errors.New("pcap: empty packet")
	}
	rec := make([]byte, 16+16+len(ip))
	binary.LittleEndian.PutUint32(rec[0:4], uint32(at.Unix()))
	binary.LittleEndian.PutUint32(rec[4:8], uint32(at.Nanosecond()))
	binary.LittleEndian.PutUint32(rec[8:12], uint32(16+len(ip)))
	binary.LittleEndian.PutUint32(rec[12:16], uint32(16+len(ip)))
	sll := rec[16:32]
	if outgoing {
		binary.BigEndian.PutUint16(sll[0:2], 4)
	}
	binary.BigEndian.PutUint16(sll[2:4], 1) // ARPHRD_ETHER
	et := uint16(0x0800)
	if ip[0]>>4 == 6 {
		et = 0x86dd
	}
	binary.BigEndian.PutUint16(sll[14:16], et)
	copy(rec[32:], ip)
	_, err := p.w.Write(rec)
	return err
}
