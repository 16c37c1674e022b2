// Package table defines the compact binary form of the IANA registry that
// portkit embeds, with the encoder used by the generator and the decoder used
// at run time.
//
// The file is read in place: nothing is decoded when the program starts, and a
// lookup touches only the few bytes it needs. All integers are little-endian.
//
//	header   magic "PKIANA\x00\x01", then uint32 counts and section offsets
//	records  nrec × 14 bytes: lo u16, hi u16, proto u8, flags u8,
//	         name u32 (string offset), info u32 (info offset)
//	strings  uvarint length + bytes; offset 0 is the empty string; identical
//	         strings are stored once
//	info     per record, deduplicated: uvarint count, then that many string
//	         offsets (uvarint) for description, reference, assignee, contact,
//	         registration date, modification date, service code,
//	         unauthorized use, assignment notes, alias-of — in that order
//	spans    nspan × 2 bytes: first port of each elementary interval of the
//	         port line, ascending (the last interval runs to 65535)
//	covers   (nspan+1) × u32: start of each interval's run in coverList
//	cover    u16 record indexes covering each interval, sorted by protocol
//	         then by registry order
//	names    u16 record indexes with a name, sorted by case-folded name,
//	         then rows with a port first, then protocol, then registry order
package table

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// Magic identifies the file and its format version.
const Magic = "PKIANA\x00\x01"

const (
	recordSize = 14
	headerSize = len(Magic) + 4*10
)

// Record flags.
const (
	FlagHasPort = 1 << iota
)

// Info field positions.
const (
	InfoDescription = iota
	InfoReference
	InfoAssignee
	InfoContact
	InfoRegistered
	InfoModified
	InfoServiceCode
	InfoUnauthorized
	InfoNotes
	InfoAliasOf
	NumInfo
)

// Record is one registry row, as the generator hands it to Build.
type Record struct {
	Name    string
	Lo, Hi  uint16
	HasPort bool
	Proto   uint8
	Info    [NumInfo]string
}

// Build encodes records, in registry order, into the binary table.
func Build(recs []Record) ([]byte, error) {
	if len(recs) > 0xFFFF {
		return nil, fmt.Errorf("table: %d records, at most 65535 fit", len(recs))
	}
	var strs []byte
	strOff := map[string]uint32{}
	putStr := func(s string) uint32 {
		if off, ok := strOff[s]; ok {
			return off
		}
		off := uint32(len(strs))
		strs = binary.AppendUvarint(strs, uint64(len(s)))
		strs = append(strs, s...)
		strOff[s] = off
		return off
	}
	putStr("")

	var info []byte
	infoOff := map[string]uint32{}
	recBytes := make([]byte, 0, len(recs)*recordSize)
	for _, r := range recs {
		if r.Hi < r.Lo {
			return nil, fmt.Errorf("table: record %q: port range %d-%d is reversed", r.Name, r.Lo, r.Hi)
		}
		// Trailing empty fields are left out of the info block.
		n := NumInfo
		for n > 0 && r.Info[n-1] == "" {
			n--
		}
		var blk []byte
		blk = binary.AppendUvarint(blk, uint64(n))
		for _, s := range r.Info[:n] {
			blk = binary.AppendUvarint(blk, uint64(putStr(s)))
		}
		off, ok := infoOff[string(blk)]
		if !ok {
			off = uint32(len(info))
			info = append(info, blk...)
			infoOff[string(blk)] = off
		}
		var flags uint8
		if r.HasPort {
			flags |= FlagHasPort
		}
		recBytes = binary.LittleEndian.AppendUint16(recBytes, r.Lo)
		recBytes = binary.LittleEndian.AppendUint16(recBytes, r.Hi)
		recBytes = append(recBytes, r.Proto, flags)
		recBytes = binary.LittleEndian.AppendUint32(recBytes, putStr(r.Name))
		recBytes = binary.LittleEndian.AppendUint32(recBytes, off)
	}

	spans, covers, cover := buildSpans(recs)
	names := buildNames(recs)

	var out []byte
	out = append(out, Magic...)
	off := uint32(headerSize)
	sections := [][]byte{recBytes, strs, info, spans, covers, cover, names}
	counts := []uint32{uint32(len(recs)), uint32(len(spans) / 2), uint32(len(names) / 2)}
	for _, c := range counts {
		out = binary.LittleEndian.AppendUint32(out, c)
	}
	for _, s := range sections {
		out = binary.LittleEndian.AppendUint32(out, off)
		off += uint32(len(s))
	}
	for _, s := range sections {
		out = append(out, s...)
	}
	return out, nil
}

