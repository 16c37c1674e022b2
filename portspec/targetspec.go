package portspec

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// maxPatternSpans bounds the separate intervals one IPv4 octet pattern may
// make: "10.0-255.0-255.1" makes 65,536 (one per /24), "*.*.*.1" would make
// 16.7 million, which is the expansion Targets exists to avoid.
const maxPatternSpans = 1 << 16

// targetSpec is one target spec, read but not resolved: a hostname, or
// addresses given by first and last, or an IPv4 octet pattern.
type targetSpec struct {
	host        string
	first, last netip.Addr
	octets      *octetPattern
	// sizePart is the part to blame when an IPv6 block or range is too
	// large: the prefix length ("/64") or the whole range.
	sizePart string
}

func (t *targetSpec) is4() bool { return t.octets != nil || t.first.Is4() }

// badTarget is an Error about target spec in.
func badTarget(in, part, reason string) *Error {
	return &Error{what: "target", Input: in, Part: part, Reason: reason}
}

// parseTargetSpec reads one target spec: an IPv4 or IPv6 address, a CIDR
// block, an IPv6 range "A-B", an IPv4 range in one of nmap's forms (a full
// range "198.18.0.1-198.18.0.9"; per-octet ranges and lists
// "198.18.0-3.1,5", with "*" or "-" for 0-255 and open ends "10-", "-9";
// "198.18.0.1-20" is one), or a hostname.
func parseTargetSpec(in string) (targetSpec, *Error) {
	s := strings.TrimSpace(in)
	switch {
	case s == "":
		return targetSpec{}, badTarget(in, "", "empty target")
	case strings.Contains(s, "/"):
		return parseBlock(in, s)
	case strings.Contains(s, ":"):
		return parseIPv6(in, s)
	case isIPv4Pattern(s):
		return parseIPv4(in, s)
	}
	if part, reason := checkHostname(s); reason != "" {
		return targetSpec{}, badTarget(in, part, reason)
	}
	return targetSpec{host: s}, nil
}

// isIPv4Pattern reports whether s is made only of what IPv4 addresses and
// octet patterns are made of; such a spec is never taken for a hostname, so
// "198.18.0.256" is a bad address rather than a name to look up.
func isIPv4Pattern(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && c != '.' && c != ',' && c != '-' && c != '*' {
			return false
		}
	}
	return true
}

func parseBlock(in, s string) (targetSpec, *Error) {
	addrPart, bitsPart, _ := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addrPart)
	switch {
	case addrPart == "":
		return targetSpec{}, badTarget(in, s, "a CIDR block needs an address before the /")
	case err == nil && a.Zone() != "":
		return targetSpec{}, badTarget(in, addrPart, "zoned IPv6 addresses are not supported")
	case err == nil:
	case strings.Contains(addrPart, ":"):
		return targetSpec{}, badTarget(in, addrPart, "not an IPv6 address")
	case !isIPv4Pattern(addrPart):
		return targetSpec{}, badTarget(in, s, "a prefix length needs an address, not a hostname")
	case strings.ContainsAny(addrPart, ",-*"):
		return targetSpec{}, badTarget(in, addrPart, "a CIDR block starts with one address, not a range")
	default:
		_, bad := parseIPv4(addrPart, addrPart) // to name the bad octet
		if bad == nil {
			return targetSpec{}, badTarget(in, addrPart, "not an IPv4 address")
		}
		return targetSpec{}, badTarget(in, bad.Part, bad.Reason)
	}
	bits, ok := parseDecimal(bitsPart, a.BitLen())
	if !ok {
		return targetSpec{}, badTarget(in, "/"+bitsPart, fmt.Sprintf("a prefix length is a number from 0 to %d", a.BitLen()))
	}
	p := netip.PrefixFrom(a, bits).Masked()
	t := targetSpec{first: p.Addr(), last: lastOf(p), sizePart: "/" + bitsPart}
	unmapBoth(&t)
	return t, nil
}

