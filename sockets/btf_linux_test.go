package sockets

import (
	"encoding/binary"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

// btfBuilder writes a BTF blob, type by type, as a kernel lays it out.
type btfBuilder struct {
	types []byte
	strs  []byte
	n     uint32 // types so far: the next one's id is n+1
}

func newBTF() *btfBuilder { return &btfBuilder{strs: []byte{0}} }

func (b *btfBuilder) str(s string) uint32 {
	if s == "" {
		return 0
	}
	off := uint32(len(b.strs))
	b.strs = append(append(b.strs, s...), 0)
	return off
}

func (b *btfBuilder) u32(v ...uint32) {
	for _, x := range v {
		b.types = binary.NativeEndian.AppendUint32(b.types, x)
	}
}

// add appends a type with trailer words and returns its id.
func (b *btfBuilder) add(kind uint8, name string, vlen int, kflag bool, sizeOrType uint32, trailer ...uint32) uint32 {
	info := uint32(kind)<<24 | uint32(vlen)
	if kflag {
		info |= 1 << 31
	}
	b.u32(b.str(name), info, sizeOrType)
	b.u32(trailer...)
	b.n++
	return b.n
}

func (b *btfBuilder) integer(name string, size uint32) uint32 {
	return b.add(btfKindInt, name, 0, false, size, size*8)
}

type btfField struct {
	name string
	typ  uint32
	bits uint32 // offset in bits; with kflag, the bitfield size above bit 24
}

func (b *btfBuilder) composite(kind uint8, name string, size uint32, kflag bool, fields ...btfField) uint32 {
	var tr []uint32
	for _, f := range fields {
		tr = append(tr, b.str(f.name), f.typ, f.bits)
	}
	return b.add(kind, name, len(fields), kflag, size, tr...)
}

func (b *btfBuilder) blob() []byte {
	h := binary.NativeEndian.AppendUint16(nil, btfMagic)
	h = append(h, 1, 0)
	h = binary.NativeEndian.AppendUint32(h, btfHeaderLen)
	h = binary.NativeEndian.AppendUint32(h, 0)
	h = binary.NativeEndian.AppendUint32(h, uint32(len(b.types)))
	h = binary.NativeEndian.AppendUint32(h, uint32(len(b.types)))
	h = binary.NativeEndian.AppendUint32(h, uint32(len(b.strs)))
	return append(append(h, b.types...), b.strs...)
}

// kernelLikeBTF is a blob with the types readLayout needs, laid out as
// Linux 6.x does (anonymous unions in the iterator's context, typedefs,
// a bitfield beside i_mode), with types of other kinds in between.
func kernelLikeBTF() []byte {
	b := newBTF()
	u16 := b.integer("unsigned short", 2)
	u32 := b.integer("unsigned int", 4)
	i32 := b.integer("int", 4)
	u64 := b.integer("long unsigned int", 8)
	umode := b.add(btfKindTypedef, "umode_t", 0, false, u16)
	pid := b.add(btfKindTypedef, "pid_t", 0, false, i32)
	cpid := b.add(btfKindConst, "", 0, false, pid)
	b.add(btfKindEnum, "pid_type", 2, false, 4, b.str("PIDTYPE_PID"), 0, b.str("PIDTYPE_TGID"), 1)
	b.add(btfKindArray, "", 0, false, 0, u32, u32, 16)
	b.add(btfKindFwd, "seq_file", 0, false, 0)
	voidp := b.add(btfKindPtr, "", 0, false, 0)
	proto := b.add(btfKindProto, "", 1, false, i32, 0, voidp)
	b.add(btfKindFunc, "other_func", 0, false, proto)
	b.add(btfKindFloat, "double", 0, false, 8)
	b.add(btfKindDeclTag, "tag", 0, false, u32, 0xffffffff)
	b.add(btfKindTypeTag, "rcu", 0, false, voidp)
	b.add(btfKindEnum64, "big", 1, false, 8, b.str("BIG"), 1, 0)
	b.add(btfKindVar, "var", 0, false, u32, 0)
	b.add(btfKindDatasec, ".data", 1, false, 4, 15, 0, 4)
	b.add(btfKindStruct, "file", 0, false, 0) // a decoy: filled below as another id
	inode := b.composite(btfKindStruct, "inode", 128, true,
		btfField{"i_mode", umode, 0},
		btfField{"i_flag", u16, 4<<24 | 16}, // a bitfield
		btfField{"i_ino", u64, 64 * 8})
	inodeP := b.add(btfKindPtr, "", 0, false, inode)
	file := b.composite(btfKindStruct, "file", 64, false, btfField{"f_mode", u32, 0}, btfField{"f_inode", inodeP, 32 * 8})
	task := b.composite(btfKindStruct, "task_struct", 2048, false, btfField{"pid", pid, 1264 * 8}, btfField{"tgid", cpid, 1268 * 8})
	meta := b.composite(btfKindStruct, "bpf_iter_meta", 24, false, btfField{"seq", voidp, 0}, btfField{"session_id", u64, 64})
	ptr := func(to uint32) uint32 { return b.add(btfKindPtr, "", 0, false, to) }
	md := func(name string, to uint32) uint32 {
		return b.composite(btfKindUnion, "", 8, false, btfField{name, ptr(to), 0}, btfField{"", u64, 0})
	}
	um, ut, uf := md("meta", meta), md("task", task), md("file", file)
	b.composite(btfKindStruct, "bpf_iter__task_file", 32, false,
		btfField{"", um, 0}, btfField{"", ut, 64}, btfField{"fd", u32, 128}, btfField{"", uf, 192})
	b.add(btfKindFunc, "bpf_iter_task_file", 0, false, proto)
	return b.blob()
}

func TestReadLayout(t *testing.T) {
	l, err := readLayout(kernelLikeBTF())
	if err != nil {
		t.Fatal(err)
	}
	want := bpfLayout{
		iterFunc: 33, ctxMeta: 0, ctxTask: 8, ctxFd: 16, ctxFile: 24, metaSeq: 0, fileInode: 32,
		inodeMode: 0, inodeModeSize: 2, inodeIno: 64, inodeInoSize: 8, taskTgid: 1268, taskTgidSize: 4,
	}
	if l != want {
		t.Errorf("layout\n%+v, want\n%+v", l, want)
	}
}

// TestReadKernelLayout: the running kernel's BTF, where it has one, gives
// a layout with the context that every kernel since 5.8 has.
func TestReadKernelLayout(t *testing.T) {
	if _, err := os.Stat(vmlinuxBTF); err != nil {
		t.Skip("no kernel BTF:", err)
	}
	l, err := kernelLayout(vmlinuxBTF)
	if err != nil {
		t.Fatal(err)
	}
	if l.iterFunc == 0 || l.ctxTask != 8 || l.ctxFd != 16 || l.ctxFile != 24 || l.inodeModeSize != 2 || l.taskTgidSize != 4 {
		t.Errorf("layout %+v", l)
	}
}

func TestReadLayoutErrors(t *testing.T) {
	good := kernelLikeBTF()
	withType := func(mod func(b *btfBuilder)) []byte {
		b := newBTF()
		mod(b)
		return b.blob()
	}
	for _, tc := range []struct {
		name string
		blob []byte
		want string
	}{
		{"empty", nil, "shorter than a header"},
		{"magic", append([]byte{1, 2}, good[2:]...), "bad magic"},
		{"version", append([]byte{good[0], good[1], 2}, good[3:]...), "version 2"},
		{"truncated", good[:len(good)-1], "past the end"},
		{"unknown kind", withType(func(b *btfBuilder) { b.add(31, "x", 0, false, 0) }), "unknown kind 31"},
		{"type past section", withType(func(b *btfBuilder) { b.add(btfKindStruct, "x", 1000, false, 0) }), "truncated"},
		{"half a type header", append(good[:btfHeaderLen:btfHeaderLen], make([]byte, 4)...), "past the end"},
		{"no iterator", withType(func(b *btfBuilder) { b.integer("int", 4) }), "no bpf_iter_task_file"},
		{"missing field", func() []byte {
			b := newBTF()
			p := b.add(btfKindPtr, "", 0, false, 0)
			b.add(btfKindFunc, "bpf_iter_task_file", 0, false, 0)
			for _, n := range []string{"bpf_iter__task_file", "bpf_iter_meta", "file", "inode", "task_struct"} {
				b.composite(btfKindStruct, n, 8, false, btfField{"x", p, 0})
			}
			return b.blob()
		}(), "no field meta in bpf_iter__task_file"},
		{"typedef loop", func() []byte {
			b := newBTF()
			b.add(btfKindFunc, "bpf_iter_task_file", 0, false, 0)
			b.add(btfKindTypedef, "loop", 0, false, 2) // itself
			for _, n := range []string{"bpf_iter__task_file", "bpf_iter_meta", "file", "inode", "task_struct"} {
				b.composite(btfKindStruct, n, 8, false, btfField{"meta", 2, 0})
			}
			return b.blob()
		}(), "too long"},
		// The fuzzer's find (testdata/fuzz/FuzzReadLayout): a struct
		// with an anonymous member of its own type overflowed the stack.
		{"self-nesting anonymous member", func() []byte {
			b := newBTF()
			b.add(btfKindFunc, "bpf_iter_task_file", 0, false, 0)
			b.composite(btfKindStruct, "bpf_iter__task_file", 8, false, btfField{"", 2, 0}) // itself
			for _, n := range []string{"bpf_iter_meta", "file", "inode", "task_struct"} {
				b.composite(btfKindStruct, n, 8, false, btfField{"x", 2, 0})
			}
			return b.blob()
		}(), "no field meta in bpf_iter__task_file"},
		{"dangling type", func() []byte {
			b := newBTF()
			b.add(btfKindFunc, "bpf_iter_task_file", 0, false, 0)
			for _, n := range []string{"bpf_iter__task_file", "bpf_iter_meta", "file", "inode", "task_struct"} {
				b.composite(btfKindStruct, n, 8, false, btfField{"meta", 999, 0})
			}
			return b.blob()
		}(), "no type 999"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readLayout(tc.blob)
			if err == nil || !errors.Is(err, errBTF) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want errBTF with %q", err, tc.want)
			}
		})
	}
}

