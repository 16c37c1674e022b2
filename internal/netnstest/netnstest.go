//go:build linux

// Package netnstest makes the test hosts of portkit's root tests: two
// network namespaces, a scanner and a target, joined by a veth pair, with
// addresses from the benchmarking ranges (198.18.0.0/15, RFC 2544;
// 2001:2::/48, RFC 5180). It is for tests only.
package netnstest

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portkit/portkit/internal/testtool"
)

// The addresses of the pair's ends.
var (
	Scanner4 = netip.MustParseAddr("198.18.0.1")
	Target4  = netip.MustParseAddr("198.18.0.2")
	Scanner6 = netip.MustParseAddr("2001:2::1")
	Target6  = netip.MustParseAddr("2001:2::2")
)

// Pair names the two namespaces. Each veth end is named as its namespace.
type Pair struct{ Scanner, Target string }

var seq atomic.Int32

// New makes the namespaces and the veth pair between them, with
// 198.18.0.1/24 and 2001:2::1/64 on the scanner's end and .2 and ::2 on
// the target's, loopback up in both, and waits until the links report
// their carrier. prefix (a few letters) tells whose namespaces they are.
// They are deleted when the test ends, failed or not. Without root, or
// where namespaces cannot be made, the test is skipped with the reason.
func New(t testing.TB, prefix string) Pair {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes network namespaces")
	}
	testtool.Need(t, "ip")
	fenceHost(t)
	// Interface names have at most 15 bytes.
	id := fmt.Sprintf("%d-%d", os.Getpid()%100000, seq.Add(1))
	p := Pair{Scanner: "pk" + prefix + "s" + id, Target: "pk" + prefix + "t" + id}
	for _, ns := range []string{p.Scanner, p.Target} {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Skipf("cannot make network namespaces here: ip netns add: %v: %s", err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	// Deleting a namespace deletes its end, and with it the pair.
	s, g := p.Scanner, p.Target
	for _, args := range [][]string{
		{"link", "add", s, "netns", s, "type", "veth", "peer", "name", g, "netns", g},
		{"-n", s, "addr", "add", Scanner4.String() + "/24", "dev", s},
		{"-n", g, "addr", "add", Target4.String() + "/24", "dev", g},
		{"-n", s, "addr", "add", Scanner6.String() + "/64", "dev", s, "nodad"},
		{"-n", g, "addr", "add", Target6.String() + "/64", "dev", g, "nodad"},
		{"-n", s, "link", "set", "lo", "up"},
		{"-n", g, "link", "set", "lo", "up"},
		{"-n", s, "link", "set", s, "up"},
		{"-n", g, "link", "set", g, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	// The kernel tells of the carrier a moment later, and IPv6 does not
	// answer neighbour solicitations on a link until then.
	for _, ns := range []string{s, g} {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			out, err := exec.Command("ip", "-n", ns, "-o", "link", "show", "dev", ns).CombinedOutput()
			if err == nil && strings.Contains(string(out), "state UP") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("link %s not up after 5s: %v: %s", ns, err, out)
			}
		}
	}
	return p
}

// The test hosts' ranges: RFC 2544's and RFC 5180's benchmarking blocks,
// never routed on any network.
var testRanges = []string{"198.18.0.0/15", "2001:2::/48"}

// fenceHost makes the test ranges unreachable from the host's own
// namespace: a test that dials a test host from the wrong namespace (a
// goroutine that left the namespace's thread, say) then gets "network
// unreachable" at once, and no packet leaves this machine. The routes
// stay: nothing outside a test namespace has any business in these
// ranges. An "unreachable" route is only a fence, so one already there
// (or a route of the host's own to these ranges) is left as it is.
func fenceHost(t testing.TB) {
	t.Helper()
	for _, r := range testRanges {
		args := []string{"route", "add", "unreachable", r}
		if strings.Contains(r, ":") {
			args = append([]string{"-6"}, args...)
		}
		out, err := exec.Command("ip", args...).CombinedOutput()
		// (Without IPv6 in the kernel nothing can leak by it either.)
		if err != nil && !strings.Contains(string(out), "File exists") && !strings.Contains(string(out), "not supported") {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
}

// Run runs f on an OS thread of its own in namespace ns: what f opens
// stays in ns whichever thread uses it later, and routes f looks up are
// ns's. The thread is never returned to the runtime's pool, so it ends
// with f and nothing else ever runs in ns.
func Run(t testing.TB, ns string, f func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
