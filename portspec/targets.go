package portspec

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"math/bits"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Family selects the address families of targets.
type Family uint8

const (
	AnyFamily Family = 0 // IPv4 and IPv6
	IPv4      Family = 4 // -4
	IPv6      Family = 6 // -6
)

// network is the network a resolver is asked for.
func (f Family) network() string {
	switch f {
	case IPv4:
		return "ip4"
	case IPv6:
		return "ip6"
	}
	return "ip"
}

// wants reports whether an address of family 4 or 6 (is4) is wanted.
func (f Family) wants(is4 bool) bool { return f == AnyFamily || (f == IPv4) == is4 }

// Resolver looks up a host's addresses; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// DefaultMaxIPv6Block is the largest IPv6 block a target may be, as a
// prefix length, when TargetOptions does not say: a /112, 65,536 addresses.
const DefaultMaxIPv6Block = 112

// lookupWorkers bounds the hostnames resolved at once.
const lookupWorkers = 8

// TargetOptions configures ParseTargets. The zero value resolves through
// net.DefaultResolver, keeps both families and refuses IPv6 blocks larger
// than DefaultMaxIPv6Block.
type TargetOptions struct {
	// Family keeps only addresses of one family: hostnames' addresses of
	// the other are dropped, and address specs of the other are errors.
	Family Family
	// Resolver resolves hostnames; nil means net.DefaultResolver.
	Resolver Resolver
	// MaxIPv6Block is the largest IPv6 block or range a spec may name, as
	// a prefix length (64 allows a /64); 0 means DefaultMaxIPv6Block.
	// Exclusions are not limited.
	MaxIPv6Block int
	// Exclude are specs, of the same syntax, whose addresses are left out.
	// Their hostnames are resolved too; one that does not resolve is always
	// an error, as skipping it would scan what was meant to be left out.
	Exclude []string
	// Unresolved decides about a target hostname that does not resolve (or
	// has no address of Family): returning nil skips the name, returning an
	// error stops ParseTargets with it. When Unresolved is nil, ParseTargets
	// stops with the *ResolveError; nmap's behaviour is a func that warns
	// and returns nil.
	Unresolved func(*ResolveError) error
}

// ResolveError is a hostname that did not resolve.
type ResolveError struct {
	Host string
	Err  error // from the Resolver; a *net.DNSError when no address was found
}

func (e *ResolveError) Error() string { return fmt.Sprintf("resolve %q: %v", e.Host, e.Err) }

func (e *ResolveError) Unwrap() error { return e.Err }

// BadInput reports whether the name does not exist or has no address of the
// family asked for: the user's input is wrong, rather than the resolver
// failing.
func (e *ResolveError) BadInput() bool {
	var de *net.DNSError
	return errors.As(e.Err, &de) && de.IsNotFound
}

// Targets is a set of addresses, kept as sorted, disjoint address ranges
// (IPv4 first, then IPv6), never expanded: a /8 costs one range. Its zero
// value is the empty set. A Targets is safe for concurrent reads.
type Targets struct {
	spans []span   // normalized
	cum   []uint64 // cum[k]: the addresses in spans before spans[k]
	n     uint64
	names map[netip.Addr]string
}

// ParseTargets reads target specs, resolving the hostnames among them once
// each, and returns their addresses less those of opts.Exclude. A spec is an
// IPv4 or IPv6 address, a CIDR block ("198.18.0.0/24", "2001:db8::/120";
// host bits are ignored), an IPv6 range ("2001:db8::1-2001:db8::9"), an
// IPv4 range in nmap's forms ("198.18.0.1-198.18.0.9", "198.18.0.1-20",
// "198.18.0-3.1", "198.18.0.1,3,5-7", "198.18.*.1"), or a hostname, which
// stands for all its addresses of opts.Family. Overlapping specs count once.
//
// A bad spec is an *Error naming the bad part; a hostname that does not
// resolve is a *ResolveError, unless opts.Unresolved says otherwise.
func ParseTargets(ctx context.Context, specs []string, opts TargetOptions) (*Targets, error) {
	b := targetBuilder{opts: opts, hostIndex: map[string]int{}}
	switch {
	case opts.Family != AnyFamily && opts.Family != IPv4 && opts.Family != IPv6:
		return nil, fmt.Errorf("portspec: Family %d is not 0, 4 or 6", opts.Family)
	case opts.MaxIPv6Block < 0 || opts.MaxIPv6Block > 128:
		return nil, fmt.Errorf("portspec: MaxIPv6Block %d is not a prefix length", opts.MaxIPv6Block)
	case opts.MaxIPv6Block == 0:
		b.opts.MaxIPv6Block = DefaultMaxIPv6Block
	}
	for _, s := range specs {
		if err := b.add(s, false); err != nil {
			return nil, err
		}
	}
	for _, s := range opts.Exclude {
		if err := b.add(s, true); err != nil {
			return nil, err
		}
	}
	names, err := b.resolve(ctx)
	if err != nil {
		return nil, err
	}
	incl, excl := normalize(b.incl), normalize(b.excl)
	switch opts.Family { // IPv4-mapped addresses inside an IPv6 block are IPv4
	case IPv4:
		excl = append(excl, span{v6First, maxKey})
	case IPv6:
		excl = append([]span{{u128{}, v4Last}}, excl...)
	}
	if len(excl) > 0 {
		incl = subtract(incl, normalize(excl))
	}
	return newTargets(incl, names)
}

