package guard

import (
	"golang.org/x/net/bpf"
)

// Filter is the classic BPF program of the live sensor, run from the IP
// header: every inbound TCP, UDP and ICMP packet (IPv4 and IPv6, with
// IPv6 extension headers left to the parser), and of what this host sends
// only TCP resets and ICMP destination unreachables: its answers to
// refused attempts. It keeps snaplen bytes of each.
func Filter(snaplen uint32) ([]bpf.RawInstruction, error) {
	// Linux's packet type extension: 4 is PACKET_OUTGOING.
	prog := []bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 4, SkipTrue: uint8(len(inbound(0)))},
	}
	prog = append(prog, inbound(snaplen)...)
	prog = append(prog, outbound(snaplen)...)
	return bpf.Assemble(prog)
}

// inbound passes TCP, UDP, ICMP and IPv6 with extension headers.
func inbound(snaplen uint32) []bpf.Instruction {
	return []bpf.Instruction{
		bpf.LoadAbsolute{Off: 0, Size: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipTrue: 5},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 4, SkipFalse: 13},
		// IPv4
		bpf.LoadAbsolute{Off: 9, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipTrue: 10},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 17, SkipTrue: 9},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 1, SkipTrue: 8, SkipFalse: 9},
		// IPv6: TCP, UDP, ICMPv6, or an extension header (hop-by-hop,
		// routing, fragment, destination options) the parser reads past.
		bpf.LoadAbsolute{Off: 6, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipTrue: 6},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 17, SkipTrue: 5},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 58, SkipTrue: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipTrue: 3},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 43, SkipTrue: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 44, SkipTrue: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 60, SkipFalse: 1},
		bpf.RetConstant{Val: snaplen},
		bpf.RetConstant{Val: 0},
	}
}

// outbound passes TCP resets and ICMP destination unreachables.
func outbound(snaplen uint32) []bpf.Instruction {
	return []bpf.Instruction{
		bpf.LoadAbsolute{Off: 0, Size: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipTrue: 9},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 4, SkipFalse: 16},
		// IPv4: X is the header length.
		bpf.LoadMemShift{Off: 0},
		bpf.LoadAbsolute{Off: 9, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipFalse: 2},
		bpf.LoadIndirect{Off: 13, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: RST, SkipTrue: 10, SkipFalse: 11},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 1, SkipFalse: 10},
		bpf.LoadIndirect{Off: 0, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 3, SkipTrue: 7, SkipFalse: 8},
		// IPv6, without extension headers (this host puts none on its
		// answers).
		bpf.LoadAbsolute{Off: 6, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipFalse: 2},
		bpf.LoadAbsolute{Off: 40 + 13, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: RST, SkipTrue: 3, SkipFalse: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 58, SkipFalse: 3},
		bpf.LoadAbsolute{Off: 40, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 1, SkipFalse: 1},
		bpf.RetConstant{Val: snaplen},
		bpf.RetConstant{Val: 0},
	}
}
