package forward

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// A rule whose target is its own listen address (or reaches it: a
// wildcard listener is reached at every local address) makes the forwarder
// connect to itself, which accepts, connects to itself again, and so on
// until the process runs out of descriptors. Rules that form such a cycle
// between them (a to b, b to a) do the same. checkLoops refuses both
// before anything starts; hopGuard catches at run time what a file cannot
// show (a host name that resolves to this host only when dialled, a name
// that did not resolve at the check). A loop through another process (our
// target is a local proxy that forwards back to us) it cannot see: that
// process's connections are not ours.

// loopResolveTimeout bounds the look-up of a target's host name for the
// loop check: a name that cannot be resolved now is left to the run-time
// guard rather than hold up a start or a reload.
const loopResolveTimeout = 2 * time.Second

// localAddrs says which addresses reach this host; hostAddrs resolves a
// host part. Both are fields so tests can stand in for the system.
type loopEnv struct {
	localAddrs func() []netip.Addr
	hostAddrs  func(host string) []netip.Addr
}

func systemLoopEnv() loopEnv {
	return loopEnv{
		localAddrs: func() []netip.Addr {
			as, err := net.InterfaceAddrs()
			if err != nil {
				return nil
			}
			var out []netip.Addr
			for _, a := range as {
				if p, err := netip.ParsePrefix(a.String()); err == nil {
					out = append(out, p.Addr().Unmap())
				}
			}
			return out
		},
		hostAddrs: func(host string) []netip.Addr {
			ctx, cancel := context.WithTimeout(context.Background(), loopResolveTimeout)
			defer cancel()
			as, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
			if err != nil {
				return nil
			}
			for i := range as {
				as[i] = as[i].Unmap()
			}
			return as
		},
	}
}

// addrsOf returns the addresses host stands for: itself if an address,
// else what it resolves to. An empty host is the wildcard.
func (e loopEnv) addrsOf(host string) []netip.Addr {
	if host == "" {
		return []netip.Addr{netip.IPv6Unspecified()}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap().WithZone("")}
	}
	return e.hostAddrs(host)
}

// listenAddrs is the one address of as that net.Listen binds a host name
// to: the first IPv4 one if any, else the first.
func listenAddrs(as []netip.Addr) []netip.Addr {
	for _, a := range as {
		if a.Is4() {
			return []netip.Addr{a}
		}
	}
	if len(as) > 1 {
		return as[:1]
	}
	return as
}

// reaches reports whether a connection to dst arrives at a socket listening
// on listen (same port assumed). A wildcard listener (0.0.0.0 or ::, both
// dual-stack in Go) is reached at every local address; a connection to the
// unspecified address goes to the loopback one.
func reaches(listen, dst netip.Addr, local []netip.Addr) bool {
	isLocal := func(a netip.Addr) bool {
		if a.IsLoopback() || a.IsUnspecified() {
			return true
		}
		for _, l := range local {
			if l == a {
				return true
			}
		}
		return false
	}
	switch {
	case listen.IsUnspecified():
		return isLocal(dst)
	case dst.IsUnspecified():
		return listen == netip.AddrFrom4([4]byte{127, 0, 0, 1}) || listen == netip.IPv6Loopback()
	}
	return listen == dst
}

// checkLoops refuses a rule set in which a rule's target leads back into
// the same rule, directly or through other rules of the set.
func checkLoops(rules []Rule, env loopEnv) error {
	var local []netip.Addr
	localOnce := sync.OnceFunc(func() { local = env.localAddrs() })
	type listener struct {
		port  string
		addrs []netip.Addr
	}
	listens := make([]listener, len(rules))
	for i, r := range rules {
		host, port, err := net.SplitHostPort(r.Listen)
		if err != nil || port == "0" {
			continue // port 0: no target can name it ahead
		}
		listens[i] = listener{port, listenAddrs(env.addrsOf(host))}
	}
	// edges[i] lists the rules that rule i's targets reach, with the target.
	type edge struct {
		to     int
		target string
	}
	edges := make([][]edge, len(rules))
	for i, r := range rules {
		for _, t := range r.Targets {
			host, port, err := net.SplitHostPort(t)
			if err != nil {
				continue
			}
			var dsts []netip.Addr
			for j, l := range listens {
				if l.port != port || rules[j].Protocol != r.Protocol {
					continue
				}
				if dsts == nil {
					dsts = env.addrsOf(host)
					localOnce()
				}
				if reachesAny(l.addrs, dsts, local) {
					edges[i] = append(edges[i], edge{j, t})
				}
			}
		}
	}
	// A depth-first search from each rule finds the first cycle back to it.
	for start := range rules {
		seen := make([]bool, len(rules))
		var path []edge
		var walk func(i int) bool
		walk = func(i int) bool {
			for _, e := range edges[i] {
				path = append(path, e)
				if e.to == start {
					return true
				}
				if !seen[e.to] {
					seen[e.to] = true
					if walk(e.to) {
						return true
					}
				}
				path = path[:len(path)-1]
			}
			return false
		}
		if !walk(start) {
			continue
		}
		r := rules[start]
		msg := "is this rule's own listen address"
		if len(path) > 1 {
			hops := []string{r.Name}
			for _, e := range path {
				hops = append(hops, fmt.Sprintf("%s (%s)", rules[e.to].Name, e.target))
			}
			msg = "leads back to this rule: " + strings.Join(hops, " -> ")
		}
		return &FieldError{Rule: r.Name, Field: "targets", Value: path[0].target,
			Err: errors.New(msg + "; the forwarder would connect to itself until it runs out of descriptors")}
	}
	return nil
}

