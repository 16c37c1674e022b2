package registry

import (
	"cmp"
	"github.com/portkit/portkit/registry/internal/table"
	"slices"
	"strings"
)

// AppendByPort appends the rows for port to dst and returns it. When no row
// covers the port for proto, it appends one unassigned row, so the answer is
// never empty.
func (r *Registry) AppendByPort(dst []Service, port uint16, proto Proto) []Service {
	n := len(dst)
	from, to := r.t.Covering(port)
	for k := from; k < to; k++ {
		i := r.t.Cover(k)
		if _, _, p, _ := r.t.RecordHeader(i); Proto(p).matches(proto) {
			dst = append(dst, r.service(i))
		}
	}
	dst = r.appendLocal(dst, r.localPort(port), func(e *ServicesEntry, _ string) bool { return e.Proto.matches(proto) })
	if len(dst) == n {
		dst = append(dst, unassigned(port, port, proto))
	}
	return dst
}

func unassigned(lo, hi uint16, proto Proto) Service {
	return Service{Port: lo, PortEnd: hi, HasPort: true, Proto: proto, Description: "Unassigned"}
}

// AppendByRange appends the rows that cover any port from lo to hi, each
// once, in port order, with unassigned rows for the gaps no row covers.
func (r *Registry) AppendByRange(dst []Service, lo, hi uint16, proto Proto) []Service {
	if hi < lo {
		lo, hi = hi, lo
	}
	n := len(dst)
	first, last := r.t.SpanOf(lo), r.t.SpanOf(hi)
	for k := first; k <= last; k++ {
		start, end, from, to := r.t.SpanAt(k)
		found := false
		for c := from; c < to; c++ {
			i := r.t.Cover(c)
			rlo, _, p, _ := r.t.RecordHeader(i)
			if !Proto(p).matches(proto) {
				continue
			}
			found = true
			// A row spanning several intervals is listed where it starts,
			// or in the first interval of the query.
			if rlo >= start || k == first {
				dst = append(dst, r.service(i))
			}
		}
		if !found {
			gapLo, gapHi := max(start, lo), min(end, hi)
			if m := len(dst); m > n && dst[m-1].Unassigned() && dst[m-1].PortEnd+1 == gapLo && dst[m-1].Proto == proto {
				dst[m-1].PortEnd = gapHi
			} else {
				dst = append(dst, unassigned(gapLo, gapHi, proto))
			}
		}
	}
	dst = r.appendLocal(dst, r.local, func(e *ServicesEntry, _ string) bool {
		return lo <= e.Port && e.Port <= hi && e.Proto.matches(proto)
	})
	slices.SortStableFunc(dst[n:], func(a, b Service) int { return cmp.Compare(a.Port, b.Port) })
	return dst
}

// AppendByName appends the rows whose service name equals name, ignoring
// case. Aliases are rows of their own: "www" answers with the www rows, whose
// AliasOf is "http".
func (r *Registry) AppendByName(dst []Service, name string, proto Proto) []Service {
	from, to := r.t.Named(name)
	for k := from; k < to; k++ {
		i := r.t.NameAt(k)
		if _, _, p, _ := r.t.RecordHeader(i); Proto(p).matches(proto) {
			dst = append(dst, r.service(i))
		}
	}
	names := r.overlayNames()
	i, _ := slices.BinarySearchFunc(names, name, func(l localName, n string) int { return table.CompareFold(l.name, n) })
	for ; i < len(names) && strings.EqualFold(names[i].name, name); i++ {
		l := names[i]
		dst = r.appendLocalName(dst, &r.local[l.entry], l.alias, func(e *ServicesEntry, _ string) bool { return e.Proto.matches(proto) })
	}
	return dst
}

// AppendSearch appends the rows whose name or description contains word,
// ignoring case, in registry order.
func (r *Registry) AppendSearch(dst []Service, word string, proto Proto) []Service {
	word = strings.TrimSpace(word)
	if word == "" {
		return dst
	}
	for i := 0; i < r.t.Len(); i++ {
		if _, _, p, _ := r.t.RecordHeader(i); !Proto(p).matches(proto) {
			continue
		}
		name := r.t.Name(i)
		if name == "" {
			continue // unassigned and reserved rows are not search hits
		}
		if containsFold(name, word) || containsFold(r.t.Info(i)[table.InfoDescription], word) {
			dst = append(dst, r.service(i))
		}
	}
	return r.appendLocal(dst, r.local, func(e *ServicesEntry, n string) bool {
		return e.Proto.matches(proto) && (containsFold(n, word) || containsFold(e.Comment, word))
	})
}

// containsFold reports whether sub is in s, ignoring ASCII case, without
// allocating.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// names calls yield with every distinct service name and its first port
// (65536 for a name without one), IANA's first.
func (r *Registry) names(yield func(name string, port int)) {
	prev := ""
	for k := 0; k < r.t.NameCount(); k++ {
		i := r.t.NameAt(k)
		if n := r.t.Name(i); !strings.EqualFold(n, prev) {
			lo, _, _, hasPort := r.t.RecordHeader(i)
			port := int(lo)
			if !hasPort {
				port = 1 << 16
			}
			yield(n, port)
			prev = n
		}
	}
	for _, e := range r.local {
		for _, n := range append([]string{e.Name}, e.Aliases...) {
			yield(n, int(e.Port))
		}
	}
}

// PortName returns the name of the service on port for proto: the first
// named row, IANA's before the local overlay's; "" when no row has a name.
// It does not allocate.
func (r *Registry) PortName(port uint16, proto Proto) string {
	from, to := r.t.Covering(port)
	for k := from; k < to; k++ {
		i := r.t.Cover(k)
		if _, _, p, _ := r.t.RecordHeader(i); Proto(p).matches(proto) {
			if n := r.t.Name(i); n != "" {
				return n
			}
		}
	}
	var buf [4]Service
	local := r.appendLocal(buf[:0], r.localPort(port), func(e *ServicesEntry, _ string) bool { return e.Proto.matches(proto) })
	if len(local) > 0 {
		return local[0].Name
	}
	return ""
}
