package rawnet

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// DefaultSnaplen is how many bytes of each reply the receive filter keeps:
// the longest headers it reads (an ICMPv4 error quoting a packet with IP
// options is 136 bytes) with room for the start of a UDP reply's payload.
const DefaultSnaplen = 512

// replyFilter is the classic BPF program of a Receiver. It runs on packets
// that start at the IP header (an AF_PACKET SOCK_DGRAM socket) and keeps
// the first snaplen bytes of
//   - IPv4 or IPv6 TCP and UDP to port,
//   - ICMPv4 unreachable, source quench, time exceeded and parameter problem,
//     and ICMPv6 unreachable, packet too big, time exceeded and parameter
//     problem, whose quoted packet was sent from port,
//
// and drops everything else, including IPv4 fragments after the first and
// IPv6 packets with extension headers before the transport header.
func replyFilter(port uint16, snaplen uint32) ([]bpf.RawInstruction, error) {
	p := uint32(port)
	prog := []any{
		bpf.LoadAbsolute{Off: 0, Size: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4},
		jeq(4, "ipv4"),
		jeq(6, "ipv6"),
		goTo("drop"),

		label("ipv4"),
		bpf.LoadAbsolute{Off: 6, Size: 2},
		jset(0x1fff, "drop"), // fragment offset
		bpf.LoadAbsolute{Off: 9, Size: 1},
		oneOf("l4v4", uint32(ProtoTCP), uint32(ProtoUDP)),
		jeq(uint32(ProtoICMP), "icmpv4"),
		goTo("drop"),
		label("l4v4"),
		bpf.LoadMemShift{Off: 0}, // X = IPv4 header length
		bpf.LoadIndirect{Off: 2, Size: 2},
		jeq(p, "accept"),
		goTo("drop"),
		label("icmpv4"),
		bpf.LoadMemShift{Off: 0},
		bpf.LoadIndirect{Off: 0, Size: 1},
		oneOf("quoted4", icmpUnreachable, icmpSourceQuench, icmpTimeExceeded, icmpParamProblem),
		goTo("drop"),
		label("quoted4"),
		// X = outer header length + quoted header length; the quoted
		// source port is 8 bytes (the ICMP header) past it.
		bpf.LoadIndirect{Off: 8, Size: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x0f},
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 2},
		bpf.ALUOpX{Op: bpf.ALUOpAdd},
		bpf.TAX{},
		bpf.LoadIndirect{Off: 8, Size: 2},
		jeq(p, "accept"),
		goTo("drop"),

		label("ipv6"),
		bpf.LoadAbsolute{Off: 6, Size: 1},
		oneOf("l4v6", uint32(ProtoTCP), uint32(ProtoUDP)),
		jeq(uint32(ProtoICMPv6), "icmpv6"),
		goTo("drop"),
		label("l4v6"),
		bpf.LoadAbsolute{Off: IPv6HeaderLen + 2, Size: 2},
		jeq(p, "accept"),
		goTo("drop"),
		label("icmpv6"),
		bpf.LoadAbsolute{Off: IPv6HeaderLen, Size: 1},
		oneOf("quoted6", icmp6Unreachable, icmp6TooBig, icmp6TimeExceeded, icmp6ParamProblem),
		goTo("drop"),
		label("quoted6"),
		bpf.LoadAbsolute{Off: IPv6HeaderLen + 8 + IPv6HeaderLen, Size: 2},
		jeq(p, "accept"),
		goTo("drop"),

		label("accept"),
		bpf.RetConstant{Val: snaplen},
		label("drop"),
		bpf.RetConstant{Val: 0},
	}
	ins, err := link(prog)
	if err != nil {
		return nil, err
	}
	return bpf.Assemble(ins)
}

// The assembler's symbolic jumps: classic BPF jumps count instructions
// forward, which link works out from labels.
type (
	label string
	goTo  string
	jump  struct {
		cond bpf.JumpTest
		val  uint32
		to   string // taken when the condition holds; else fall through
	}
)

func jeq(v uint32, to string) jump  { return jump{bpf.JumpEqual, v, to} }
func jset(v uint32, to string) jump { return jump{bpf.JumpBitsSet, v, to} }

// oneOf jumps to `to` when A is any of vals.
func oneOf(to string, vals ...uint32) []any {
	var out []any
	for _, v := range vals {
		out = append(out, jeq(v, to))
	}
	return out
}

// link resolves labels into skip counts. Nested []any are spliced in.
func link(prog []any) ([]bpf.Instruction, error) {
	prog = flatten(prog)
	at := map[string]int{}
	n := 0
	for _, x := range prog {
		if l, ok := x.(label); ok {
			at[string(l)] = n
			continue
		}
		n++
	}
	skip := func(from int, to string) (uint32, error) {
		i, ok := at[to]
		if !ok || i <= from || i-from-1 > 255 {
			return 0, fmt.Errorf("rawnet: filter jump from %d to %q", from, to)
		}
		return uint32(i - from - 1), nil
	}
	var out []bpf.Instruction
	for _, x := range prog {
		pc := len(out)
		switch x := x.(type) {
		case label:
		case goTo:
			s, err := skip(pc, string(x))
			if err != nil {
				return nil, err
			}
			out = append(out, bpf.Jump{Skip: s})
		case jump:
			s, err := skip(pc, x.to)
			if err != nil {
				return nil, err
			}
			out = append(out, bpf.JumpIf{Cond: x.cond, Val: x.val, SkipTrue: uint8(s)})
		case bpf.Instruction:
			out = append(out, x)
		default:
			return nil, fmt.Errorf("rawnet: filter: %T is not an instruction", x)
		}
	}
	return out, nil
}

func flatten(prog []any) []any {
	var out []any
	for _, x := range prog {
		if xs, ok := x.([]any); ok {
			out = append(out, flatten(xs)...)
			continue
		}
		out = append(out, x)
	}
	return out
}