// buildSpans cuts the port line into elementary intervals: every port in an
// interval is covered by the same set of records.
func buildSpans(recs []Record) (spans, covers, cover []byte) {
	cuts := map[int]bool{0: true}
	for _, r := range recs {
		if r.HasPort {
			cuts[int(r.Lo)] = true
			if r.Hi < 0xFFFF {
				cuts[int(r.Hi)+1] = true
			}
		}
	}
	starts := make([]int, 0, len(cuts))
	for c := range cuts {
		starts = append(starts, c)
	}
	sort.Ints(starts)
	// Records sorted by their first port, so a sweep can find the ones
	// covering each interval.
	order := make([]int, 0, len(recs))
	for i, r := range recs {
		if r.HasPort {
			order = append(order, i)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return recs[order[a]].Lo < recs[order[b]].Lo })
	var active []int
	next := 0
	n := 0
	for _, s := range starts {
		for next < len(order) && int(recs[order[next]].Lo) <= s {
			active = append(active, order[next])
			next++
		}
		live := active[:0]
		for _, i := range active {
			if int(recs[i].Hi) >= s {
				live = append(live, i)
			}
		}
		active = live
		run := append([]int(nil), active...)
		sort.Slice(run, func(a, b int) bool {
			pa, pb := protoRank(recs[run[a]].Proto), protoRank(recs[run[b]].Proto)
			if pa != pb {
				return pa < pb
			}
			return run[a] < run[b]
		})
		spans = binary.LittleEndian.AppendUint16(spans, uint16(s))
		covers = binary.LittleEndian.AppendUint32(covers, uint32(n))
		for _, i := range run {
			cover = binary.LittleEndian.AppendUint16(cover, uint16(i))
			n++
		}
	}
	covers = binary.LittleEndian.AppendUint32(covers, uint32(n))
	return spans, covers, cover
}

// protoRank orders protocols for display: the common ones first, the rows
// that name no protocol last.
func protoRank(p uint8) uint8 {
	if p == 0 {
		return 0xFF
	}
	return p
}

