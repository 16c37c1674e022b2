package main

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/portkit/portkit/bench/internal/scanplan"
)

// truth is what a scan should find: every address of addrs is probed on
// every port of ports, and exactly the pairs in open are open.
type truth struct {
	addrs map[netip.Addr]bool
	ports map[uint16]bool
	open  map[key]bool
}

// size is the number of probed pairs.
func (t *truth) size() int { return len(t.addrs) * len(t.ports) }

func (t *truth) probed(k key) bool { return t.addrs[k.addr] && t.ports[k.port] }

// hostTruth is the full-range scan of the plan's host.
func hostTruth(p *scanplan.Plan) *truth {
	t := &truth{addrs: map[netip.Addr]bool{p.Host: true}, ports: map[uint16]bool{}, open: map[key]bool{}}
	for port := 1; port <= 65535; port++ {
		t.ports[uint16(port)] = true
	}
	for _, port := range p.Ports {
		t.open[key{p.Host, port}] = true
	}
	return t
}

// sweepTruth is the scan of the plan's sweep on its ports.
func sweepTruth(s *scanplan.Sweep) *truth {
	t := &truth{addrs: map[netip.Addr]bool{}, ports: map[uint16]bool{}, open: map[key]bool{}}
	for a := range scanplan.Addrs(s.Prefix) {
		t.addrs[a] = true
	}
	for _, port := range s.Ports {
		t.ports[port] = true
	}
	for a, ports := range s.Open {
		for _, port := range ports {
			t.open[key{a, port}] = true
		}
	}
	return t
}

// score is one run's accuracy.
type score struct {
	open, wantOpen     int // truly open ports reported open, of all truly open
	closed, wantClosed int // truly closed ports reported closed, of all
	falseOpen          int // ports reported open that are not, or were never asked for
	other              map[string]int
	reportsClosed      bool // whether the tool said anything was closed
	repeats, conflicts int  // ports reported twice; of those, with two states
	missed             []key
}

// grade compares r with t.
func grade(r *result, t *truth) score {
	s := score{wantOpen: len(t.open), wantClosed: t.size() - len(t.open), other: map[string]int{},
		repeats: r.repeats, conflicts: r.conflicts}
	for k, st := range r.states {
		switch {
		case st == "open" && t.open[k]:
			s.open++
		case st == "open":
			s.falseOpen++
		case !t.probed(k):
			s.other["unasked "+st]++
		case st == "closed" && !t.open[k]:
			s.closed++
		case t.open[k]:
			s.other["open reported "+st]++
		default:
			s.other[st]++
		}
		if st == "closed" {
			s.reportsClosed = true
		}
	}
	// Counted, not listed: taken as right when they are closed, since the
	// listed ports name every open one.
	for st, n := range r.unlisted {
		if st == "closed" {
			s.closed += n
			s.reportsClosed = true
		} else {
			s.other[st] += n
		}
	}
	for k := range t.open {
		if r.states[k] != "open" {
			s.missed = append(s.missed, k)
		}
	}
	slices.SortFunc(s.missed, func(a, b key) int {
		return netip.AddrPortFrom(a.addr, a.port).Compare(netip.AddrPortFrom(b.addr, b.port))
	})
	return s
}

// perfect says whether every open port was found and nothing else called
// open, and, with closedToo, every closed port reported closed.
func (s score) perfect(closedToo bool) bool {
	return s.open == s.wantOpen && s.falseOpen == 0 && s.conflicts == 0 && (!closedToo || s.closed == s.wantClosed && s.repeats == 0)
}

// String is the accuracy as the report shows it, e.g.
// "25/25 open, 65510/65510 closed".
func (s score) String() string {
	parts := []string{group(s.open) + "/" + group(s.wantOpen) + " open"}
	if s.reportsClosed {
		parts = append(parts, group(s.closed)+"/"+group(s.wantClosed)+" closed")
	} else {
		parts = append(parts, "closed n/a")
	}
	if s.falseOpen > 0 {
		parts = append(parts, group(s.falseOpen)+" falsely open")
	}
	if s.repeats > 0 {
		parts = append(parts, group(s.repeats)+" reported twice")
	}
	if s.conflicts > 0 {
		parts = append(parts, group(s.conflicts)+" with two states")
	}
	for _, st := range slices.Sorted(maps.Keys(s.other)) {
		parts = append(parts, group(s.other[st])+" "+st)
	}
	return strings.Join(parts, ", ")
}

// missedString names up to n missed open ports.
func (s score) missedString(n int) string {
	var b strings.Builder
	for i, k := range s.missed {
		if i == n {
			fmt.Fprintf(&b, " … (%d in all)", len(s.missed))
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k.String())
	}
	return b.String()
}
