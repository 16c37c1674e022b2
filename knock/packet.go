package knock

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"golang.org/x/net/bpf"
)

// packet is what the server needs of a sniffed IP packet.
type packet struct {
	src, dst netip.Addr
	proto    Proto
	dport    uint16
	syn      bool   // TCP: SYN without ACK, a connection attempt
	payload  []byte // UDP payload, as captured
	udpLen   int    // UDP payload length the header claims
}

// parsePacket reads an IPv4 or IPv6 packet carrying TCP or UDP, from its
// IP header on. IPv6 extension headers and IPv4 fragments other than the
// first are not followed (the filter lets none through).
func parsePacket(b []byte) (packet, bool) {
	var p packet
	if len(b) < 1 {
		return p, false
	}
	var l4 []byte
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return p, false
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl || binary.BigEndian.Uint16(b[6:8])&0x1fff != 0 {
			return p, false
		}
		p.src = netip.AddrFrom4([4]byte(b[12:16]))
		p.dst = netip.AddrFrom4([4]byte(b[16:20]))
		p.proto = Proto(b[9])
		l4 = b[ihl:]
	case 6:
		if len(b) < 40 {
			return p, false
		}
		p.src = netip.AddrFrom16([16]byte(b[8:24])).Unmap()
		p.dst = netip.AddrFrom16([16]byte(b[24:40])).Unmap()
		p.proto = Proto(b[6])
		l4 = b[40:]
	default:
		return p, false
	}
	switch p.proto {
	case TCP:
		if len(l4) < 14 {
			return p, false
		}
		p.dport = binary.BigEndian.Uint16(l4[2:4])
		p.syn = l4[13]&0x12 == 0x02
	case UDP:
		if len(l4) < 8 {
			return p, false
		}
		p.dport = binary.BigEndian.Uint16(l4[2:4])
		p.udpLen = int(binary.BigEndian.Uint16(l4[4:6])) - 8
		p.payload = l4[8:]
		if len(p.payload) > p.udpLen && p.udpLen >= 0 {
			p.payload = p.payload[:p.udpLen] // link padding
		}
	default:
		return p, false
	}
	return p, true
}

// maxFilterRanges bounds the port tests of each protocol in the filter;
// past it the filter takes the span from the lowest port to the highest,
// and the server's own checks sort the rest out.
const maxFilterRanges = 40

// SnapLen is how much of a packet the filter keeps: a whole SPA packet
// (spa.MaxPacketLen) behind IPv6's header and UDP's.
const SnapLen = 2048

// Filter is the classic BPF program that lets through what the config
// watches for: UDP to the SPA port, TCP SYNs (without ACK) and UDP
// datagrams to the knock ports, over IPv4 (first fragments only) and IPv6
// (TCP or UDP right after the fixed header). Everything else is dropped in
// the kernel, so traffic to other ports costs the daemon nothing.
func (c *Config) Filter() ([]bpf.RawInstruction, error) {
	var tcp, udp []portRange
	add := func(pr portRange) {
		if pr.proto == UDP {
			udp = append(udp, pr)
		} else {
			tcp = append(tcp, pr)
		}
	}
	if c.SPAPort != 0 {
		add(portRange{UDP, c.SPAPort, c.SPAPort})
	}
	for _, d := range c.Doors {
		ks, rs := d.knockPorts()
		for _, k := range ks {
			add(portRange{k.Proto, k.Port, k.Port})
		}
		for _, r := range rs {
			add(r)
		}
	}
	tcp, udp = mergeRanges(tcp), mergeRanges(udp)

	a := &asm{labels: map[string]int{}}
	a.emit(bpf.LoadAbsolute{Off: 0, Size: 1})
	a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4})
	a.jif(bpf.JumpEqual, 4, "v4", "")
	a.jif(bpf.JumpEqual, 6, "v6", "")
	a.emit(bpf.RetConstant{Val: 0})

	a.label("v4")
	a.emit(bpf.LoadAbsolute{Off: 6, Size: 2})
	a.jif(bpf.JumpBitsSet, 0x1fff, "v4drop", "")
	a.emit(bpf.LoadAbsolute{Off: 9, Size: 1})
	a.jif(bpf.JumpEqual, uint32(TCP), "v4tcp", "")
	a.jif(bpf.JumpEqual, uint32(UDP), "v4udp", "")
	a.label("v4drop")
	a.emit(bpf.RetConstant{Val: 0})
	a.label("v4tcp")
	a.emit(bpf.LoadMemShift{Off: 0})
	a.ports("v4t", bpf.LoadIndirect{Off: 13, Size: 1}, bpf.LoadIndirect{Off: 2, Size: 2}, tcp)
	a.label("v4udp")
	a.emit(bpf.LoadMemShift{Off: 0})
	a.ports("v4u", nil, bpf.LoadIndirect{Off: 2, Size: 2}, udp)

	a.label("v6")
	a.emit(bpf.LoadAbsolute{Off: 6, Size: 1})
	a.jif(bpf.JumpEqual, uint32(TCP), "v6tcp", "")
	a.jif(bpf.JumpEqual, uint32(UDP), "v6udp", "")
	a.emit(bpf.RetConstant{Val: 0})
	a.label("v6tcp")
	a.ports("v6t", bpf.LoadAbsolute{Off: 40 + 13, Size: 1}, bpf.LoadAbsolute{Off: 40 + 2, Size: 2}, tcp)
	a.label("v6udp")
	a.ports("v6u", nil, bpf.LoadAbsolute{Off: 40 + 2, Size: 2}, udp)

	prog, err := a.resolve()
	if err != nil {
		return nil, err
	}
	return bpf.Assemble(prog)
}

