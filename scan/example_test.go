package scan_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sort"

	"github.com/portkit/portkit/scan"
)

// ports is a PortSet of TCP ports.
type ports []uint16

func (p ports) Len() uint64                      { return uint64(len(p)) }
func (p ports) At(i uint64) (uint16, scan.Proto) { return p[i], scan.TCP }

// addrs is an AddrSet of single addresses.
type addrs []netip.Addr

func (a addrs) Len() uint64            { return uint64(len(a)) }
func (a addrs) At(i uint64) netip.Addr { return a[i] }

// Scan a loopback listener and the free port beside it; the sink gets
// each verdict as it is decided.
func ExampleScan() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	open := uint16(ln.Addr().(*net.TCPAddr).Port)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	free := uint16(closed.Addr().(*net.TCPAddr).Port)
	closed.Close()

	var lines []string
	sink := scan.SinkFunc(func(r scan.Result) error {
		state := "open"
		if r.Port == free {
			state = "the free port is " + r.State.String()
		} else if r.State != scan.Open {
			state = r.State.String()
		}
		lines = append(lines, state)
		return nil
	})
	_, err = scan.Scan(context.Background(), addrs{netip.MustParseAddr("127.0.0.1")}, ports{open, free}, sink)
	if err != nil {
		fmt.Println(err)
		return
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// open
	// the free port is closed
}
