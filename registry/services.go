package registry

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/portkit/portkit/registry/internal/table"
)

// ServicesFile is where Unix systems keep their local services database.
const ServicesFile = "/etc/services"

// Options configures Open.
type Options struct {
	// Services is a file in /etc/services format read as a local overlay:
	// names in it that IANA lacks are answered too, with Source EtcServices.
	// Empty means no overlay.
	Services string
}

// Open returns a registry of IANA's data with the overlay Options name.
// The returned Registry is always usable: when the overlay cannot be read,
// or some of its lines are malformed, Open returns the registry with what
// could be read and an error that says what could not.
func Open(opts Options) (*Registry, error) {
	r := New()
	if opts.Services == "" {
		return r, nil
	}
	f, err := os.Open(opts.Services)
	if err != nil {
		return r, err
	}
	defer f.Close()
	r.local, err = ParseServices(f)
	r.indexLocal()
	if err != nil {
		return r, fmt.Errorf("%s: %w", opts.Services, err)
	}
	return r, nil
}

// ServicesEntry is one line of a services file: a name, its aliases, and
// where it lives.
type ServicesEntry struct {
	Name    string
	Aliases []string
	Port    uint16
	Proto   Proto
	Comment string
}

// ServicesLineError is a malformed line of a services file.
type ServicesLineError struct {
	Line   int
	Text   string
	Reason string
}

func (e *ServicesLineError) Error() string {
	return fmt.Sprintf("line %d: %s: %q", e.Line, e.Reason, e.Text)
}

// maxLineErrors bounds how many malformed lines are reported one by one.
const maxLineErrors = 5

