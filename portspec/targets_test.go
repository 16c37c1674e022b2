package portspec

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// stubResolver answers from a table, as Go's resolver would: IPv4 answers
// come IPv4-mapped, a name without an address of the asked family is not
// found. It never touches the network.
type stubResolver struct {
	hosts map[string][]string // lower-case name → addresses
	mu    sync.Mutex
	calls map[string]int
}

func newStub() *stubResolver {
	return &stubResolver{
		hosts: map[string][]string{
			"dual.test":     {"198.18.5.1", "198.18.5.2", "2001:db8:5::1"},
			"v4only.test":   {"198.18.6.1"},
			"v6only.test":   {"2001:db8:6::1"},
			"inside.test":   {"198.18.0.7"},
			"servfail.test": nil, // answered with a temporary failure
		},
		calls: map[string]int{},
	}
}

func (r *stubResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	r.calls[strings.ToLower(host)]++
	r.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if name == "servfail.test" {
		return nil, &net.DNSError{Err: "server misbehaving", Name: host, IsTemporary: true}
	}
	var out []netip.Addr
	for _, s := range r.hosts[name] {
		a := netip.MustParseAddr(s)
		if network == "ip6" && a.Is4() || network == "ip4" && a.Is6() {
			continue
		}
		if a.Is4() {
			a = netip.AddrFrom16(a.As16()) // as net.Resolver gives it
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, nil
}

func ranges(t *Targets) []string {
	var out []string
	for r := range t.Ranges() {
		out = append(out, r.String())
	}
	return out
}

// targetCase is specs that parse, with opts, to the ranges want, holding
// n addresses.
type targetCase struct {
	name  string
	specs []string
	opts  TargetOptions
	want  []string
	n     uint64
}

func TestParseTargets(t *testing.T) {
	cases := []targetCase{
		{"address", []string{"198.18.0.1"}, TargetOptions{}, []string{"198.18.0.1"}, 1},
		{"space around", []string{" 198.18.0.1\t"}, TargetOptions{}, []string{"198.18.0.1"}, 1},
		{"block", []string{"198.18.0.0/30"}, TargetOptions{}, []string{"198.18.0.0-198.18.0.3"}, 4},
		{"block host bits", []string{"198.18.0.5/30"}, TargetOptions{}, []string{"198.18.0.4-198.18.0.7"}, 4},
		{"/32 and /0 ends", []string{"198.18.0.9/32"}, TargetOptions{}, []string{"198.18.0.9"}, 1},
		{"all IPv4", []string{"0.0.0.0/0"}, TargetOptions{}, []string{"0.0.0.0-255.255.255.255"}, 1 << 32},
		{"last octet range", []string{"198.18.0.1-20"}, TargetOptions{}, []string{"198.18.0.1-198.18.0.20"}, 20},
		{"per-octet range", []string{"198.18.0-3.1"}, TargetOptions{}, []string{"198.18.0.1", "198.18.1.1", "198.18.2.1", "198.18.3.1"}, 4},
		{"octet list", []string{"198.18.0.1,3,5-7"}, TargetOptions{}, []string{"198.18.0.1", "198.18.0.3", "198.18.0.5-198.18.0.7"}, 5},
		{"octet list unsorted", []string{"198.18.0.7,1-2,2"}, TargetOptions{}, []string{"198.18.0.1-198.18.0.2", "198.18.0.7"}, 3},
		{"star", []string{"198.18.1.*"}, TargetOptions{}, []string{"198.18.1.0-198.18.1.255"}, 256},
		{"full octets merge", []string{"198.18.0-1.*"}, TargetOptions{}, []string{"198.18.0.0-198.18.1.255"}, 512},
		{"list then full", []string{"198.18.0,2.-"}, TargetOptions{}, []string{"198.18.0.0-198.18.0.255", "198.18.2.0-198.18.2.255"}, 512},
		{"open ends", []string{"198.18.0.250-", "198.18.2.-3"}, TargetOptions{}, []string{"198.18.0.250-198.18.0.255", "198.18.2.0-198.18.2.3"}, 10},
		{"touching specs merge", []string{"198.18.0.250-", "198.18.1.-3"}, TargetOptions{}, []string{"198.18.0.250-198.18.1.3"}, 10},
		{"every address", []string{"*.*.*.*"}, TargetOptions{}, []string{"0.0.0.0-255.255.255.255"}, 1 << 32},
		{"full range", []string{"198.18.0.250-198.18.1.4"}, TargetOptions{}, []string{"198.18.0.250-198.18.1.4"}, 11},
		{"IPv6", []string{"2001:db8::1"}, TargetOptions{}, []string{"2001:db8::1"}, 1},
		{"IPv6 block", []string{"2001:db8::/126"}, TargetOptions{}, []string{"2001:db8::-2001:db8::3"}, 4},
		{"IPv6 /112", []string{"2001:db8::/112"}, TargetOptions{}, []string{"2001:db8::-2001:db8::ffff"}, 65536},
		{"IPv6 bigger allowed", []string{"2001:db8::/96"}, TargetOptions{MaxIPv6Block: 96}, []string{"2001:db8::-2001:db8::ffff:ffff"}, 1 << 32},
		{"IPv6 range", []string{"2001:db8::1-2001:db8::9"}, TargetOptions{}, []string{"2001:db8::1-2001:db8::9"}, 9},
		{"IPv4-mapped is IPv4", []string{"::ffff:198.18.0.1", "198.18.0.1"}, TargetOptions{}, []string{"198.18.0.1"}, 1},
		{"IPv4-mapped block", []string{"::ffff:198.18.0.0/120"}, TargetOptions{}, []string{"198.18.0.0-198.18.0.255"}, 256},
		{"IPv6 block across the mapped block", []string{"::fffe:0:0/95"}, TargetOptions{MaxIPv6Block: 95},
			[]string{"0.0.0.0-255.255.255.255", "::fffe:0:0-::fffe:ffff:ffff"}, 1 << 33},
		{"-6 leaves the mapped part out", []string{"::fffe:0:0/95"}, TargetOptions{MaxIPv6Block: 95, Family: IPv6},
			[]string{"::fffe:0:0-::fffe:ffff:ffff"}, 1 << 32},
		{"overlaps merge", []string{"198.18.0.0/24", "198.18.0.5", "198.18.0.128/25", "198.18.1.0/24"}, TargetOptions{},
			[]string{"198.18.0.0-198.18.1.255"}, 512},
		{"IPv4 before IPv6", []string{"2001:db8::1", "::1", "198.18.0.1"}, TargetOptions{}, []string{"198.18.0.1", "::1", "2001:db8::1"}, 3},
		{"families do not merge", []string{"255.255.255.255", "::"}, TargetOptions{}, []string{"255.255.255.255", "::"}, 2},
		{"hostname", []string{"dual.test"}, TargetOptions{}, []string{"198.18.5.1-198.18.5.2", "2001:db8:5::1"}, 3},
		{"hostname -4", []string{"dual.test"}, TargetOptions{Family: IPv4}, []string{"198.18.5.1-198.18.5.2"}, 2},
		{"hostname -6", []string{"dual.test"}, TargetOptions{Family: IPv6}, []string{"2001:db8:5::1"}, 1},
		{"exclusions", []string{"198.18.0.0/24"}, TargetOptions{Exclude: []string{"198.18.0.128/25", "198.18.0.0", "198.18.0.7", "198.18.9.9"}},
			[]string{"198.18.0.1-198.18.0.6", "198.18.0.8-198.18.0.127"}, 126},
		{"exclude a hostname", []string{"198.18.0.0/29"}, TargetOptions{Exclude: []string{"inside.test"}}, []string{"198.18.0.0-198.18.0.6"}, 7},
		{"exclude a v6-only name under -4", []string{"198.18.0.1"}, TargetOptions{Family: IPv4, Exclude: []string{"v6only.test"}}, []string{"198.18.0.1"}, 1},
		{"exclusions need no family or size", []string{"198.18.0.1"}, TargetOptions{Family: IPv4, Exclude: []string{"2001:db8::/32"}}, []string{"198.18.0.1"}, 1},
		{"exclude all", []string{"198.18.0.0/30"}, TargetOptions{Exclude: []string{"198.18.0.0/24"}}, nil, 0},
		{"nothing", nil, TargetOptions{}, nil, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Resolver = newStub()
			got, err := ParseTargets(context.Background(), c.specs, c.opts)
			if err != nil {
				t.Fatalf("ParseTargets(%q) error: %v", c.specs, err)
			}
			if r := ranges(got); !slices.Equal(r, c.want) || got.Len() != c.n {
				t.Errorf("ParseTargets(%q) = %q (Len %d), want %q (Len %d)", c.specs, r, got.Len(), c.want, c.n)
			}
		})
	}
}

func TestParseTargetsBad(t *testing.T) {
	parse := func(c badCase, opts TargetOptions) error {
		opts.Resolver = newStub()
		_, err := ParseTargets(context.Background(), []string{"dual.test", c.in}, opts)
		if err != nil && !strings.Contains(err.Error(), "bad target") {
			t.Errorf("ParseTargets(%q) error %q does not say it is a target", c.in, err)
		}
		return err
	}
	for _, c := range readBadCases(t, "bad-targets.txt") {
		c.check(t, "ParseTargets", parse(c, TargetOptions{}))
		// An exclusion is read by the same rules.
		_, err := ParseTargets(context.Background(), nil, TargetOptions{Resolver: newStub(), Exclude: []string{c.in}})
		c.check(t, "ParseTargets, excluding", err)
	}
	// Exclusions have no size limit and no family.
	for _, c := range []struct {
		badCase
		opts TargetOptions
	}{
		{badCase{"2001:db8::/64", "/64", "larger than a /112"}, TargetOptions{}},
		{badCase{"2001:db8::/111", "/111", "larger than a /112"}, TargetOptions{}},
		{badCase{"2001:db8::-2001:db8::1:0", "2001:db8::-2001:db8::1:0", "larger than a /112"}, TargetOptions{}},
		{badCase{"2001:db8::/64", "/64", "larger than a /65"}, TargetOptions{MaxIPv6Block: 65}},
		{badCase{"2001:db8::1", "", "an IPv6 target, but only IPv4"}, TargetOptions{Family: IPv4}},
		{badCase{"198.18.0.0/24", "", "an IPv4 target, but only IPv6"}, TargetOptions{Family: IPv6}},
		// Link-local needs a zone, which targets do not take.
		{badCase{"fe80::1", "", "link-local IPv6 addresses"}, TargetOptions{}},
		{badCase{"fe80::1:0/112", "", "link-local IPv6 addresses"}, TargetOptions{}},
	} {
		c.check(t, "ParseTargets", parse(c.badCase, c.opts))
	}
}

func TestParseTargetsOptions(t *testing.T) {
	for _, opts := range []TargetOptions{{Family: 5}, {MaxIPv6Block: 129}, {MaxIPv6Block: -1}} {
		if _, err := ParseTargets(context.Background(), []string{"198.18.0.1"}, opts); err == nil {
			t.Errorf("options %+v accepted", opts)
		}
	}
	// Too many addresses to count in a uint64.
	_, err := ParseTargets(context.Background(), []string{"::/1", "8000::/1"}, TargetOptions{MaxIPv6Block: 1})
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(e.Error(), "more than 18446744073709551615 addresses") {
		t.Errorf("::/0 in two halves: error = %v", err)
	}
}

func TestParseTargetsResolve(t *testing.T) {
	ctx := context.Background()
	r := newStub()
	got, err := ParseTargets(ctx, []string{"dual.test", "DUAL.test", "dual.test.", "v4only.test", "198.18.0.1"},
		TargetOptions{Resolver: r, Exclude: []string{"dual.test", "v4only.test"}})
	if err != nil {
		t.Fatal(err)
	}
	if calls := r.calls; calls["dual.test"] != 1 || calls["v4only.test"] != 1 || len(calls) != 2 {
		t.Errorf("lookups = %v, want one a name", calls)
	}
	if g := ranges(got); !slices.Equal(g, []string{"198.18.0.1"}) {
		t.Errorf("targets less their own names = %q", g)
	}

	got, err = ParseTargets(ctx, []string{"dual.test", "198.18.0.1"}, TargetOptions{Resolver: newStub()})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{"198.18.5.2": "dual.test", "2001:db8:5::1": "dual.test", "198.18.0.1": ""} {
		if h := got.Hostname(netip.MustParseAddr(addr)); h != want {
			t.Errorf("Hostname(%s) = %q, want %q", addr, h, want)
		}
	}

	for _, c := range []struct {
		host     string
		family   Family
		badInput bool
		reason   string
	}{
		{"nx.test", AnyFamily, true, "no such host"},
		{"v6only.test", IPv4, true, "no such host"},
		{"servfail.test", AnyFamily, false, "server misbehaving"},
	} {
		_, err := ParseTargets(ctx, []string{"198.18.0.1", c.host}, TargetOptions{Resolver: newStub(), Family: c.family})
		var re *ResolveError
		if !errors.As(err, &re) || re.Host != c.host || re.BadInput() != c.badInput || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("ParseTargets(%q, -%d) error = %v, want a ResolveError with %q, BadInput %v", c.host, c.family, err, c.reason, c.badInput)
		}
	}

	// The Unresolved policy: skip, or stop with its own error.
	var skipped []string
	got, err = ParseTargets(ctx, []string{"nx.test", "198.18.0.1", "servfail.test"}, TargetOptions{
		Resolver:   newStub(),
		Unresolved: func(e *ResolveError) error { skipped = append(skipped, e.Host); return nil },
	})
	if err != nil || got.Len() != 1 || !slices.Equal(skipped, []string{"nx.test", "servfail.test"}) {
		t.Errorf("skipping the unresolved: %v, %v, skipped %q", ranges(got), err, skipped)
	}
	stop := errors.New("stop")
	if _, err := ParseTargets(ctx, []string{"nx.test"}, TargetOptions{Resolver: newStub(), Unresolved: func(*ResolveError) error { return stop }}); err != stop {
		t.Errorf("Unresolved's error: got %v", err)
	}
	// An exclusion that does not resolve stops, whatever the policy.
	_, err = ParseTargets(ctx, []string{"198.18.0.1"}, TargetOptions{
		Resolver: newStub(), Exclude: []string{"nx.test"}, Unresolved: func(*ResolveError) error { return nil },
	})
	if re := (*ResolveError)(nil); !errors.As(err, &re) {
		t.Errorf("unresolved exclusion: error = %v", err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := ParseTargets(cancelled, []string{"dual.test"}, TargetOptions{Resolver: newStub()}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: error = %v", err)
	}
}

// naive expands specs address by address, for small sets.
func naive(t *testing.T, specs, exclude []string) []netip.Addr {
	t.Helper()
	set := map[netip.Addr]bool{}
	expand := func(spec string, yield func(netip.Addr)) {
		ts, err := parseTargetSpec(spec)
		if err != nil {
			t.Fatal(err)
		}
		if ts.octets != nil {
			var b [4]byte
			var walk func(i int)
			walk = func(i int) {
				if i == 4 {
					yield(netip.AddrFrom4(b))
					return
				}
				for _, r := range ts.octets[i] {
					for v := int(r.lo); v <= int(r.hi); v++ {
						b[i] = byte(v)
						walk(i + 1)
					}
				}
			}
			walk(0)
			return
		}
		for a := ts.first; ; a = a.Next() {
			yield(a)
			if a == ts.last {
				break
			}
		}
	}
	for _, s := range specs {
		expand(s, func(a netip.Addr) { set[a] = true })
	}
	for _, s := range exclude {
		expand(s, func(a netip.Addr) { delete(set, a) })
	}
	var out []netip.Addr
	for a := range set {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare) // IPv4 before IPv6, as Targets
	return out
}

// randomSpec is a small spec in 198.18.0.0/22 or 2001:db8::/118.
func randomSpec(rng *rand.Rand) string {
	o := func() int { return rng.IntN(256) }
	switch rng.IntN(7) {
	case 0:
		return fmt.Sprintf("198.18.%d.%d", rng.IntN(4), o())
	case 1:
		return fmt.Sprintf("198.18.%d.%d/%d", rng.IntN(4), o(), 22+rng.IntN(11))
	case 2:
		a := o()
		return fmt.Sprintf("198.18.%d.%d-%d", rng.IntN(4), a, a+rng.IntN(256-a))
	case 3:
		return fmt.Sprintf("198.18.%d-%d.%d,%d-%d", rng.IntN(2), 2+rng.IntN(2), o(), o()/2, 128+o()/2)
	case 4:
		return fmt.Sprintf("2001:db8::%x/%d", rng.IntN(1024), 118+rng.IntN(11))
	case 5:
		a := rng.IntN(1024)
		return fmt.Sprintf("2001:db8::%x-2001:db8::%x", a, a+rng.IntN(64))
	}
	return fmt.Sprintf("198.18.%d.*", rng.IntN(4))
}

func TestTargetsAgainstNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 2))
	for round := range 200 {
		var specs, exclude []string
		for range 1 + rng.IntN(6) {
			specs = append(specs, randomSpec(rng))
		}
		for range rng.IntN(4) {
			exclude = append(exclude, randomSpec(rng))
		}
		got, err := ParseTargets(context.Background(), specs, TargetOptions{Resolver: newStub(), Exclude: exclude})
		if err != nil {
			t.Fatalf("round %d: %q less %q: %v", round, specs, exclude, err)
		}
		want := naive(t, specs, exclude)
		if got.Len() != uint64(len(want)) {
			t.Fatalf("round %d: %q less %q: Len %d, want %d", round, specs, exclude, got.Len(), len(want))
		}
		for i, a := range want {
			if at := got.At(uint64(i)); at != a {
				t.Fatalf("round %d: %q less %q: At(%d) = %v, want %v", round, specs, exclude, i, at, a)
			}
			if !got.Contains(a) {
				t.Fatalf("round %d: Contains(%v) = false", round, a)
			}
		}
		if all := slices.Collect(got.All()); !slices.Equal(all, want) && len(want) > 0 {
			t.Fatalf("round %d: All() differs from the naive expansion", round)
		}
		for range 20 {
			a := netip.AddrFrom4([4]byte{198, 18, byte(rng.IntN(4)), byte(rng.IntN(256))})
			if rng.IntN(2) == 0 {
				a = netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", rng.IntN(2048)))
			}
			if _, found := slices.BinarySearchFunc(want, a, netip.Addr.Compare); got.Contains(a) != found {
				t.Fatalf("round %d: Contains(%v) = %v", round, a, !found)
			}
		}
	}
}

