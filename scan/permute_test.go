package scan

import (
	"math"
	"testing"
)

func TestPermutationBijection(t *testing.T) {
	sizes := []uint64{1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 31, 32, 33, 64, 65, 97,
		127, 128, 129, 255, 256, 257, 1000, 1023, 1024, 1025, 4093, 4096, 65521,
		65535, 65536, 65537, 100003, 1 << 17, 1<<17 + 1}
	for n := uint64(1); n <= 70; n++ {
		sizes = append(sizes, n)
	}
	for _, n := range sizes {
		for _, seed := range []uint64{0, 1, 0xdeadbeef, math.MaxUint64} {
			p := NewPermutation(n, seed)
			seen := make([]bool, n)
			for pos := uint64(0); pos < n; pos++ {
				x := p.At(pos)
				if x >= n {
					t.Fatalf("n=%d seed=%d: At(%d) = %d, out of range", n, seed, pos, x)
				}
				if seen[x] {
					t.Fatalf("n=%d seed=%d: At(%d) = %d twice", n, seed, pos, x)
				}
				seen[x] = true
			}
		}
	}
}

// The huge spaces cannot be walked; check that a sample of positions lands
// in range and does not collide.
func TestPermutationHuge(t *testing.T) {
	for _, n := range []uint64{1 << 32, 1<<32 + 15, 1 << 63, 1<<63 + 1, math.MaxUint64} {
		p := NewPermutation(n, 42)
		seen := make(map[uint64]bool)
		for _, base := range []uint64{0, n / 2, n - 5000} {
			for pos := base; pos < base+5000; pos++ {
				x := p.At(pos)
				if x >= n {
					t.Fatalf("n=%d: At(%d) = %d, out of range", n, pos, x)
				}
				if seen[x] {
					t.Fatalf("n=%d: At(%d) = %d, seen before", n, pos, x)
				}
				seen[x] = true
			}
		}
	}
}

func TestPermutationShards(t *testing.T) {
	for _, n := range []uint64{1, 2, 3, 10, 97, 1000, 4096, 65535} {
		for _, shards := range []uint64{1, 2, 3, 4, 7, 16} {
			p := NewPermutation(n, 7)
			seen := make([]int, n)
			var total uint64
			for i := uint64(0); i < shards; i++ {
				ln := shardLen(n, i, shards)
				total += ln
				for k := uint64(0); k < ln; k++ {
					seen[p.At(i+k*shards)]++
				}
			}
			if total != n {
				t.Fatalf("n=%d shards=%d: shard lengths sum to %d", n, shards, total)
			}
			for x, c := range seen {
				if c != 1 {
					t.Fatalf("n=%d shards=%d: index %d in %d shards", n, shards, x, c)
				}
			}
		}
	}
}

func TestPermutationSeed(t *testing.T) {
	const n = 10000
	order := func(seed uint64) []uint64 {
		p := NewPermutation(n, seed)
		o := make([]uint64, n)
		for i := range o {
			o[i] = p.At(uint64(i))
		}
		return o
	}
	a, b, c := order(1), order(1), order(2)
	same, identity := 0, 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("seed 1 twice: position %d differs: %d, %d", i, a[i], b[i])
		}
		if a[i] == c[i] {
			same++
		}
		if a[i] == uint64(i) {
			identity++
		}
	}
	// A random pair of orders agrees at about one position.
	if same > 20 {
		t.Errorf("seeds 1 and 2 agree at %d of %d positions", same, n)
	}
	if identity > 20 {
		t.Errorf("seed 1 leaves %d of %d indices in place", identity, n)
	}
}

// Consecutive positions should spread over hosts: with 256 hosts × 100
// ports (index = host·100 + port), any 256 consecutive probes touch many
// hosts, not a few hosts' port runs.
func TestPermutationSpread(t *testing.T) {
	const hosts, ports = 256, 100
	p := NewPermutation(hosts*ports, 3)
	for start := uint64(0); start+256 <= hosts*ports; start += 256 {
		seen := make(map[uint64]bool)
		for pos := start; pos < start+256; pos++ {
			seen[p.At(pos)/ports] = true
		}
		// 256 draws from 256 hosts cover about 1−1/e of them.
		if len(seen) < 128 {
			t.Fatalf("positions %d..%d touch only %d hosts", start, start+255, len(seen))
		}
	}
}

func BenchmarkPermutation(b *testing.B) {
	for _, c := range []struct {
		name string
		n    uint64
	}{{"n=65535", 65535}, {"n=6.5M", 65536 * 100}, {"n=2^64-1", math.MaxUint64}} {
		b.Run(c.name, func(b *testing.B) {
			p := NewPermutation(c.n, 1)
			b.ReportAllocs()
			var sum uint64
			for i := 0; b.Loop(); i++ {
				sum += p.At(uint64(i) % c.n)
			}
			_ = sum
		})
	}
}