// ParseServices reads a file in /etc/services format (services(5)):
// "name port/protocol [aliases…] [# comment]". Lines for protocols other
// than tcp, udp, sctp and dccp are skipped. Malformed lines are skipped and
// reported in the returned error; the good lines are returned all the same.
func ParseServices(rd io.Reader) ([]ServicesEntry, error) {
	var (
		out  []ServicesEntry
		errs []error
		bad  int
	)
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var fields [][]byte // one line's, reused
	for line := 1; sc.Scan(); line++ {
		text := sc.Bytes()
		body, comment, _ := bytes.Cut(text, []byte{'#'})
		fields = appendFields(fields[:0], body)
		if len(fields) == 0 {
			continue
		}
		e, reason := servicesEntry(fields)
		if reason == "" && e.Name == "" {
			continue
		}
		if reason != "" {
			bad++
			if len(errs) < maxLineErrors {
				errs = append(errs, &ServicesLineError{Line: line, Text: string(bytes.TrimSpace(text)), Reason: reason})
			}
			continue
		}
		if c := bytes.TrimSpace(comment); len(c) > 0 {
			e.Comment = string(c)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	if bad > len(errs) {
		errs = append(errs, fmt.Errorf("%d more malformed lines", bad-maxLineErrors))
	}
	return out, errors.Join(errs...)
}

// appendFields appends the blank-separated fields of b to dst, as
// strings.Fields does for ASCII blanks, without allocating when dst has
// room: a services file is read on every lookup, mostly to skip its lines.
func appendFields(dst [][]byte, b []byte) [][]byte {
	for {
		i := 0
		for i < len(b) && isBlank(b[i]) {
			i++
		}
		b = b[i:]
		if len(b) == 0 {
			return dst
		}
		j := 0
		for j < len(b) && !isBlank(b[j]) {
			j++
		}
		dst = append(dst, b[:j])
		b = b[j:]
	}
}

func isBlank(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

// servicesEntry reads the fields of one line; the strings of the entry are
// made only for a line that is kept.
func servicesEntry(fields [][]byte) (ServicesEntry, string) {
	if len(fields) < 2 {
		return ServicesEntry{}, "no port/protocol after the name"
	}
	portStr, protoStr, ok := bytes.Cut(fields[1], []byte{'/'})
	if !ok {
		return ServicesEntry{}, "port has no /protocol"
	}
	port, ok := parsePort(portStr)
	if !ok {
		return ServicesEntry{}, "bad port number"
	}
	if len(protoStr) == 0 {
		return ServicesEntry{}, "no protocol after the slash"
	}
	proto := AnyProto
	for i, n := range protoNames {
		if strings.EqualFold(string(protoStr), n) { // no allocation: compared in place
			proto = Proto(i)
		}
	}
	if proto == AnyProto {
		// A well-formed line for a protocol portkit does not model, such
		// as AppleTalk's ddp in Debian's file.
		return ServicesEntry{}, ""
	}
	e := ServicesEntry{Name: string(fields[0]), Port: port, Proto: proto}
	if len(fields) > 2 {
		e.Aliases = make([]string, len(fields)-2)
		for i, a := range fields[2:] {
			e.Aliases[i] = string(a)
		}
	}
	return e, ""
}

// parsePort parses a decimal port number, as strconv.ParseUint(s, 10, 16)
// does, without making a string of it.
func parsePort(b []byte) (uint16, bool) {
	if len(b) == 0 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n = n*10 + int(c-'0'); n > 0xffff {
			return 0, false
		}
	}
	return uint16(n), true
}

// localName is one name of the overlay: an entry's name (alias 0) or its
// alias number alias.
type localName struct {
	name         string
	entry, alias int
}

// indexLocal sorts the overlay by port and readies the index of its names,
// so lookups by port and by name stay binary searches with an overlay too.
// The names are sorted on the first lookup by name: a lookup by port, which
// a command line makes once, does not pay for it.
func (r *Registry) indexLocal() {
	byPort := func(a, b ServicesEntry) int { return cmp.Compare(a.Port, b.Port) }
	if !slices.IsSortedFunc(r.local, byPort) { // services files mostly are
		slices.SortStableFunc(r.local, byPort)
	}
	r.localNames = sync.OnceValue(func() []localName {
		var names []localName
		for i, e := range r.local {
			names = append(names, localName{e.Name, i, 0})
			for k, a := range e.Aliases {
				names = append(names, localName{a, i, k + 1})
			}
		}
		slices.SortFunc(names, func(a, b localName) int {
			if c := table.CompareFold(a.name, b.name); c != 0 {
				return c
			}
			return cmp.Or(cmp.Compare(a.entry, b.entry), cmp.Compare(a.alias, b.alias))
		})
		return names
	})
}

// overlayNames is the overlay's names, sorted ignoring case.
func (r *Registry) overlayNames() []localName {
	if r.localNames == nil {
		return nil
	}
	return r.localNames()
}

// localPort returns the overlay entries on port.
func (r *Registry) localPort(port uint16) []ServicesEntry {
	i, _ := slices.BinarySearchFunc(r.local, port, func(e ServicesEntry, p uint16) int { return cmp.Compare(e.Port, p) })
	j := i
	for j < len(r.local) && r.local[j].Port == port {
		j++
	}
	return r.local[i:j]
}

// appendLocal appends the overlay rows for the names that keep selects
// among entries, leaving out those IANA already registers on that port and
// protocol, and listing each once. The overlay is compared with IANA at
// query time, not when the registry opens, so a question pays only for the
// lines it is about.
func (r *Registry) appendLocal(dst []Service, entries []ServicesEntry, keep func(e *ServicesEntry, name string) bool) []Service {
	for i := range entries {
		e := &entries[i]
		for k := 0; k <= len(e.Aliases); k++ {
			dst = r.appendLocalName(dst, e, k, keep)
		}
	}
	return dst
}

// appendLocalName appends the row for alias k of e (0: its name).
func (r *Registry) appendLocalName(dst []Service, e *ServicesEntry, k int, keep func(e *ServicesEntry, name string) bool) []Service {
	name := e.Name
	if k > 0 {
		name = e.Aliases[k-1]
	}
	if !keep(e, name) || r.ianaHas(name, e.Port, e.Proto) {
		return dst
	}
	for _, s := range dst {
		if s.Source == EtcServices && s.Port == e.Port && s.Proto == e.Proto && strings.EqualFold(s.Name, name) {
			return dst // the file repeats itself
		}
	}
	s := Service{Name: name, Port: e.Port, PortEnd: e.Port, HasPort: true, Proto: e.Proto,
		Source: EtcServices, Description: e.Comment}
	if k > 0 {
		s.AliasOf = e.Name
	}
	return append(dst, s)
}

// ianaHas reports whether IANA registers name on port for proto. It reads
// only the fixed part of the records, as it runs for every line of the
// overlay when a registry opens.
func (r *Registry) ianaHas(name string, port uint16, proto Proto) bool {
	from, to := r.t.Named(name)
	for k := from; k < to; k++ {
		lo, hi, p, hasPort := r.t.RecordHeader(r.t.NameAt(k))
		if hasPort && lo <= port && port <= hi && Proto(p).matches(proto) {
			return true
		}
	}
	return false
}
