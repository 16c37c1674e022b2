package portspec

import (
	"fmt"
	"io"
	"iter"
	"math/bits"
	"slices"
	"strings"

	"github.com/portkit/portkit/registry"
)

// PortOptions configures ParsePorts, ReadPortsFile and TopPorts. The zero
// value reads unprefixed ports as TCP and names from IANA's registry.
type PortOptions struct {
	// Protos are the protocols of ports without a T: or U: prefix: TCP,
	// UDP or both. Nil means TCP; a UDP scan says UDP.
	Protos []registry.Proto
	// Registry resolves service names; nil means registry.New(), IANA's
	// table alone.
	Registry *registry.Registry
}

func (o PortOptions) protos() ([]registry.Proto, error) {
	if len(o.Protos) == 0 {
		return []registry.Proto{registry.TCP}, nil
	}
	for _, p := range o.Protos {
		if p != registry.TCP && p != registry.UDP {
			return nil, fmt.Errorf("portspec: PortOptions.Protos has %v; only tcp and udp are lists of ports", p)
		}
	}
	return o.Protos, nil
}

// PortList is a set of ports per protocol, TCP and UDP: each sorted and
// without duplicates. Its zero value is empty. It is not changed after it
// is made, so it is safe for concurrent use.
type PortList struct {
	lists [2][]uint16 // TCP, UDP
}

// protoIndex maps TCP and UDP to their list; callers have checked proto.
func protoIndex(p registry.Proto) int { return int(p - registry.TCP) }

var listProtos = [2]registry.Proto{registry.TCP, registry.UDP}

// ParsePorts reads a port list in nmap's syntax: comma-separated ports
// ("22,80,443"), ranges ("1-1024"; "-1024" is 1-1024, "60000-" is
// 60000-65535, "-" is 1-65535), and service names ("ssh,https": every port
// IANA, or opts.Registry, gives the name for the protocol in effect).
// "T:" and "U:" set the protocol of the items after them, up to the next
// prefix ("T:1-100,U:53,161"); before any prefix, opts.Protos. Port 0 is in
// the list only when written: "0", "0-1023", "0-".
//
// A bad list is an *Error naming the bad item; an unknown service name's
// error suggests close ones.
func ParsePorts(spec string, opts PortOptions) (*PortList, error) {
	p, err := newPortParser(opts)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(spec) == "" {
		return nil, &Error{Input: spec, Reason: "empty port list"}
	}
	for item := range strings.SplitSeq(spec, ",") {
		if err := p.item(strings.TrimSpace(item)); err != nil {
			err.Input = spec
			return nil, err
		}
	}
	if err := p.end(); err != nil {
		err.Input = spec
		return nil, err
	}
	return p.list(), nil
}