func buildNames(recs []Record) []byte {
	var idx []int
	for i, r := range recs {
		if r.Name != "" {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool {
		ra, rb := &recs[idx[a]], &recs[idx[b]]
		if c := CompareFold(ra.Name, rb.Name); c != 0 {
			return c < 0
		}
		if ra.HasPort != rb.HasPort {
			return ra.HasPort
		}
		return protoRank(ra.Proto) < protoRank(rb.Proto)
	})
	var out []byte
	for _, i := range idx {
		out = binary.LittleEndian.AppendUint16(out, uint16(i))
	}
	return out
}

// CompareFold compares a and b as if both were ASCII-lowercased, without
// allocating. Service names are ASCII (RFC 6335), so ASCII folding is the
// whole of their case-insensitivity.
func CompareFold(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		ca, cb := lower(a[i]), lower(b[i])
		if ca != cb {
			if ca < cb {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// Table is a decoded view of the binary form. Its methods read the data in
// place and do not allocate.
type Table struct {
	data                                         string
	nrec, nspan, nname                           int
	recs, strs, info, spans, covers, cover, name int
}

// ErrFormat is returned by Open for data that is not a table of this format.
var ErrFormat = errors.New("table: not a portkit registry table")

// Open checks data's header and returns a view of it.
func Open(data string) (*Table, error) {
	if len(data) < headerSize || data[:len(Magic)] != Magic {
		return nil, ErrFormat
	}
	t := &Table{data: data}
	h := func(i int) int { return t.u32(len(Magic) + 4*i) }
	t.nrec, t.nspan, t.nname = h(0), h(1), h(2)
	t.recs, t.strs, t.info, t.spans, t.covers, t.cover, t.name = h(3), h(4), h(5), h(6), h(7), h(8), h(9)
	ends := []int{t.recs + t.nrec*recordSize, t.strs, t.info, t.spans + 2*t.nspan, t.covers + 4*(t.nspan+1), t.cover, t.name + 2*t.nname}
	for _, e := range ends {
		if e > len(data) || e < headerSize {
			return nil, fmt.Errorf("%w: section past the end", ErrFormat)
		}
	}
	if t.nspan == 0 {
		return nil, fmt.Errorf("%w: no port spans", ErrFormat)
	}
	return t, nil
}

func (t *Table) u16(off int) int { return int(t.data[off]) | int(t.data[off+1])<<8 }
func (t *Table) u32(off int) int {
	return int(t.data[off]) | int(t.data[off+1])<<8 | int(t.data[off+2])<<16 | int(t.data[off+3])<<24
}

// uvarint decodes at off and returns the value and the offset after it.
func (t *Table) uvarint(off int) (int, int) {
	var v, shift int
	for {
		c := t.data[off]
		off++
		v |= int(c&0x7F) << shift
		if c < 0x80 {
			return v, off
		}
		shift += 7
	}
}

func (t *Table) str(off int) string {
	n, p := t.uvarint(t.strs + off)
	return t.data[p : p+n]
}

// Len is the number of records.
func (t *Table) Len() int { return t.nrec }

// RecordHeader returns the fixed part of record i.
func (t *Table) RecordHeader(i int) (lo, hi uint16, proto uint8, hasPort bool) {
	o := t.recs + i*recordSize
	return uint16(t.u16(o)), uint16(t.u16(o + 2)), t.data[o+4], t.data[o+5]&FlagHasPort != 0
}

// Name returns record i's service name ("" for unassigned and reserved rows).
func (t *Table) Name(i int) string { return t.str(t.u32(t.recs + i*recordSize + 6)) }

// Info returns record i's info fields.
func (t *Table) Info(i int) (f [NumInfo]string) {
	n, p := t.uvarint(t.info + t.u32(t.recs+i*recordSize+10))
	for k := 0; k < n && k < NumInfo; k++ {
		var off int
		off, p = t.uvarint(p)
		f[k] = t.str(off)
	}
	return f
}

// Covering returns the range [from, to) of positions in the cover list that
// hold the records covering port; read them with Cover.
func (t *Table) Covering(port uint16) (from, to int) {
	s := t.span(port)
	return t.u32(t.covers + 4*s), t.u32(t.covers + 4*(s+1))
}

// Cover returns the record index at position k of the cover list.
func (t *Table) Cover(k int) int { return t.u16(t.cover + 2*k) }

// span returns the index of the interval holding port.
func (t *Table) span(port uint16) int {
	lo, hi := 0, t.nspan // invariant: spanStart(lo) <= port < spanStart(hi)
	for hi-lo > 1 {
		m := int(uint(lo+hi) >> 1)
		if t.u16(t.spans+2*m) <= int(port) {
			lo = m
		} else {
			hi = m
		}
	}
	return lo
}

// Spans returns the number of elementary intervals; SpanAt returns the
// interval k's first port and its cover-list range.
func (t *Table) Spans() int { return t.nspan }

// SpanAt returns interval k: its first and last port and its cover range.
func (t *Table) SpanAt(k int) (first, last uint16, from, to int) {
	first = uint16(t.u16(t.spans + 2*k))
	last = 0xFFFF
	if k+1 < t.nspan {
		last = uint16(t.u16(t.spans+2*(k+1)) - 1)
	}
	return first, last, t.u32(t.covers + 4*k), t.u32(t.covers + 4*(k+1))
}

// SpanOf returns the index of the interval holding port.
func (t *Table) SpanOf(port uint16) int { return t.span(port) }

// Named returns the range [from, to) of positions in the name index whose
// record's name equals name, ignoring ASCII case.
func (t *Table) Named(name string) (from, to int) {
	lo, hi := 0, t.nname
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if CompareFold(t.Name(t.NameAt(m)), name) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	from = lo
	for hi = lo; hi < t.nname && CompareFold(t.Name(t.NameAt(hi)), name) == 0; hi++ {
	}
	return from, hi
}

// NameCount is the number of entries in the name index.
func (t *Table) NameCount() int { return t.nname }

// NameAt returns the record index at position k of the name index.
func (t *Table) NameAt(k int) int { return t.u16(t.name + 2*k) }
