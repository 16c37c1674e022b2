package main

import (
	"fmt"

	"github.com/portkit/portkit/bench/harness"
	"github.com/portkit/portkit/bench/internal/benchmd"
)

// everyRun is the table of every run in the order taken, for judging the
// noise: a row per path, a column per group (a stream count, a datagram
// size; "" for none) and round. taken(pi, gi) is how many runs path pi
// made in group gi; cell(pi, gi, k) writes run k of them.
func everyRun(caption string, paths []*path, groups []string, rounds int, taken func(pi, gi int) int, cell func(pi, gi, k int) string) string {
	t := &benchmd.Table{Caption: caption, Head: []string{"path"}}
	for _, g := range groups {
		for k := range rounds {
			h := fmt.Sprintf("round %d", k+1)
			if g != "" {
				h = g + ", " + h
			}
			t.Head = append(t.Head, h)
		}
	}
	for pi, p := range paths {
		row := []string{p.name}
		for gi := range groups {
			for k := range rounds {
				c := ""
				if k < taken(pi, gi) {
					c = cell(pi, gi, k)
				}
				row = append(row, c)
			}
		}
		t.Row(row...)
	}
	return t.String()
}

// commandLine is argv as a shell command line, for the reports.
func commandLine(argv []string) string { return harness.Command{Argv: argv}.String() }