// ReadPortsFile reads a file of ports in ParsePorts' syntax, its items
// separated by commas, white space or new lines, with "#" comments; a
// prefix carries on to the following lines. A bad item is an *Error naming
// name and the line.
func ReadPortsFile(r io.Reader, name string, opts PortOptions) (*PortList, error) {
	p, err := newPortParser(opts)
	if err != nil {
		return nil, err
	}
	lastItem, lastLine := "", 0
	err = readSpecFile(r, name, true, func(item string, line int) *Error {
		lastItem, lastLine = item, line
		if err := p.item(item); err != nil {
			err.Input = item
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := p.end(); err != nil {
		err.Input, err.File, err.Line = lastItem, name, lastLine
		return nil, err
	}
	if p.empty() {
		return nil, &Error{Input: name, what: "ports file", Reason: "no ports in it"}
	}
	return p.list(), nil
}

// TopPorts returns the n most commonly open ports (see Top) of each
// protocol of opts.Protos; fewer when the ranking is shorter than n.
func TopPorts(n int, opts PortOptions) (*PortList, error) {
	protos, err := opts.protos()
	if err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, &Error{Input: fmt.Sprint(n), Reason: "the number of top ports is at least 1"}
	}
	l := &PortList{}
	for _, proto := range protos {
		ports := Top(n, proto)
		slices.Sort(ports)
		l.lists[protoIndex(proto)] = ports
	}
	return l, nil
}

// portParser reads the items of a port list into one bit set per protocol.
type portParser struct {
	reg      *registry.Registry
	defaults []registry.Proto
	cur      []registry.Proto // the protocols of the items being read
	prefix   string           // a prefix with no item after it yet
	sets     [2][1 << 16 / 64]uint64
	rows     []registry.Service // reused for name lookups
}

func newPortParser(opts PortOptions) (*portParser, error) {
	protos, err := opts.protos()
	if err != nil {
		return nil, err
	}
	p := &portParser{reg: opts.Registry, defaults: protos, cur: protos}
	if p.reg == nil {
		p.reg = registry.New()
	}
	return p, nil
}

var (
	onlyTCP = []registry.Proto{registry.TCP}
	onlyUDP = []registry.Proto{registry.UDP}
)

// item reads one item: a prefix ("T:", "U:"), perhaps with an item after it,
// a port, a range or a name.
func (p *portParser) item(item string) *Error {
	if len(item) >= 2 && item[1] == ':' {
		switch item[0] | 0x20 { // ASCII lower case
		case 't':
			p.cur = onlyTCP
		case 'u':
			p.cur = onlyUDP
		case 's':
			return &Error{Part: item[:2], Reason: "SCTP ports are not supported (want T: or U:)"}
		case 'p':
			return &Error{Part: item[:2], Reason: "IP protocol numbers are not supported (want T: or U:)"}
		default:
			return &Error{Part: item[:2], Reason: "unknown protocol prefix (want T: or U:)"}
		}
		p.prefix, item = item[:2], strings.TrimSpace(item[2:])
		if item == "" {
			return nil // the items follow
		}
	}
	p.prefix = ""
	if item == "" {
		return &Error{Reason: "empty item in the list"}
	}
	switch c := item[0]; {
	case c >= '0' && c <= '9' || c == '-':
		return p.portRange(item)
	case c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
		return p.name(item)
	}
	return &Error{Part: item, Reason: "not a port, a range or a service name"}
}

// end checks that the list did not end on a bare prefix.
func (p *portParser) end() *Error {
	if p.prefix != "" {
		return &Error{Part: p.prefix, Reason: "no ports after the protocol prefix"}
	}
	return nil
}

func (p *portParser) portRange(item string) *Error {
	if strings.Count(item, "-") > 1 {
		return &Error{Part: item, Reason: "a range has one -"}
	}
	loStr, hiStr, isRange := strings.Cut(item, "-")
	lo, hi := uint16(1), uint16(65535) // the open ends, as nmap's
	for i, s := range [2]string{loStr, hiStr} {
		if s == "" {
			continue
		}
		n, err := registry.ParsePort(s)
		if err != nil {
			return &Error{Part: s, Reason: reason(err)}
		}
		if i == 0 {
			lo = n
		} else {
			hi = n
		}
	}
	switch {
	case !isRange:
		hi = lo
	case hi < lo:
		return &Error{Part: item, Reason: "range ends before it starts"}
	}
	for _, proto := range p.cur {
		p.add(proto, lo, hi)
	}
	return nil
}

// name adds the ports of a service name, for each protocol in effect that
// has the name.
func (p *portParser) name(name string) *Error {
	found := false
	for _, proto := range p.cur {
		p.rows = p.reg.AppendByName(p.rows[:0], name, proto)
		for _, s := range p.rows {
			if s.HasPort {
				p.add(proto, s.Port, s.PortEnd)
				found = true
			}
		}
	}
	if found {
		return nil
	}
	var others []string // the protocols that have the name
	p.rows = p.reg.AppendByName(p.rows[:0], name, registry.AnyProto)
	for _, s := range p.rows {
		if s.HasPort && !slices.Contains(others, s.Proto.String()) {
			others = append(others, s.Proto.String())
		}
	}
	switch {
	case len(others) > 0:
		var cur []string
		for _, proto := range p.cur {
			cur = append(cur, proto.String())
		}
		return &Error{Part: name, Reason: fmt.Sprintf("no %s port has this name (%s has)", strings.Join(cur, " or "), strings.Join(others, ", "))}
	case len(p.rows) > 0:
		return &Error{Part: name, Reason: "this service name has no port number"}
	}
	why := "unknown service name"
	if s := p.reg.Suggest(name, 3); len(s) > 0 {
		why += "; did you mean " + strings.Join(s, ", ") + "?"
	}
	return &Error{Part: name, Reason: why}
}

func (p *portParser) add(proto registry.Proto, lo, hi uint16) {
	set := &p.sets[protoIndex(proto)]
	for port := int(lo); port <= int(hi); {
		if port%64 == 0 && port+63 <= int(hi) {
			set[port/64] = ^uint64(0)
			port += 64
			continue
		}
		set[port/64] |= 1 << (port % 64)
		port++
	}
}

func (p *portParser) empty() bool {
	for _, set := range p.sets {
		for _, w := range set {
			if w != 0 {
				return false
			}
		}
	}
	return true
}

func (p *portParser) list() *PortList {
	l := &PortList{}
	for i, set := range p.sets {
		n := 0
		for _, w := range set {
			n += bits.OnesCount64(w)
		}
		if n == 0 {
			continue
		}
		ports := make([]uint16, 0, n)
		for k, w := range set {
			for ; w != 0; w &= w - 1 {
				ports = append(ports, uint16(k*64+bits.TrailingZeros64(w)))
			}
		}
		l.lists[i] = ports
	}
	return l
}

// Len returns the number of (port, protocol) pairs.
func (l *PortList) Len() int { return len(l.lists[0]) + len(l.lists[1]) }

// At returns the i-th pair, for 0 <= i < Len(): the TCP ports in order,
// then the UDP ports. It panics when i is out of range, as indexing does.
func (l *PortList) At(i int) (uint16, registry.Proto) {
	if n := len(l.lists[0]); i >= n {
		return l.lists[1][i-n], registry.UDP
	}
	return l.lists[0][i], registry.TCP
}

// All yields every pair in At's order.
func (l *PortList) All() iter.Seq2[uint16, registry.Proto] {
	return func(yield func(uint16, registry.Proto) bool) {
		for i, ports := range l.lists {
			for _, port := range ports {
				if !yield(port, listProtos[i]) {
					return
				}
			}
		}
	}
}

// Ports returns the sorted ports of proto, a copy; nil for a protocol other
// than TCP and UDP.
func (l *PortList) Ports(proto registry.Proto) []uint16 {
	if proto != registry.TCP && proto != registry.UDP {
		return nil
	}
	return slices.Clone(l.lists[protoIndex(proto)])
}

// Contains reports whether the list has port for proto.
func (l *PortList) Contains(port uint16, proto registry.Proto) bool {
	if proto != registry.TCP && proto != registry.UDP {
		return false
	}
	_, found := slices.BinarySearch(l.lists[protoIndex(proto)], port)
	return found
}

// String writes the list in ParsePorts' syntax, with ranges and both
// prefixes: "T:22,80,8000-8100,U:53". ParsePorts reads it back to the same
// list whatever its options.
func (l *PortList) String() string {
	var b strings.Builder
	for i, ports := range l.lists {
		if len(ports) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString([2]string{"T:", "U:"}[i])
		writeRanges(&b, ports)
	}
	return b.String()
}

// ProtoString writes proto's ports alone, with ranges and no prefix:
// "22,80,8000-8100", as nmap's scaninfo lists them.
func (l *PortList) ProtoString(proto registry.Proto) string {
	var b strings.Builder
	writeRanges(&b, l.lists[protoIndex(proto)])
	return b.String()
}

// writeRanges writes sorted ports as a comma-separated list of ranges.
func writeRanges(b *strings.Builder, ports []uint16) {
	for k := 0; k < len(ports); {
		j := k
		for j+1 < len(ports) && ports[j+1] == ports[j]+1 {
			j++
		}
		if k > 0 {
			b.WriteByte(',')
		}
		b.WriteString(Range{ports[k], ports[j]}.String())
		k = j + 1
	}
}