func TestTargetsTenSlashEight(t *testing.T) {
	// 10.0.0.0/8 is only parsed and counted here, never contacted.
	parse := func() *Targets {
		got, err := ParseTargets(context.Background(), []string{"10.0.0.0/8"}, TargetOptions{Resolver: newStub()})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got := parse()
	runtime.ReadMemStats(&after)
	if got.Len() != 1<<24 {
		t.Errorf("Len = %d, want %d", got.Len(), 1<<24)
	}
	for i, want := range map[uint64]string{0: "10.0.0.0", 1<<24 - 1: "10.255.255.255", 3<<16 + 5: "10.3.0.5"} {
		if a := got.At(i); a.String() != want {
			t.Errorf("At(%d) = %v, want %s", i, a, want)
		}
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Errorf("parsing a /8 allocated %d bytes", n)
	}
	if allocs := testing.AllocsPerRun(20, func() { parse() }); allocs > 30 {
		t.Errorf("parsing a /8: %v allocations", allocs)
	}
}

func TestTargetsZeroAndBounds(t *testing.T) {
	var zero Targets
	if zero.Len() != 0 || zero.Contains(netip.MustParseAddr("198.18.0.1")) || len(slices.Collect(zero.All())) != 0 || zero.Hostname(netip.Addr{}) != "" {
		t.Error("the zero Targets is not empty")
	}
	got, err := ParseTargets(context.Background(), []string{"198.18.0.0/31"}, TargetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Contains(netip.Addr{}) || !got.Contains(netip.MustParseAddr("::ffff:198.18.0.1")) {
		t.Error("Contains: invalid or IPv4-mapped addresses")
	}
	defer func() {
		if recover() == nil {
			t.Error("At(Len()) did not panic")
		}
	}()
	got.At(2)
}

func TestKeyOrder(t *testing.T) {
	// keyOf and addrOf are inverse, and the key order is IPv4 then IPv6,
	// each in address order.
	addrs := []string{"0.0.0.0", "198.18.0.1", "255.255.255.255", "::", "::1", "::fffe:ffff:ffff", "::1:0:0:0", "2001:db8::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}
	var prev u128
	for i, s := range addrs {
		a := netip.MustParseAddr(s)
		k := keyOf(a)
		if back := addrOf(k); back != a {
			t.Errorf("addrOf(keyOf(%v)) = %v", a, back)
		}
		if i > 0 && k.cmp(prev) <= 0 {
			t.Errorf("key of %v is not above the key of %v", a, addrs[i-1])
		}
		prev = k
	}
}

func TestReadTargetFile(t *testing.T) {
	in := "\uFEFF# scan list\n198.18.0.1 198.18.0.2\t2001:db8::1  # gateways\r\n\n  dual.test\n198.18.1.0/24#no space\n"
	got, err := ReadTargetFile(strings.NewReader(in), "list.txt")
	want := []string{"198.18.0.1", "198.18.0.2", "2001:db8::1", "dual.test", "198.18.1.0/24"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("ReadTargetFile = %q, %v; want %q", got, err, want)
	}

	for _, c := range []fileCase{
		{"198.18.0.1\n# fine\n198.18.0.2 198.18.0.300\n", 3, "300"},
		{"198.18.0.1\n\n  bad!.test # comment\n", 3, "bad!"},
		{"198.18.0.1\n" + strings.Repeat("a", maxSpecLine+1), 2, ""},
	} {
		_, err := ReadTargetFile(strings.NewReader(c.in), "list.txt")
		c.check(t, "list.txt", err)
	}
	_, err = ReadTargetFile(strings.NewReader("198.18.0.300"), "list.txt")
	if want := `list.txt:1: bad target "198.18.0.300": "300": an octet`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message %v, want it to start %s", err, want)
	}

	_, err = ReadTargetFile(errReader{}, "broken")
	if err == nil || !strings.Contains(err.Error(), "read broken") {
		t.Errorf("read error: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

// fuzzResolver derives answers from the name, so fuzzing needs no table.
type fuzzResolver struct{}

func (fuzzResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	h := fnv.New32a()
	h.Write([]byte(strings.ToLower(strings.TrimSuffix(host, "."))))
	v := h.Sum32()
	if v%5 == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	if network != "ip6" {
		out = append(out, netip.AddrFrom4([4]byte{198, 18, byte(v >> 8), byte(v)}))
	}
	if network != "ip4" && v%3 != 0 {
		out = append(out, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(v >> 8), 15: byte(v)}))
	}
	return out, nil
}

func FuzzParseTargets(f *testing.F) {
	for _, s := range [][3]string{
		{"198.18.0.1", "", ""},
		{"198.18.0.0/24\n2001:db8::/120", "198.18.0.128/25", ""},
		{"198.18.0-3.1,5-7", "198.18.1.*", "4"},
		{"198.18.0.1-198.18.1.9", "198.18.0.9", ""},
		{"dual.test\nother.test", "other.test", "6"},
		{"::ffff:198.18.0.0/120\n::1", "", ""},
		{"2001:db8::1-2001:db8::ff", "2001:db8::80/121", ""},
		{"fe80::1%eth0", "", ""},
		{"198.18.0.256", "", ""},
		{"*.*.*.*", "10.0.0.0/8", ""},
		{"a..b", "", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, specs, exclude, family string) {
		opts := TargetOptions{Resolver: fuzzResolver{}, Family: [3]Family{AnyFamily, IPv4, IPv6}[len(family)%3]}
		if exclude != "" {
			opts.Exclude = strings.Split(exclude, "\n")
		}
		got, err := ParseTargets(context.Background(), strings.Split(specs, "\n"), opts)
		if err != nil {
			checkError(t, err)
			return
		}
		var n uint64
		var prev AddrRange
		for r := range got.Ranges() {
			if r.Last.Less(r.First) || r.First.Is4() != r.Last.Is4() {
				t.Fatalf("bad range %v", r)
			}
			if prev.Last.IsValid() && (!prev.Last.Less(r.First) || prev.Last.Next() == r.First && prev.Last.Is4() == r.First.Is4()) {
				t.Fatalf("ranges %v and %v overlap or touch", prev, r)
			}
			n += uint64(keyOf(r.Last).sub(keyOf(r.First)).lo) + 1
			prev = r
		}
		if n != got.Len() {
			t.Fatalf("Len %d, ranges hold %d", got.Len(), n)
		}
		if got.Len() == 0 {
			return
		}
		for _, i := range []uint64{0, got.Len() / 3, got.Len() / 2, got.Len() - 1} {
			a := got.At(i)
			if !got.Contains(a) || !opts.Family.wants(a.Is4()) {
				t.Fatalf("At(%d) = %v: not contained, or of the wrong family", i, a)
			}
			if i+1 < got.Len() && !a.Less(got.At(i+1)) {
				t.Fatalf("At(%d) = %v is not below At(%d) = %v", i, a, i+1, got.At(i+1))
			}
		}
		if got.Len() <= 1024 {
			var i uint64
			for a := range got.All() {
				if at := got.At(i); at != a {
					t.Fatalf("All()[%d] = %v, At = %v", i, a, at)
				}
				i++
			}
		}
	})
}

func FuzzReadTargetFile(f *testing.F) {
	for _, s := range []string{
		"198.18.0.1\n",
		"\uFEFF# list\n198.18.0.1 198.18.0.2 # two\r\n\n2001:db8::/120\n",
		"dual.test\n198.18.0-3.*\n",
		"198.18.0.1\n198.18.0.300\n",
		"#only a comment",
		"a\tb\vc\fd",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		specs, err := ReadTargetFile(strings.NewReader(data), "fuzz.txt")
		lines := strings.Count(data, "\n") + 1
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.File != "fuzz.txt" || e.Line < 1 || e.Line > lines {
				t.Fatalf("error %v: want an *Error naming fuzz.txt and a line in 1-%d", err, lines)
			}
			return
		}
		for _, s := range specs {
			if s == "" || strings.ContainsAny(s, "# \t\n\r") {
				t.Fatalf("spec %q holds a separator", s)
			}
			if _, err := parseTargetSpec(s); err != nil {
				t.Fatalf("spec %q passed the file check but not the parser: %v", s, err)
			}
		}
	})
}

func BenchmarkTargetsAt(b *testing.B) {
	// 512 ranges of 198.18.0.0/15, 4,096 single addresses of 10.0.0.0/12
	// (parsed, never contacted), and an IPv6 block.
	got, err := ParseTargets(context.Background(), []string{"198.18-19.0-255.0-127", "10.0-15.0-255.200", "2001:db8::/112"}, TargetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	n := got.Len()
	var i uint64
	for b.Loop() {
		_ = got.At(i % n)
		i += 7919
	}
}

// TestParseTargetsSkipsLinkLocal: a range that runs into fe80::/10 keeps
// its other addresses and leaves the link-local ones out.
func TestParseTargetsSkipsLinkLocal(t *testing.T) {
	got, err := ParseTargets(context.Background(), []string{"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ff00-fe80::ff"}, TargetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Len() != 256 {
		t.Fatalf("%d addresses, want the 256 below fe80::", got.Len())
	}
	for r := range got.Ranges() {
		if r.Last.Compare(netip.MustParseAddr("fe80::")) >= 0 {
			t.Fatalf("range %v reaches into fe80::/10", r)
		}
	}
}
