package config

// suggest returns the key of known nearest to k when it is near enough to
// be a typo: "conect_timeout", "max-conns", "target". It returns "" when
// nothing is.
func suggest(k string, known []string) string {
	// One edit per five characters, so that short keys do not suggest
	// unrelated short keys.
	limit := min(1+len(k)/5, 3)
	best, bestDist := "", limit+1
	for _, c := range known {
		if d := editDistance(k, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes: keys
// are ASCII.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
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
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
