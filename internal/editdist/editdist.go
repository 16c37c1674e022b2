// Package editdist measures how far apart two strings are, for "did you
// mean" suggestions.
package editdist

// Scratch is working space that Distance reuses across calls; the zero
// value is ready.
type Scratch [3][]int

// Distance is the optimal string alignment distance between a and b, in
// bytes: insertions, deletions, substitutions and transpositions of
// adjacent bytes each cost one. s may be nil.
func Distance(a, b string, s *Scratch) int {
	if s == nil {
		s = new(Scratch)
	}
	for i := range s {
		if cap(s[i]) < len(b)+1 {
			s[i] = make([]int, len(b)+1)
		}
		s[i] = s[i][:len(b)+1]
	}
	prev2, prev, cur := s[0], s[1], s[2]
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