func newTargets(spans []span, names map[netip.Addr]string) (*Targets, error) {
	t := &Targets{spans: spans, cum: make([]uint64, len(spans)), names: names}
	for k, s := range spans {
		t.cum[k] = t.n
		size := s.sizeLess1()
		var carry uint64
		t.n, carry = bits.Add64(t.n, size.lo, 1)
		if size.hi != 0 || carry != 0 {
			return nil, &Error{what: "targets", Reason: fmt.Sprintf("more than %d addresses", uint64(math.MaxUint64))}
		}
	}
	return t, nil
}

// targetBuilder gathers the spans and hostnames of specs and exclusions.
type targetBuilder struct {
	opts       TargetOptions
	incl, excl []span
	hosts      []hostUse
	hostIndex  map[string]int // lower-case name → index in hosts
}

// hostUse is a hostname to resolve and what it is used for.
type hostUse struct {
	name            string
	target, exclude bool
}

func (b *targetBuilder) add(in string, exclude bool) error {
	t, err := parseTargetSpec(in)
	if err != nil {
		return err
	}
	if t.host != "" {
		key := strings.ToLower(strings.TrimSuffix(t.host, "."))
		i, ok := b.hostIndex[key]
		if !ok {
			i = len(b.hosts)
			b.hostIndex[key] = i
			b.hosts = append(b.hosts, hostUse{name: t.host})
		}
		b.hosts[i].target = b.hosts[i].target || !exclude
		b.hosts[i].exclude = b.hosts[i].exclude || exclude
		return nil
	}
	if exclude {
		b.excl = t.appendSpans(b.excl)
		return nil
	}
	if !b.opts.Family.wants(t.is4()) {
		return badTarget(in, "", fmt.Sprintf("an IPv%d target, but only IPv%d is wanted", 10-b.opts.Family, b.opts.Family))
	}
	// A link-local address names no host without its interface, and
	// targets take no zones: alone it is refused, within a larger block
	// left out.
	linkLocalFirst, linkLocalLast := linkLocal()
	if !t.is4() && t.first.Compare(linkLocalLast) <= 0 && t.last.Compare(linkLocalFirst) >= 0 {
		if t.first.Compare(linkLocalFirst) >= 0 && t.last.Compare(linkLocalLast) <= 0 {
			return badTarget(in, "", "link-local IPv6 addresses (fe80::/10) name no host without an interface, and zones are not taken: scan a global or unique-local address")
		}
		b.excl = appendRange(b.excl, linkLocalFirst, linkLocalLast)
	}
	if !t.is4() {
		size := u128From16(t.last.As16()).sub(u128From16(t.first.As16()))
		limit := maxKey
		if hostBits := 128 - b.opts.MaxIPv6Block; hostBits < 64 {
			limit = u128{0, 1<<hostBits - 1}
		} else if hostBits < 128 {
			limit = u128{1<<(hostBits-64) - 1, ^uint64(0)}
		}
		if size.cmp(limit) > 0 {
			return badTarget(in, t.sizePart, fmt.Sprintf("larger than a /%d, the largest IPv6 block allowed", b.opts.MaxIPv6Block))
		}
	}
	b.incl = t.appendSpans(b.incl)
	return nil
}

