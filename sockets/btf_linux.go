package sockets

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// A minimal reader of the kernel's BTF (/sys/kernel/btf/vmlinux), the
// description of its types that the BPF iterator needs: where a few fields
// are in a few structs, and the id of the iterator's function. A full
// decoder builds every one of the ~150,000 types of a kernel (tens of
// milliseconds); this one only steps over them, once. The format is the
// kernel's Documentation/bpf/btf.rst.

// BTF kinds (btf_type.info bits 24–28) that this reader looks at or has to
// step over.
const (
	btfKindInt      = 1
	btfKindPtr      = 2
	btfKindArray    = 3
	btfKindStruct   = 4
	btfKindUnion    = 5
	btfKindEnum     = 6
	btfKindFwd      = 7
	btfKindTypedef  = 8
	btfKindVolatile = 9
	btfKindConst    = 10
	btfKindRestrict = 11
	btfKindFunc     = 12
	btfKindProto    = 13
	btfKindVar      = 14
	btfKindDatasec  = 15
	btfKindFloat    = 16
	btfKindDeclTag  = 17
	btfKindTypeTag  = 18
	btfKindEnum64   = 19
)

const (
	btfMagic      = 0xeb9f
	btfHeaderLen  = 24 // through str_len; a longer header has more fields
	btfTypeLen    = 12 // struct btf_type
	btfMemberLen  = 12 // struct btf_member
	btfMaxResolve = 32 // typedef/qualifier chain links followed before giving up
)

// errBTF is what a malformed or unexpected BTF blob is reported as.
var errBTF = errors.New("malformed BTF")

// btfSpec is a parsed blob: its types section, its strings, and where
// each type starts in the types section (index = type id; id 0 is void).
type btfSpec struct {
	types []byte
	strs  []byte
	offs  []uint32
}

// btfWant names one type looked for: the first type of this kind and name
// (for a struct, the first with members).
type btfWant struct {
	kind uint8
	name string
}

// parseBTF indexes blob and returns the ids of wants (0 for one not
// found), looking for all of them in the one pass that indexes it.
func parseBTF(blob []byte, wants []btfWant) (*btfSpec, []uint32, error) {
	if len(blob) < btfHeaderLen {
		return nil, nil, fmt.Errorf("%w: %d bytes, shorter than a header", errBTF, len(blob))
	}
	// The running kernel's BTF is in its own byte order, this process's.
	if m := binary.NativeEndian.Uint16(blob); m != btfMagic {
		return nil, nil, fmt.Errorf("%w: bad magic %#x", errBTF, m)
	}
	if v := blob[2]; v != 1 {
		return nil, nil, fmt.Errorf("%w: version %d", errBTF, v)
	}
	hdrLen := uint64(u32(blob[4:]))
	typeOff, typeLen := uint64(u32(blob[8:])), uint64(u32(blob[12:]))
	strOff, strLen := uint64(u32(blob[16:])), uint64(u32(blob[20:]))
	size := uint64(len(blob))
	if hdrLen < btfHeaderLen || hdrLen > size ||
		hdrLen+typeOff+typeLen > size || hdrLen+strOff+strLen > size {
		return nil, nil, fmt.Errorf("%w: sections past the end of %d bytes", errBTF, size)
	}
	s := &btfSpec{
		types: blob[hdrLen+typeOff : hdrLen+typeOff+typeLen],
		strs:  blob[hdrLen+strOff : hdrLen+strOff+strLen],
		// A kernel's types average about 30 bytes each.
		offs: make([]uint32, 1, typeLen/24+1),
	}
	ids := make([]uint32, len(wants))
	found := 0
	for off := 0; off < len(s.types); {
		if len(s.types)-off < btfTypeLen {
			return nil, nil, fmt.Errorf("%w: type %d truncated", errBTF, len(s.offs))
		}
		id := uint32(len(s.offs))
		s.offs = append(s.offs, uint32(off))
		kind, vlen := s.kindVlen(off)
		if found < len(wants) {
			for i, w := range wants {
				// A struct without members is a declaration's
				// shadow, not the one looked for.
				if ids[i] == 0 && w.kind == kind && (vlen > 0 || kind != btfKindStruct) && s.nameIs(u32(s.types[off:]), w.name) {
					ids[i] = id
					found++
				}
			}
		}
		n, err := btfTrailer(kind, vlen)
		if err != nil {
			return nil, nil, fmt.Errorf("type %d: %w", id, err)
		}
		off += btfTypeLen + n
		if off > len(s.types) {
			return nil, nil, fmt.Errorf("%w: type %d truncated", errBTF, id)
		}
	}
	return s, ids, nil
}

// btfTrailer is the length of what follows a btf_type of kind with vlen.
func btfTrailer(kind uint8, vlen int) (int, error) {
	switch kind {
	case btfKindPtr, btfKindFwd, btfKindTypedef, btfKindVolatile, btfKindConst,
		btfKindRestrict, btfKindFunc, btfKindFloat, btfKindTypeTag:
		return 0, nil
	case btfKindInt, btfKindVar, btfKindDeclTag:
		return 4, nil
	case btfKindArray:
		return 12, nil
	case btfKindStruct, btfKindUnion, btfKindDatasec, btfKindEnum64:
		return 12 * vlen, nil
	case btfKindEnum, btfKindProto:
		return 8 * vlen, nil
	}
	return 0, fmt.Errorf("%w: unknown kind %d", errBTF, kind)
}

