package freeport

import (
	"context"
	crand "crypto/rand"
	"io"
	"iter"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"

	"github.com/portkit/portkit/hostports"
)

// whole is every port an unprivileged program is normally allowed to bind;
// the default search starts from it.
var whole = Range{1024, 65535}

// dynamic is IANA's dynamic range, taken as the ephemeral range where the
// host's cannot be read.
var dynamic = Range{49152, 65535}

// search walks the candidate ports in the Finder's order and calls take with
// each one that is free on every address for every protocol asked (plus
// extra, the protocol a Listen method is about to bind). It stops when take
// reports done or fails; an error from take that says the port is taken
// (somebody bound it since the check) moves on to the next port.
func (f *Finder) search(ctx context.Context, op string, n int, extra Protocol, take func(port uint16) (done bool, err error)) error {
	outer, spans := f.Range, []Range{f.Range}
	if outer == (Range{}) {
		outer, spans = whole, defaultSpans(hostports.Read())
	}
	fail := func(err error) error { return &Error{Op: op, Range: outer, Err: err} }
	if err := checkInput(outer, n); err != nil {
		return fail(err)
	}
	cands := candidates(spans)
	if n > len(cands) {
		return fail(&InputError{Input: strconv.Itoa(n), Reason: "more ports asked for than the range holds (" + strconv.Itoa(len(cands)) + ")"})
	}
	protos := f.Protocols
	if protos == 0 && extra == 0 {
		protos = TCP
	}
	protos |= extra
	addrs, err := f.addresses(ctx)
	if err != nil {
		return fail(err)
	}
	rng, err := newRand()
	if err != nil {
		return fail(err)
	}
	for port := range order(cands, f.Near, rng) {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		ok, err := free(ctx, port, addrs, protos)
		if err != nil {
			return fail(err)
		}
		if !ok {
			continue
		}
		done, err := take(port)
		switch {
		case err != nil && busy(err):
			continue
		case err != nil:
			return fail(err)
		case done:
			return nil
		}
	}
	return fail(ErrNoFreePort)
}

func checkInput(r Range, n int) error {
	switch {
	case r.Lo == 0:
		return &InputError{Input: r.String(), Reason: "ports start at 1"}
	case r.Lo > r.Hi:
		return &InputError{Input: r.String(), Reason: "low end above high end"}
	case n < 1:
		return &InputError{Input: strconv.Itoa(n), Reason: "ask for at least one port"}
	}
	return nil
}

// defaultSpans is whole less the ephemeral range of the policy p (or of
// dynamic when the policy could not be read). If that leaves nothing, as on a
// host whose ephemeral range covers everything, whole is searched after all:
// a racier port beats none.
func defaultSpans(p hostports.Policy, err error) []Range {
	eph := Range{p.EphemeralLow, p.EphemeralHigh}
	if err != nil || eph.Lo == 0 || eph.Lo > eph.Hi {
		eph = dynamic
	}
	var spans []Range
	if eph.Lo > whole.Lo {
		spans = append(spans, Range{whole.Lo, min(eph.Lo-1, whole.Hi)})
	}
	if eph.Hi < whole.Hi {
		spans = append(spans, Range{max(eph.Hi+1, whole.Lo), whole.Hi})
	}
	if len(spans) == 0 {
		spans = []Range{whole}
	}
	return spans
}

// candidates lists the ports of spans in ascending order.
func candidates(spans []Range) []uint16 {
	var ports []uint16
	for _, s := range spans {
		for p := int(s.Lo); p <= int(s.Hi); p++ {
			ports = append(ports, uint16(p))
		}
	}
	slices.Sort(ports)
	return slices.Compact(ports)
}

// order yields the ascending ports cands nearest to near first, or in random
// order when near is 0. The shuffle is done lazily, so a search that stops
// early pays only for the ports it looked at.
func order(cands []uint16, near uint16, rng *rand.Rand) iter.Seq[uint16] {
	if near == 0 {
		return func(yield func(uint16) bool) {
			for i := range cands {
				j := i + rng.IntN(len(cands)-i)
				cands[i], cands[j] = cands[j], cands[i]
				if !yield(cands[i]) {
					return
				}
			}
		}
	}
	return func(yield func(uint16) bool) {
		hi, _ := slices.BinarySearch(cands, near)
		lo := hi - 1
		for lo >= 0 || hi < len(cands) {
			var p uint16
			if hi >= len(cands) || lo >= 0 && near-cands[lo] <= cands[hi]-near {
				p, lo = cands[lo], lo-1
			} else {
				p, hi = cands[hi], hi+1
			}
			if !yield(p) {
				return
			}
		}
	}
}

// newRand seeds from crypto/rand so that concurrent callers, in this process
// or others, start from different places and rarely try the same port.
func newRand() (*rand.Rand, error) {
	var seed [32]byte
	if _, err := io.ReadFull(crand.Reader, seed[:]); err != nil {
		return nil, err
	}
	return rand.New(rand.NewChaCha8(seed)), nil
}

var (
	v4Any      = netip.IPv4Unspecified()
	v4Loopback = netip.AddrFrom4([4]byte{127, 0, 0, 1})
)

// addresses returns the addresses a port must bind on. By default the IPv6
// ones are kept only if they bind at all (on port 0), so that a host without
// IPv6 still gets ports rather than an error.
func (f *Finder) addresses(ctx context.Context) ([]netip.Addr, error) {
	if f.Addresses != nil {
		addrs := make([]netip.Addr, len(f.Addresses))
		for i, a := range f.Addresses {
			if !a.IsValid() {
				return nil, &InputError{Input: "Addresses[" + strconv.Itoa(i) + "]", Reason: "not an IP address"}
			}
			addrs[i] = a.Unmap()
		}
		return addrs, nil
	}
	addrs := []netip.Addr{v4Any, v4Loopback}
	for _, a := range []netip.Addr{netip.IPv6Unspecified(), netip.IPv6Loopback()} {
		if c, err := bind(ctx, TCP, netip.AddrPortFrom(a, 0)); err == nil {
			c.Close()
			addrs = append(addrs, a)
		}
	}
	return addrs, nil
}

// free reports whether port binds on each address for each protocol. Each
// socket is closed before the next is opened: holding 0.0.0.0 would make the
// bind on 127.0.0.1 fail on Linux however free the port is.
func free(ctx context.Context, port uint16, addrs []netip.Addr, protos Protocol) (bool, error) {
	for _, a := range addrs {
		for _, p := range []Protocol{TCP, UDP} {
			if protos&p == 0 {
				continue
			}
			c, err := bind(ctx, p, netip.AddrPortFrom(a, port))
			if err != nil {
				if busy(err) {
					return false, nil
				}
				return false, err
			}
			c.Close()
		}
	}
	return true, nil
}

// bind binds one socket. The network is tcp4/tcp6 (udp4/udp6) rather than
// tcp so that :: is bound IPv6-only and checks IPv6 alone; 0.0.0.0 is checked
// on its own.
func bind(ctx context.Context, p Protocol, ap netip.AddrPort) (io.Closer, error) {
	network := "tcp"
	if p == UDP {
		network = "udp"
	}
	if ap.Addr().Is4() {
		network += "4"
	} else {
		network += "6"
	}
	var lc net.ListenConfig
	if p == UDP {
		return lc.ListenPacket(ctx, network, ap.String())
	}
	lc.Control = strictBind()
	return lc.Listen(ctx, network, ap.String())
}
