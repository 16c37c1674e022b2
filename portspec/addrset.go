package portspec

import (
	"cmp"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"
)

// u128 is an unsigned 128-bit number: an IPv6 address, or a key.
type u128 struct{ hi, lo uint64 }

func (a u128) cmp(b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

// add returns a+n, wrapping.
func (a u128) add(n uint64) u128 {
	lo, carry := bits.Add64(a.lo, n, 0)
	return u128{a.hi + carry, lo}
}

// sub returns a-b, wrapping.
func (a u128) sub(b u128) u128 {
	lo, borrow := bits.Sub64(a.lo, b.lo, 0)
	return u128{a.hi - b.hi - borrow, lo}
}

func u128From16(b [16]byte) u128 {
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func (a u128) bytes16() [16]byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], a.hi)
	binary.BigEndian.PutUint64(b[8:], a.lo)
	return b
}

// Targets keeps addresses by a key, a bijection onto the 128-bit numbers
// that puts IPv4 first: an IPv4 address's key is its 32-bit value; the
// IPv6 addresses below the IPv4-mapped block ::ffff:0:0/96 follow, shifted
// up by 2³² into the room the mapped block leaves, and the IPv6 addresses
// above it keep their value. An IPv4-mapped address is its IPv4 address.
// Within each family the key order is the address order, so one sorted list
// of key intervals serves both families.
var (
	mappedFirst = u128{0, 0xffff_0000_0000}
	mappedLast  = u128{0, 0xffff_ffff_ffff}
	v4Last      = u128{0, 1<<32 - 1} // the last IPv4 key
	v6First     = u128{0, 1 << 32}   // the first IPv6 key
	maxKey      = u128{^uint64(0), ^uint64(0)}
)

// keyOf returns a's key; a must be valid, without a zone.
func keyOf(a netip.Addr) u128 {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return u128{0, uint64(binary.BigEndian.Uint32(b[:]))}
	}
	x := u128From16(a.As16())
	if x.cmp(mappedFirst) < 0 {
		return x.add(1 << 32)
	}
	return x
}

// addrOf is the inverse of keyOf.
func addrOf(k u128) netip.Addr {
	if k.cmp(v4Last) <= 0 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(k.lo))
		return netip.AddrFrom4(b)
	}
	if k.cmp(mappedLast) <= 0 {
		k = k.sub(v6First)
	}
	return netip.AddrFrom16(k.bytes16())
}

// span is an inclusive interval of keys, all of one family.
type span struct{ lo, hi u128 }

// size is the number of keys in s less one, so that it cannot overflow.
func (s span) sizeLess1() u128 { return s.hi.sub(s.lo) }

// appendRange appends the spans of the addresses from first to last
// (inclusive, one family, first <= last). An IPv6 range that crosses the
// IPv4-mapped block is cut where it enters and leaves it: the part inside is
// IPv4 and its keys lie elsewhere.
func appendRange(dst []span, first, last netip.Addr) []span {
	if first.Is4() {
		return append(dst, span{keyOf(first), keyOf(last)})
	}
	lo, hi := u128From16(first.As16()), u128From16(last.As16())
	cut := func(a, b u128) {
		if a.cmp(b) <= 0 {
			dst = append(dst, span{keyOf(netip.AddrFrom16(a.bytes16())), keyOf(netip.AddrFrom16(b.bytes16()))})
		}
	}
	if lo.cmp(mappedFirst) < 0 {
		cut(lo, minU128(hi, mappedFirst.sub(u128{0, 1})))
	}
	cut(maxU128(lo, mappedFirst), minU128(hi, mappedLast))
	if hi.cmp(mappedLast) > 0 {
		cut(maxU128(lo, mappedLast.add(1)), hi)
	}
	return dst
}

func minU128(a, b u128) u128 {
	if a.cmp(b) <= 0 {
		return a
	}
	return b
}

func maxU128(a, b u128) u128 {
	if a.cmp(b) >= 0 {
		return a
	}
	return b
}

// normalize sorts spans and merges the ones that overlap or touch, within
// a family, in place.
func normalize(spans []span) []span {
	slices.SortFunc(spans, func(a, b span) int { return a.lo.cmp(b.lo) })
	out := spans[:0]
	for _, s := range spans {
		if n := len(out); n > 0 {
			last := &out[n-1]
			touches := last.hi != v4Last && last.hi != maxKey && last.hi.add(1) == s.lo
			if s.lo.cmp(last.hi) <= 0 || touches {
				last.hi = maxU128(last.hi, s.hi)
				continue
			}
		}
		out = append(out, s)
	}
	return out
}

// subtract returns the keys of a that are not in b; both are normalized,
// and so is the result, a new slice: one span of a can leave several pieces.
func subtract(a, b []span) []span {
	var out []span
	j := 0
	for _, s := range a {
		for j < len(b) && b[j].hi.cmp(s.lo) < 0 {
			j++
		}
		left := true
		for k := j; left && k < len(b) && b[k].lo.cmp(s.hi) <= 0; k++ {
			if b[k].lo.cmp(s.lo) > 0 {
				out = append(out, span{s.lo, b[k].lo.sub(u128{0, 1})})
			}
			if left = b[k].hi.cmp(s.hi) < 0; left {
				s.lo = b[k].hi.add(1)
			}
		}
		if left {
			out = append(out, s)
		}
	}
	return out
}
