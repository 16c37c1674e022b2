package cli

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"

	"github.com/portkit/portkit/scan"
)

// maxSourceAddrs bounds --source-addrs: past a few thousand, more
// addresses buy nothing a scan can use.
const maxSourceAddrs = 4096

// sourceAddrs reads --source-addrs: addresses and prefixes (every address
// of a prefix), each an address of this host, and "auto": the addresses of
// the interface the first target of each family is reached by. Errors are
// usage errors that name the flag and the value.
func sourceAddrs(words []string, targets scan.AddrSet) ([]netip.Addr, error) {
	var addrs []netip.Addr
	seen := map[netip.Addr]bool{}
	bad := func(w, why string) error {
		return &exitError{code: ExitUsage, err: fmt.Errorf("--source-addrs %q: %s", w, why)}
	}
	add := func(a netip.Addr) {
		if !seen[a] {
			seen[a] = true
			addrs = append(addrs, a)
		}
	}
	for _, w := range words {
		w = strings.TrimSpace(w)
		var first netip.Addr
		var n uint64 = 1
		if w == "auto" {
			auto, err := interfaceSources(targets)
			if err != nil {
				return nil, bad(w, err.Error())
			}
			for _, a := range auto {
				add(a)
			}
			continue
		}
		if strings.Contains(w, "/") {
			p, err := netip.ParsePrefix(w)
			if err != nil {
				return nil, bad(w, "not an address or a prefix")
			}
			if p.Addr().Zone() != "" {
				return nil, bad(w, "a prefix with a zone")
			}
			host := p.Addr().BitLen() - p.Bits()
			if host > 12 {
				return nil, bad(w, fmt.Sprintf("%d addresses; at most %d in all", uint64(1)<<min(host, 63), maxSourceAddrs))
			}
			first, n = p.Masked().Addr(), uint64(1)<<host
		} else {
			a, err := netip.ParseAddr(w)
			if err != nil {
				return nil, bad(w, "not an address or a prefix")
			}
			first = a
		}
		a := first.Unmap()
		for range n {
			add(a)
			a = a.Next()
		}
		if len(addrs) > maxSourceAddrs {
			return nil, bad(w, fmt.Sprintf("more than %d addresses in all", maxSourceAddrs))
		}
	}
	for _, a := range addrs {
		if err := checkLocal(a); err != nil {
			return nil, &exitError{code: ExitUsage, err: fmt.Errorf("--source-addrs: %v: %w", a, err)}
		}
	}
	return addrs, nil
}

// errNotLocal says an address cannot be sent from here.
var errNotLocal = errors.New("not an address of this host (add it to the interface the targets are reached through)")

// checkLocal reports whether a is an address of this host, by binding a
// UDP socket to it.
func checkLocal(a netip.Addr) error {
	if a.IsUnspecified() || a.IsMulticast() {
		return errors.New("not a unicast address")
	}
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 0)))
	if err != nil {
		if errors.Is(err, syscall.EADDRNOTAVAIL) {
			return errNotLocal
		}
		var errno syscall.Errno
		if errors.As(err, &errno) {
			return errno
		}
		return err
	}
	c.Close()
	return nil
}

// interfaceSources is --source-addrs auto: the addresses of the interface
// the first target of each family is reached by (of the first 4,096
// targets: a list of one family is not searched to its end for the other).
func interfaceSources(targets scan.AddrSet) ([]netip.Addr, error) {
	var addrs []netip.Addr
	var done4, done6 bool
	for i := uint64(0); i < min(targets.Len(), 4096) && !(done4 && done6); i++ {
		dst := targets.At(i).Unmap()
		if dst.Is4() && done4 || dst.Is6() && done6 {
			continue
		}
		found, err := scan.InterfaceAddrs(dst)
		if err != nil {
			return nil, fmt.Errorf("no route to %v", dst)
		}
		addrs = append(addrs, found...)
		done4, done6 = done4 || dst.Is4(), done6 || dst.Is6()
	}
	return addrs, nil
}
