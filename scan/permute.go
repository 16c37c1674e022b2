package scan

import "math/bits"

// Permutation is a seeded pseudorandom bijection of [0, n): the order in
// which a scan visits its (target × port) index space, so that consecutive
// probes go to unrelated hosts and ports. It is a keyed Feistel network over
// the smallest power-of-two domain holding n, with cycle-walking for the
// indices beyond n: a value outside [0, n) is fed through the network again
// until it falls inside, which keeps the map a bijection of [0, n) and costs
// fewer than two rounds of walking on average, because the domain is less
// than twice n.
//
// It holds no state per index: At is a pure function of (n, seed, pos), so
// a scan's position is one number, shards are a split of positions, and a
// scan resumes exactly from a saved position.
type Permutation struct {
	n            uint64
	bitsL, bitsR uint // halves of the domain; bitsL is bitsR or bitsR+1
	keys         [feistelRounds]uint64
}

// feistelRounds is the number of half-rounds, each of which rewrites one
// half; eight is four full Feistel rounds, past the three that make a
// pseudorandom permutation of a pseudorandom round function.
const feistelRounds = 8

// NewPermutation returns the permutation of [0, n) keyed by seed. n is at
// least 1; a Permutation of 0 is empty and At must not be called.
func NewPermutation(n, seed uint64) Permutation {
	p := Permutation{n: n}
	if n > 1 {
		k := uint(bits.Len64(n - 1))
		p.bitsR = k / 2
		p.bitsL = k - p.bitsR
	}
	s := seed
	for i := range p.keys {
		p.keys[i] = splitmix64(&s)
	}
	return p
}

// Len is n, the size of the permuted space.
func (p Permutation) Len() uint64 { return p.n }

// At returns the index at position pos; pos must be below Len.
func (p Permutation) At(pos uint64) uint64 {
	if p.n <= 1 {
		return 0
	}
	x := p.feistel(pos)
	for x >= p.n {
		x = p.feistel(x)
	}
	return x
}

// feistel is one pass of the network over the 2^(bitsL+bitsR) domain.
// Each half-round xors one half with a keyed hash of the other, which is
// undone by the same xor, so the pass is a bijection for any hash.
func (p Permutation) feistel(x uint64) uint64 {
	maskR := uint64(1)<<p.bitsR - 1
	maskL := uint64(1)<<p.bitsL - 1
	l, r := x>>p.bitsR, x&maskR
	for i := 0; i < feistelRounds; i += 2 {
		l ^= mix64(r^p.keys[i]) & maskL
		r ^= mix64(l^p.keys[i+1]) & maskR
	}
	return l<<p.bitsR | r
}

// mix64 is MurmurHash3's 64-bit finalizer: every input bit affects every
// output bit.
func mix64(z uint64) uint64 {
	z ^= z >> 33
	z *= 0xff51afd7ed558ccd
	z ^= z >> 33
	z *= 0xc4ceb9fe1a85ec53
	z ^= z >> 33
	return z
}

// splitmix64 steps *s and returns the next value of the SplitMix64 sequence:
// the round keys of a seed.
func splitmix64(s *uint64) uint64 {
	*s += 0x9e3779b97f4a7c15
	z := *s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// shardLen is the number of positions of [0, n) in shard i of shards: the
// positions i, i+shards, i+2·shards, … below n.
func shardLen(n, i, shards uint64) uint64 {
	if i >= n {
		return 0
	}
	return (n-1-i)/shards + 1
}
