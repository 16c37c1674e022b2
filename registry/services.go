package registry

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
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
	entries, perr := ParseServices(f)
	r.overlay = r.missing(entries)
	if perr != nil {
		return r, fmt.Errorf("%s: %w", opts.Services, perr)
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
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		body, comment, _ := strings.Cut(text, "#")
		fields := strings.Fields(body)
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
				errs = append(errs, &ServicesLineError{Line: line, Text: strings.TrimSpace(text), Reason: reason})
			}
			continue
		}
		e.Comment = strings.TrimSpace(comment)
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

func servicesEntry(fields []string) (ServicesEntry, string) {
	if len(fields) < 2 {
		return ServicesEntry{}, "no port/protocol after the name"
	}
	portStr, protoStr, ok := strings.Cut(fields[1], "/")
	if !ok {
		return ServicesEntry{}, "port has no /protocol"
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return ServicesEntry{}, "bad port number"
	}
	if protoStr == "" {
		return ServicesEntry{}, "no protocol after the slash"
	}
	proto, err := ParseProto(protoStr)
	if err != nil || proto == AnyProto {
		// A well-formed line for a protocol portkit does not model, such
		// as AppleTalk's ddp in Debian's file.
		return ServicesEntry{}, ""
	}
	return ServicesEntry{Name: fields[0], Aliases: fields[2:], Port: uint16(port), Proto: proto}, ""
}

// missing returns the overlay rows for the names in entries that IANA does
// not already have on that port and protocol, each once, sorted by port.
func (r *Registry) missing(entries []ServicesEntry) []Service {
	var out, buf []Service
	for _, e := range entries {
		covers := func(s Service) bool { return s.HasPort && s.Port <= e.Port && e.Port <= s.PortEnd }
		for k, name := range append([]string{e.Name}, e.Aliases...) {
			buf = r.AppendByName(buf[:0], name, e.Proto)
			if slices.ContainsFunc(buf, covers) {
				continue
			}
			dup := func(s Service) bool { return strings.EqualFold(s.Name, name) && s.Proto == e.Proto && covers(s) }
			if slices.ContainsFunc(out, dup) {
				continue
			}
			s := Service{Name: name, Port: e.Port, PortEnd: e.Port, HasPort: true, Proto: e.Proto,
				Source: EtcServices, Description: e.Comment}
			if k > 0 {
				s.AliasOf = e.Name
			}
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b Service) int { return cmp.Compare(a.Port, b.Port) })
	return out
}