func reachesAny(listens, dsts, local []netip.Addr) bool {
	for _, l := range listens {
		for _, d := range dsts {
			if reaches(l, d, local) {
				return true
			}
		}
	}
	return false
}

// hopGuard pairs the connections the forwarder accepts from this host with
// the ones it dials: a connection whose two ends are those of one of our
// own outgoing connections (its client address our local one, its local
// address the one we dialled) is a hop of ours. Both ends, not the client
// port alone: Linux hands the same ephemeral port to connections to
// different destinations, so a local client may share a port with one of
// our dials to a local target. A hop into a
// rule already on its chain is a loop, and is refused with a reset, which
// unwinds the chain. Accept and dial race (the kernel completes the
// handshake before either side's call returns), so whichever registers
// second makes the match.
type hopGuard struct {
	mu       sync.Mutex
	dialed   map[hopEnds]*tcpConn // our outgoing conn's ends -> the conn it serves
	accepted map[hopEnds]*tcpConn // a local client's conn's ends -> the conn
}

// hopEnds is a TCP connection's two ends as the dialling side sees them:
// from (its local address), to (the address it dialled).
type hopEnds struct{ from, to netip.AddrPort }

func newHopGuard() *hopGuard {
	return &hopGuard{dialed: map[hopEnds]*tcpConn{}, accepted: map[hopEnds]*tcpConn{}}
}

// maxHops bounds the walk up a chain of hops.
const maxHops = 64

// fromThisHost reports whether a connection between these two addresses
// stays on this host: a connection to a local address gets that address as
// its source, or a loopback one.
func fromThisHost(peer, self netip.AddrPort) bool {
	return peer.Addr().IsLoopback() || peer.Addr() == self.Addr()
}

// accept registers c, accepted from client at self, and returns the conn
// whose dial it came from if that makes a loop (c must then be refused).
func (g *hopGuard) accept(c *tcpConn, client, self netip.AddrPort) (loopsVia *tcpConn) {
	k := hopEnds{client, self}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.accepted[k] = c
	c.hopKey = k
	if p := g.dialed[k]; p != nil {
		if g.linkLocked(c, p) {
			return p
		}
	}
	return nil
}

// dial registers the connection from out to dst, dialled for c, and
// returns the accepted conn that it turned into if that makes a loop (it
// must then be aborted).
func (g *hopGuard) dial(c *tcpConn, out, dst netip.AddrPort) (looped *tcpConn) {
	k := hopEnds{out, dst}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dialed[k] = c
	c.dialKey = k
	if a := g.accepted[k]; a != nil {
		if g.linkLocked(a, c) {
			return a
		}
	}
	return nil
}

// linkLocked records that conn a arrived through p's dial and reports
// whether a's rule is on p's chain.
func (g *hopGuard) linkLocked(a, p *tcpConn) bool {
	a.via = p
	for n, h := 0, p; h != nil && n < maxHops; n, h = n+1, h.via {
		if h.rule == a.rule {
			return true
		}
	}
	return false
}

// done forgets c.
func (g *hopGuard) done(c *tcpConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.accepted[c.hopKey] == c {
		delete(g.accepted, c.hopKey)
	}
	if g.dialed[c.dialKey] == c {
		delete(g.dialed, c.dialKey)
	}
}