// asm is a small assembler with labels for the filter: conditional jumps
// name their targets, and resolve computes the skips.
type asm struct {
	ins    []bpf.Instruction
	labels map[string]int
	fixes  []fixup
}

type fixup struct {
	at          int
	true, false string // "" is the next instruction
}

func (a *asm) emit(i bpf.Instruction) { a.ins = append(a.ins, i) }
func (a *asm) label(name string)      { a.labels[name] = len(a.ins) }

func (a *asm) jif(cond bpf.JumpTest, val uint32, t, f string) {
	a.fixes = append(a.fixes, fixup{at: len(a.ins), true: t, false: f})
	a.emit(bpf.JumpIf{Cond: cond, Val: val})
}

// ports emits one protocol's block: the SYN test when flags is given
// (SYN set, ACK clear), then the destination port against each range,
// ending in the block's own accept and drop.
func (a *asm) ports(name string, flags, port bpf.Instruction, ranges []portRange) {
	drop, accept := name+"drop", name+"accept"
	if flags != nil {
		a.emit(flags)
		a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x12})
		a.jif(bpf.JumpEqual, 0x02, "", drop)
	}
	a.emit(port)
	for i, r := range ranges {
		if r.low == r.high {
			a.jif(bpf.JumpEqual, uint32(r.low), accept, "")
			continue
		}
		next := fmt.Sprintf("%s%d", name, i)
		a.jif(bpf.JumpGreaterOrEqual, uint32(r.low), "", next)
		a.jif(bpf.JumpGreaterThan, uint32(r.high), "", accept)
		a.label(next)
	}
	a.label(drop)
	a.emit(bpf.RetConstant{Val: 0})
	a.label(accept)
	a.emit(bpf.RetConstant{Val: SnapLen})
}

func (a *asm) resolve() ([]bpf.Instruction, error) {
	for _, f := range a.fixes {
		skip := func(label string) (uint8, error) {
			if label == "" {
				return 0, nil
			}
			to, ok := a.labels[label]
			if !ok {
				return 0, fmt.Errorf("filter: no label %q", label)
			}
			d := to - f.at - 1
			if d < 0 || d > 255 {
				return 0, fmt.Errorf("filter: jump to %q is %d instructions", label, d)
			}
			return uint8(d), nil
		}
		j := a.ins[f.at].(bpf.JumpIf)
		var err error
		if j.SkipTrue, err = skip(f.true); err != nil {
			return nil, err
		}
		if j.SkipFalse, err = skip(f.false); err != nil {
			return nil, err
		}
		a.ins[f.at] = j
	}
	return a.ins, nil
}

// mergeRanges sorts and merges ranges (all of one protocol), and past
// maxFilterRanges collapses them to their span.
func mergeRanges(rs []portRange) []portRange {
	if len(rs) == 0 {
		return nil
	}
	slices.SortFunc(rs, func(a, b portRange) int { return int(a.low) - int(b.low) })
	out := []portRange{rs[0]}
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if uint32(r.low) <= uint32(last.high)+1 {
			last.high = max(last.high, r.high)
			continue
		}
		out = append(out, r)
	}
	if len(out) > maxFilterRanges {
		out = []portRange{{out[0].proto, out[0].low, out[len(out)-1].high}}
	}
	return out
}
