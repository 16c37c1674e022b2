package portspec_test

import (
	"context"
	"fmt"

	"github.com/portkit/portkit/portspec"
	"github.com/portkit/portkit/registry"
)

// Port lists take nmap's syntax: numbers, ranges, service names, and T: or
// U: for the protocol of what follows.
func ExampleParsePorts() {
	l, err := portspec.ParsePorts("ssh,80,443,8000-8002,U:53", portspec.PortOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(l.Len(), "ports:", l)
	fmt.Println("tcp:", l.Ports(registry.TCP))
	fmt.Println("udp:", l.Ports(registry.UDP))
	// Output:
	// 7 ports: T:22,80,443,8000-8002,U:53
	// tcp: [22 80 443 8000 8001 8002]
	// udp: [53]
}

// Targets are kept as address ranges, never expanded: a /16 with a hole
// costs three ranges, not 65,536 addresses.
func ExampleParseTargets() {
	t, err := portspec.ParseTargets(context.Background(),
		[]string{"198.18.0.0/16", "198.19.0.1-3"},
		portspec.TargetOptions{Exclude: []string{"198.18.1.0/24"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(t.Len(), "addresses")
	for r := range t.Ranges() {
		fmt.Println(r)
	}
	// Output:
	// 65283 addresses
	// 198.18.0.0-198.18.0.255
	// 198.18.2.0-198.18.255.255
	// 198.19.0.1-198.19.0.3
}

// The most commonly open ports, best first (see TOP.md for how they are
// ranked).
func ExampleTop() {
	fmt.Println(portspec.Top(5, registry.TCP))
	// Output: [80 443 22 21 25]
}
