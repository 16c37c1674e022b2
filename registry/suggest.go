package registry

import (
	"cmp"
	"slices"
	"strings"
)

// Suggest returns up to n service names close to name by edit distance
// (insertions, deletions, substitutions and transpositions, ignoring case),
// best first; among names as close, the one on the lower port, as the better
// known. Names further than a third of name's length are not close.
func (r *Registry) Suggest(name string, n int) []string {
	type cand struct {
		name       string
		dist, port int
	}
	name = strings.ToLower(name)
	limit := max(1, len(name)/3)
	var best []cand
	var rows [3][]int
	r.names(func(other string, port int) {
		if d := abs(len(other) - len(name)); d > limit {
			return
		}
		d := editDistance(name, strings.ToLower(other), &rows)
		if d > limit || slices.ContainsFunc(best, func(c cand) bool { return strings.EqualFold(c.name, other) }) {
			return
		}
		best = append(best, cand{other, d, port})
	})
	slices.SortStableFunc(best, func(a, b cand) int {
		if c := cmp.Compare(a.dist, b.dist); c != 0 {
			return c
		}
		if c := cmp.Compare(a.port, b.port); c != 0 {
			return c
		}
		return cmp.Compare(a.name, b.name)
	})
	out := make([]string, 0, n)
	for i := 0; i < len(best) && i < n; i++ {
		out = append(out, best[i].name)
	}
	return out
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// editDistance is the optimal string alignment distance between a and b;
// rows is scratch space reused across calls.
func editDistance(a, b string, rows *[3][]int) int {
	for i := range rows {
		if cap(rows[i]) < len(b)+1 {
			rows[i] = make([]int, len(b)+1)
		}
		rows[i] = rows[i][:len(b)+1]
	}
	prev2, prev, cur := rows[0], rows[1], rows[2]
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
