package editdist

import "testing"

func TestDistance(t *testing.T) {
	var s Scratch
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"ssh", "", 3}, {"", "ssh", 3}, {"ssh", "ssh", 0},
		{"conect_timeout", "connect_timeout", 1}, {"htpts", "https", 1}, // transposition
		{"kitten", "sitting", 3}, {"max-conns", "max_conns", 1},
	} {
		if got := Distance(c.a, c.b, &s); got != c.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := Distance(c.b, c.a, nil); got != c.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.b, c.a, got, c.want)
		}
	}
}
