package portspec

import (
	"slices"

	"github.com/portkit/portkit/registry"
)

//go:generate go run ./internal/topgen -o top_table.go

// Top returns the n most commonly open ports of proto (TCP or UDP), most
// common first, from portkit's own ranking (TOP.md tells how it is built
// and from what): a hand-ranked head of the services found on almost every
// network and documented default ports of common software, both in
// top_table.go; then every other port from 1 to 1023 that IANA assigns for
// proto, by number. That is over 1,200 TCP and 790 UDP ports; Top returns
// them all when n is larger, and nil for n < 1 or another protocol.
func Top(n int, proto registry.Proto) []uint16 {
	var ranked []uint16
	switch proto {
	case registry.TCP:
		ranked = topTCP[:]
	case registry.UDP:
		ranked = topUDP[:]
	}
	if n < 1 || ranked == nil {
		return nil
	}
	out := slices.Clone(ranked[:min(n, len(ranked))])
	if len(out) == n {
		return out
	}
	var listed [1024]bool
	for _, p := range ranked {
		if p < 1024 {
			listed[p] = true
		}
	}
	reg := registry.New()
	var rows []registry.Service
	assigned := func(s registry.Service) bool { return s.Name != "" && s.Proto == proto }
	for port := uint16(1); port < 1024 && len(out) < n; port++ {
		if listed[port] {
			continue
		}
		if rows = reg.AppendByPort(rows[:0], port, proto); slices.ContainsFunc(rows, assigned) {
			out = append(out, port)
		}
	}
	return out
}
