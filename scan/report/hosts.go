package report

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/portkit/portkit/scan"
	"github.com/portkit/portkit/service"
)

// grouped is the Sink of the formats that list ports per host: it keeps
// the shown results, grouped by host, for End.
type grouped struct {
	opts  Options
	names namer
	hosts hosts
	// svc is what service detection found, by port; only identified
	// ports are in it.
	svc map[scan.Probe]*service.Result
}

func newGrouped(opts Options) grouped {
	return grouped{opts: opts, names: namer{reg: opts.Registry}, hosts: hosts{}}
}

func (g *grouped) Result(r scan.Result) error { return g.ResultService(r, nil) }

func (g *grouped) ResultService(r scan.Result, svc *service.Result) error {
	if g.opts.shown(&r) {
		g.hosts.add(r)
		if svc != nil {
			if g.svc == nil {
				g.svc = map[scan.Probe]*service.Result{}
			}
			g.svc[r.Probe] = svc
		}
	}
	return nil
}

// service returns the service name of r: the one identified, or the
// registry's.
func (g *grouped) service(r *scan.Result) (string, *service.Result) {
	if s := g.svc[r.Probe]; s != nil {
		return s.Service, s
	}
	return g.names.name(r.Port, r.Proto), nil
}

// host is one address's shown results, kept until End.
type host struct {
	addr netip.Addr
	// up is set by the first answer from the host itself (open or closed).
	// reason and ttl are that answer's, or the first result's while the
	// host has not answered.
	up     bool
	reason string
	ttl    uint8
	ports  []scan.Result
}

// hosts groups the shown results by address. Only shown results are kept,
// so by default memory grows with the open ports, not with the scan.
type hosts map[netip.Addr]*host

func (hs hosts) add(r scan.Result) {
	h := hs[r.IP]
	if h == nil {
		h = &host{addr: r.IP, reason: r.Reason, ttl: r.TTL}
		hs[r.IP] = h
	}
	if !h.up && (r.State == scan.Open || r.State == scan.Closed) {
		h.up, h.reason, h.ttl = true, r.Reason, r.TTL
	}
	h.ports = append(h.ports, r)
}

// sorted returns the hosts in address order, each one's ports in port
// order, TCP before UDP on the same port.
func (hs hosts) sorted() []*host {
	list := make([]*host, 0, len(hs))
	for _, h := range hs {
		slices.SortFunc(h.ports, func(a, b scan.Result) int {
			return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.Proto, b.Proto))
		})
		list = append(list, h)
	}
	slices.SortFunc(list, func(a, b *host) int { return a.addr.Compare(b.addr) })
	return list
}