func (s *btfSpec) kindVlen(off int) (kind uint8, vlen int) {
	info := u32(s.types[off+4:])
	return uint8(info >> 24 & 0x1f), int(info & 0xffff)
}

// nameIs reports whether the string at off in the strings section is name.
func (s *btfSpec) nameIs(off uint32, name string) bool {
	if uint64(off)+uint64(len(name)) >= uint64(len(s.strs)) {
		return false
	}
	b := s.strs[off:]
	return b[len(name)] == 0 && string(b[:len(name)]) == name
}

func (s *btfSpec) name(off uint32) string {
	if int(off) >= len(s.strs) {
		return ""
	}
	b := s.strs[off:]
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return string(b[:i])
	}
	return ""
}

// typeAt returns where type id starts, checked.
func (s *btfSpec) typeAt(id uint32) (int, error) {
	if id == 0 || int(id) >= len(s.offs) {
		return 0, fmt.Errorf("%w: no type %d", errBTF, id)
	}
	return int(s.offs[id]), nil
}

// member returns the byte offset and size of field in the struct or union
// id, looking into anonymous structs and unions as C does.
func (s *btfSpec) member(id uint32, field string) (offset, size uint32, err error) {
	return s.memberIn(id, field, 0)
}

// btfMaxNesting bounds how deep anonymous structs and unions are looked
// into: a malformed blob may nest one in itself.
const btfMaxNesting = 8

func (s *btfSpec) memberIn(id uint32, field string, depth int) (offset, size uint32, err error) {
	if depth > btfMaxNesting {
		return 0, 0, fmt.Errorf("%w: anonymous members nested deeper than %d", errBTF, btfMaxNesting)
	}
	off, err := s.typeAt(id)
	if err != nil {
		return 0, 0, err
	}
	kind, vlen := s.kindVlen(off)
	if kind != btfKindStruct && kind != btfKindUnion {
		return 0, 0, fmt.Errorf("%w: type %d is kind %d, not a struct", errBTF, id, kind)
	}
	bitfields := u32(s.types[off+4:])>>31 == 1
	for i := range vlen {
		m := off + btfTypeLen + i*btfMemberLen
		nameOff, typ, bits := u32(s.types[m:]), u32(s.types[m+4:]), u32(s.types[m+8:])
		if bitfields {
			if bits>>24 != 0 { // a bitfield: not one of ours
				continue
			}
			bits &= 0xffffff
		}
		if nameOff == 0 {
			inner, err := s.resolve(typ)
			if err != nil {
				return 0, 0, err
			}
			if k, _ := s.kindVlen(int(s.offs[inner])); k != btfKindStruct && k != btfKindUnion {
				continue
			}
			if o, n, err := s.memberIn(inner, field, depth+1); err == nil {
				return bits/8 + o, n, nil
			}
			continue
		}
		if !s.nameIs(nameOff, field) {
			continue
		}
		if bits%8 != 0 {
			return 0, 0, fmt.Errorf("%w: %s.%s not at a byte boundary", errBTF, s.name(u32(s.types[off:])), field)
		}
		n, err := s.size(typ)
		if err != nil {
			return 0, 0, fmt.Errorf("%s.%s: %w", s.name(u32(s.types[off:])), field, err)
		}
		return bits / 8, n, nil
	}
	return 0, 0, fmt.Errorf("%w: no field %s in %s", errBTF, field, s.name(u32(s.types[off:])))
}

// resolve follows typedefs and qualifiers from id to the type they name.
func (s *btfSpec) resolve(id uint32) (uint32, error) {
	for range btfMaxResolve {
		off, err := s.typeAt(id)
		if err != nil {
			return 0, err
		}
		switch kind, _ := s.kindVlen(off); kind {
		case btfKindTypedef, btfKindVolatile, btfKindConst, btfKindRestrict, btfKindTypeTag:
			id = u32(s.types[off+8:])
		default:
			return id, nil
		}
	}
	return 0, fmt.Errorf("%w: type chain from %d too long", errBTF, id)
}

// size is the size in bytes of a scalar or pointer type.
func (s *btfSpec) size(id uint32) (uint32, error) {
	id, err := s.resolve(id)
	if err != nil {
		return 0, err
	}
	off := int(s.offs[id])
	switch kind, _ := s.kindVlen(off); kind {
	case btfKindInt, btfKindEnum, btfKindEnum64:
		return u32(s.types[off+8:]), nil
	case btfKindPtr:
		return 8, nil // the BPF machine's pointers
	default:
		return 0, fmt.Errorf("%w: type %d is kind %d, not a scalar", errBTF, id, kind)
	}
}

// u32 reads a number of the blob, in the running kernel's byte order,
// which is this process's.
func u32(b []byte) uint32 { return binary.NativeEndian.Uint32(b) }
