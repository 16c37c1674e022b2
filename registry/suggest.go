package registry

import (
	"cmp"
	"slices"
	"strings"

	"github.com/portkit/portkit/internal/editdist"
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
	var scratch editdist.Scratch
	r.names(func(other string, port int) {
		if d := abs(len(other) - len(name)); d > limit {
			return
		}
		if strings.EqualFold(other, name) {
			return // the name itself, known for another protocol or without a port
		}
		d := editdist.Distance(name, strings.ToLower(other), &scratch)
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
