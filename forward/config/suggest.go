package config

import "github.com/portkit/portkit/internal/editdist"

// suggest returns the key of known nearest to k when it is near enough to
// be a typo: "conect_timeout", "max-conns", "target". It returns "" when
// nothing is.
func suggest(k string, known []string) string {
	// One edit per five characters, so that short keys do not suggest
	// unrelated short keys.
	limit := min(1+len(k)/5, 3)
	best, bestDist := "", limit+1
	var scratch editdist.Scratch
	for _, c := range known {
		if d := editdist.Distance(k, c, &scratch); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}
