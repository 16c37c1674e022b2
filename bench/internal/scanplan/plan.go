// Package scanplan is the ground truth of the scanner benchmarks
// (bench/scan.sh): which TCP ports are open on which addresses of the target
// network namespace. bench/cmd/scanfixture draws a plan from a seed, listens
// on it and writes it out once every listener is up; bench/cmd/scanbench reads
// it back and scores each scanner's output against it.
package scanplan

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"

	"github.com/portkit/portkit/portspec"
	"github.com/portkit/portkit/registry"
)

// Options say what to draw.
type Options struct {
	Seed     uint64
	Host     netip.Addr   // the single target of the full-range scans
	MinPorts int          // how many ports Host listens on: from MinPorts
	MaxPorts int          // to MaxPorts inclusive
	Sweep    netip.Prefix // the addresses of the sweep; invalid for none
	SweepTop int          // the sweep's ports: portkit's top SweepTop TCP ports
}

// Plan is what the fixture listens on. Ports lists are ascending.
type Plan struct {
	Seed  uint64     `json:"seed"`
	Host  netip.Addr `json:"host"`
	Ports []uint16   `json:"ports"` // open on Host; every other port of Host is closed
	Sweep *Sweep     `json:"sweep,omitempty"`
}

// Sweep is the many-address part: every address of Prefix is scanned on
// Ports; Open says which of those ports are open where (addresses not named
// have none open).
type Sweep struct {
	Prefix netip.Prefix            `json:"prefix"`
	Ports  []uint16                `json:"ports"` // in portkit's rank order, as --top gives them
	Open   map[netip.Addr][]uint16 `json:"open"`
}

// New draws a plan. The same options give the same plan.
func New(o Options) (*Plan, error) {
	if !o.Host.Is4() {
		return nil, fmt.Errorf("scanplan: host %v is not an IPv4 address", o.Host)
	}
	if o.MinPorts < 1 || o.MaxPorts < o.MinPorts || o.MaxPorts > 1000 {
		return nil, fmt.Errorf("scanplan: port count %d–%d out of range", o.MinPorts, o.MaxPorts)
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x5ca9))
	p := &Plan{Seed: o.Seed, Host: o.Host}
	n := o.MinPorts + rng.IntN(o.MaxPorts-o.MinPorts+1)
	p.Ports = drawPorts(rng, n, func(r *rand.Rand) uint16 { return uint16(1 + r.IntN(65535)) })

	if o.Sweep.IsValid() {
		s, err := newSweep(rng, o.Sweep.Masked(), o.SweepTop)
		if err != nil {
			return nil, err
		}
		if s.Prefix.Contains(o.Host) {
			return nil, fmt.Errorf("scanplan: sweep %v holds the host %v", s.Prefix, o.Host)
		}
		p.Sweep = s
	}
	return p, nil
}

// newSweep opens, on about half of the addresses of prefix, one to three
// ports drawn from portkit's top n.
func newSweep(rng *rand.Rand, prefix netip.Prefix, n int) (*Sweep, error) {
	if !prefix.Addr().Is4() || prefix.Bits() < 16 {
		return nil, fmt.Errorf("scanplan: sweep %v: want an IPv4 prefix of at most 65,536 addresses", prefix)
	}
	top := portspec.Top(n, registry.TCP)
	if len(top) < 3 {
		return nil, fmt.Errorf("scanplan: sweep over the top %d ports: too few", n)
	}
	s := &Sweep{Prefix: prefix, Ports: top, Open: map[netip.Addr][]uint16{}}
	for a := range Addrs(prefix) {
		if rng.IntN(2) == 0 {
			continue
		}
		s.Open[a] = drawPorts(rng, 1+rng.IntN(3), func(r *rand.Rand) uint16 { return top[r.IntN(len(top))] })
	}
	return s, nil
}

// drawPorts returns n distinct ports from draw, ascending.
func drawPorts(rng *rand.Rand, n int, draw func(*rand.Rand) uint16) []uint16 {
	seen := map[uint16]bool{}
	for len(seen) < n {
		seen[draw(rng)] = true
	}
	ports := make([]uint16, 0, n)
	for p := range seen {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	return ports
}

// Addrs yields every address of prefix, in order.
func Addrs(prefix netip.Prefix) func(yield func(netip.Addr) bool) {
	return func(yield func(netip.Addr) bool) {
		for a := prefix.Masked().Addr(); a.IsValid() && prefix.Contains(a); a = a.Next() {
			if !yield(a) {
				return
			}
		}
	}
}

// Listeners returns every address and port the fixture listens on.
func (p *Plan) Listeners() []netip.AddrPort {
	var out []netip.AddrPort
	for _, port := range p.Ports {
		out = append(out, netip.AddrPortFrom(p.Host, port))
	}
	if p.Sweep != nil {
		for a, ports := range p.Sweep.Open {
			for _, port := range ports {
				out = append(out, netip.AddrPortFrom(a, port))
			}
		}
	}
	slices.SortFunc(out, netip.AddrPort.Compare)
	return out
}

// Write stores p as JSON in file, atomically: a reader sees the whole plan
// or none.
func (p *Plan) Write(file string) error {
	b, err := json.MarshalIndent(p, "", " ")
	if err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// Read loads a plan written by Write.
func Read(file string) (*Plan, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if !p.Host.IsValid() || len(p.Ports) == 0 {
		return nil, fmt.Errorf("%s: no host or no ports", file)
	}
	return &p, nil
}