// FuzzReadLayout: no blob makes the reader panic or loop; a layout it
// accepts has fields the program can load.
func FuzzReadLayout(f *testing.F) {
	f.Add(kernelLikeBTF())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, blob []byte) {
		l, err := readLayout(blob)
		if err != nil {
			return
		}
		if l.iterFunc == 0 || !slices.Contains([]uint32{2, 4}, l.inodeModeSize) || !slices.Contains([]uint32{4, 8}, l.inodeInoSize) || l.taskTgidSize != 4 {
			t.Errorf("accepted layout %+v", l)
		}
		_ = l.program()
	})
}

// TestProgramJumps: every early return of the program lands on its exit.
func TestProgramJumps(t *testing.T) {
	l, err := readLayout(kernelLikeBTF())
	if err != nil {
		t.Fatal(err)
	}
	p := l.program()
	exit := len(p) - 2
	if p[exit].op != bpfMovK || p[len(p)-1].op != bpfExit {
		t.Fatalf("program does not end in return 0: %+v", p[exit:])
	}
	jumps := 0
	for i, in := range p {
		if in.op == bpfJeqK || in.op == bpfJneK {
			jumps++
			if i+1+int(in.off) != exit {
				t.Errorf("insn %d jumps to %d, not %d", i, i+1+int(in.off), exit)
			}
		}
		if in.op == 0 {
			t.Errorf("insn %d has no opcode (a load of an unexpected size?)", i)
		}
	}
	if jumps != 4 {
		t.Errorf("%d jumps, want 4", jumps)
	}
}