// lastOf returns the last address of p.
func lastOf(p netip.Prefix) netip.Addr {
	b := p.Addr().As16()
	host := p.Bits()
	if p.Addr().Is4() {
		host += 96
	}
	for i := range b {
		switch {
		case host >= 8*(i+1):
		case host <= 8*i:
			b[i] = 0xff
		default:
			b[i] |= 0xff >> (host - 8*i)
		}
	}
	last := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		last = last.Unmap()
	}
	return last
}

// unmapBoth turns IPv6 bounds that are both IPv4-mapped into IPv4 ones.
func unmapBoth(t *targetSpec) {
	if t.first.Is4In6() && t.last.Is4In6() {
		t.first, t.last = t.first.Unmap(), t.last.Unmap()
	}
}

func parseIPv6(in, s string) (targetSpec, *Error) {
	if i := strings.IndexByte(s, '%'); i >= 0 {
		return targetSpec{}, badTarget(in, s[i:], "zoned IPv6 addresses are not supported")
	}
	lo, hi, isRange := strings.Cut(s, "-")
	first, err := netip.ParseAddr(lo)
	if err != nil || !first.Is6() {
		return targetSpec{}, badTarget(in, lo, "not an IPv6 address")
	}
	t := targetSpec{first: first, last: first, sizePart: s}
	if isRange {
		if t.last, err = netip.ParseAddr(hi); err != nil || !t.last.Is6() {
			return targetSpec{}, badTarget(in, hi, "not an IPv6 address")
		}
		if t.last.Less(first) {
			return targetSpec{}, badTarget(in, s, "range ends before it starts")
		}
	}
	unmapBoth(&t)
	return t, nil
}

func parseIPv4(in, s string) (targetSpec, *Error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return targetSpec{first: a, last: a}, nil
	}
	// A full range: both sides whole addresses.
	if lo, hi, ok := strings.Cut(s, "-"); ok && strings.Contains(hi, ".") {
		if first, err := netip.ParseAddr(lo); err == nil {
			last, err := netip.ParseAddr(hi)
			if err != nil {
				return targetSpec{}, badTarget(in, hi, "not an IPv4 address")
			}
			if last.Less(first) {
				return targetSpec{}, badTarget(in, s, "range ends before it starts")
			}
			return targetSpec{first: first, last: last}, nil
		}
	}
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return targetSpec{}, badTarget(in, s, "an IPv4 address or range has four octets")
	}
	var p octetPattern
	for i, part := range parts {
		runs, err := parseOctet(part)
		if err != nil {
			err.Input = in
			if err.Part == "" {
				err.Part = s
			}
			return targetSpec{}, err
		}
		p[i] = runs
	}
	if n := p.spanCount(); n > maxPatternSpans {
		return targetSpec{}, badTarget(in, s, fmt.Sprintf("the octet ranges make %d separate address ranges, more than %d; use CIDR blocks", n, maxPatternSpans))
	}
	return targetSpec{octets: &p}, nil
}

// run8 is an inclusive range of octet values.
type run8 struct{ lo, hi uint8 }

// octetPattern is an IPv4 pattern: for each octet, its values as sorted,
// merged runs. Its addresses are every combination.
type octetPattern [4][]run8

// parseOctet reads one octet of a pattern: a comma list of "N", "N-M",
// "N-", "-M", "-" or "*".
func parseOctet(part string) ([]run8, *Error) {
	if part == "" {
		return nil, badTarget("", "", "empty octet")
	}
	var runs []run8
	for item := range strings.SplitSeq(part, ",") {
		r := run8{0, 255}
		lo, hi, isRange := strings.Cut(item, "-")
		switch {
		case item == "":
			return nil, badTarget("", part, "empty item in an octet list")
		case item == "*":
		case !isRange:
			hi = lo
			fallthrough
		default:
			for i, num := range [2]string{lo, hi} {
				if num == "" {
					continue // an open end
				}
				if len(num) > 1 && num[0] == '0' {
					return nil, badTarget("", num, "leading zero in an octet (it would be octal to some tools)")
				}
				n, ok := parseDecimal(num, 255)
				if !ok {
					return nil, badTarget("", num, "an octet is a number from 0 to 255")
				}
				if i == 0 {
					r.lo = uint8(n)
				} else {
					r.hi = uint8(n)
				}
			}
			if r.hi < r.lo {
				return nil, badTarget("", item, "range ends before it starts")
			}
		}
		runs = append(runs, r)
	}
	return mergeRuns(runs), nil
}