// linkLocal is IPv6's link-local unicast block, fe80::/10: its first and
// last address. (Made when asked for, not parsed at package init.)
func linkLocal() (first, last netip.Addr) {
	lo := [16]byte{0xfe, 0x80}
	hi := [16]byte{0xfe, 0xbf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	return netip.AddrFrom16(lo), netip.AddrFrom16(hi)
}

func (t *targetSpec) appendSpans(dst []span) []span {
	if t.octets != nil {
		return t.octets.appendSpans(dst)
	}
	return appendRange(dst, t.first, t.last)
}

// resolve looks up every hostname once, at most lookupWorkers at a time,
// adds their addresses to b's spans and returns the hostname of each target
// address that came from one.
func (b *targetBuilder) resolve(ctx context.Context) (map[netip.Addr]string, error) {
	if len(b.hosts) == 0 {
		return nil, nil
	}
	r := b.opts.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	type answer struct {
		addrs []netip.Addr
		err   error
	}
	answers := make([]answer, len(b.hosts))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(lookupWorkers, len(b.hosts)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(b.hosts) && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				network := "ip" // an exclusion without an address of Family excludes nothing
				if b.hosts[i].target {
					network = b.opts.Family.network()
				}
				answers[i].addrs, answers[i].err = r.LookupNetIP(ctx, network, b.hosts[i].name)
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	names := map[netip.Addr]string{}
	for i, h := range b.hosts {
		addrs, err := answers[i].addrs, answers[i].err
		if err == nil {
			addrs = b.keep(addrs)
			if len(addrs) == 0 && h.target {
				err = &net.DNSError{Err: "no " + b.familyWord() + " address", Name: h.name, IsNotFound: true}
			}
		}
		if err != nil {
			rerr := &ResolveError{Host: h.name, Err: err}
			if h.exclude || b.opts.Unresolved == nil {
				return nil, rerr
			}
			if err := b.opts.Unresolved(rerr); err != nil {
				return nil, err
			}
			continue
		}
		for _, a := range addrs {
			if h.exclude {
				b.excl = appendRange(b.excl, a, a)
			}
			if h.target {
				b.incl = appendRange(b.incl, a, a)
				if _, ok := names[a]; !ok {
					names[a] = h.name
				}
			}
		}
	}
	return names, nil
}

// keep returns the usable addresses of the wanted family, unmapped (Go's
// resolver gives IPv4 answers as IPv4-mapped IPv6) and without zones, in
// place.
func (b *targetBuilder) keep(addrs []netip.Addr) []netip.Addr {
	out := addrs[:0]
	for _, a := range addrs {
		// A link-local answer names nothing without its zone.
		if a = a.Unmap().WithZone(""); a.IsValid() && !a.IsLinkLocalUnicast() && b.opts.Family.wants(a.Is4()) {
			out = append(out, a)
		}
	}
	return out
}

func (b *targetBuilder) familyWord() string {
	if b.opts.Family == AnyFamily {
		return "IP"
	}
	return fmt.Sprintf("IPv%d", b.opts.Family)
}

// Len returns the number of addresses.
func (t *Targets) Len() uint64 { return t.n }

// At returns the i-th address in order, for 0 <= i < Len(), in O(log n) of
// the number of ranges. It panics when i is out of range, as indexing does.
func (t *Targets) At(i uint64) netip.Addr {
	if i >= t.n {
		panic(fmt.Sprintf("portspec: Targets.At(%d) out of range with Len %d", i, t.n))
	}
	k, found := slices.BinarySearch(t.cum, i)
	if !found {
		k-- // cum is strictly increasing and cum[0] = 0, so k > 0 here
	}
	return addrOf(t.spans[k].lo.add(i - t.cum[k]))
}

// All yields every address, in order.
func (t *Targets) All() iter.Seq[netip.Addr] {
	return func(yield func(netip.Addr) bool) {
		for _, s := range t.spans {
			for k := s.lo; ; k = k.add(1) {
				if !yield(addrOf(k)) {
					return
				}
				if k == s.hi {
					break
				}
			}
		}
	}
}

// AddrRange is an inclusive range of addresses of one family.
type AddrRange struct{ First, Last netip.Addr }

func (r AddrRange) String() string {
	if r.First == r.Last {
		return r.First.String()
	}
	return r.First.String() + "-" + r.Last.String()
}

// Ranges yields the addresses as disjoint ranges, in order; ranges that
// touch are one.
func (t *Targets) Ranges() iter.Seq[AddrRange] {
	return func(yield func(AddrRange) bool) {
		for _, s := range t.spans {
			if !yield(AddrRange{addrOf(s.lo), addrOf(s.hi)}) {
				return
			}
		}
	}
}

// Contains reports whether a is one of the addresses; an IPv4-mapped IPv6
// address is its IPv4 address, and a zone is ignored.
func (t *Targets) Contains(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	k := keyOf(a.WithZone(""))
	i, _ := slices.BinarySearchFunc(t.spans, k, func(s span, k u128) int { return s.hi.cmp(k) })
	return i < len(t.spans) && t.spans[i].lo.cmp(k) <= 0
}

// Hostname returns the hostname a was resolved from, as the spec wrote it,
// or "" for an address given as one.
func (t *Targets) Hostname(a netip.Addr) string { return t.names[a.Unmap()] }