func mergeRuns(runs []run8) []run8 {
	for i := 1; i < len(runs); i++ { // insertion sort: octet lists are short
		for j := i; j > 0 && runs[j].lo < runs[j-1].lo; j-- {
			runs[j], runs[j-1] = runs[j-1], runs[j]
		}
	}
	out := runs[:1]
	for _, r := range runs[1:] {
		last := &out[len(out)-1]
		if int(r.lo) <= int(last.hi)+1 {
			last.hi = max(last.hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// layout says how p becomes spans: the octets after index j are all 0-255,
// so each run of octet j, under each combination of the octets before it,
// is one span; j is -1 when every octet is 0-255.
func (p *octetPattern) layout() (j int) {
	j = 3
	for j >= 0 && len(p[j]) == 1 && p[j][0] == (run8{0, 255}) {
		j--
	}
	return j
}

// spanCount is the number of spans p makes.
func (p *octetPattern) spanCount() uint64 {
	j := p.layout()
	if j < 0 {
		return 1
	}
	n := uint64(len(p[j]))
	for _, runs := range p[:j] {
		n *= runSize(runs)
	}
	return n
}

func runSize(runs []run8) uint64 {
	var n uint64
	for _, r := range runs {
		n += uint64(r.hi-r.lo) + 1
	}
	return n
}

// appendSpans appends p's spans, in order.
func (p *octetPattern) appendSpans(dst []span) []span {
	j := p.layout()
	if j < 0 {
		return append(dst, span{u128{}, v4Last})
	}
	shift := 8 * uint(3-j) // bits below octet j
	var walk func(i int, prefix uint64)
	walk = func(i int, prefix uint64) {
		if i == j {
			for _, r := range p[j] {
				lo := (prefix<<8 | uint64(r.lo)) << shift
				hi := (prefix<<8|uint64(r.hi))<<shift | (1<<shift - 1)
				dst = append(dst, span{u128{0, lo}, u128{0, hi}})
			}
			return
		}
		for _, r := range p[i] {
			for v := uint64(r.lo); v <= uint64(r.hi); v++ {
				walk(i+1, prefix<<8|v)
			}
		}
	}
	walk(0, 0)
	return dst
}

// parseDecimal reads a decimal number from 0 to limit, digits only.
func parseDecimal(s string, limit int) (int, bool) {
	if s == "" || len(s) > 3 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n <= limit
}

// checkHostname returns the part of s at fault and why, when s cannot be a
// hostname (RFC 1123 letters, digits and hyphens, and the underscores
// internal names use).
func checkHostname(s string) (part, reason string) {
	name := strings.TrimSuffix(s, ".")
	if len(name) > 253 {
		return s, "a hostname is at most 253 characters"
	}
	labels := strings.Split(name, ".")
	for _, label := range labels {
		switch {
		case label == "":
			return s, "empty label in a hostname"
		case len(label) > 63:
			return label, "a hostname label is at most 63 characters"
		case label[0] == '-' || label[len(label)-1] == '-':
			return label, "a hostname label does not start or end with -"
		}
		for _, c := range label {
			switch {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			case c > 127:
				return label, "not ASCII: write an international name in its xn-- form"
			default:
				return label, fmt.Sprintf("%q is not allowed in a hostname", c)
			}
		}
	}
	if last := labels[len(labels)-1]; strings.TrimLeft(last, "0123456789") == "" {
		return s, "not an address, and not a hostname (its last label is a number)"
	}
	return "", ""
}
