//go:build linux

package firewall

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/portkit/portkit/internal/netnstest"
	"github.com/portkit/portkit/internal/testtool"
	"github.com/portkit/portkit/registry"
)

// dropWait is how long a dial waits before a connection counts as
// dropped: the SYN was sent and nothing came back (a refused or reset
// connection fails at once, and is an error of another kind).
const dropWait = 700 * time.Millisecond

// host is the test's pair of namespaces and portkit's table in the target.
type host struct {
	p   netnstest.Pair
	tbl Table
}

func newHost(t *testing.T) host {
	t.Helper()
	p := netnstest.New(t, "fw")
	fd, err := unix.Open("/run/netns/"+p.Target, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	h := host{p: p, tbl: Table{NetNS: fd}}
	// Registered after the namespaces' own cleanups, so run before them.
	t.Cleanup(func() {
		if _, err := h.tbl.Flush(context.Background()); err != nil {
			t.Errorf("flush at cleanup: %v", err)
		}
		unix.Close(fd)
	})
	return h
}

// needNft skips a test that compares rulesets without nft.
func needNft(t *testing.T) {
	t.Helper()
	testtool.Need(t, "nft")
}

// nft runs nft in the target namespace.
func (h host) nft(t *testing.T, args ...string) string {
	t.Helper()
	needNft(t)
	out, err := exec.Command("ip", append([]string{"netns", "exec", h.p.Target, "nft"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("nft %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// echo serves TCP on the target's address on a free port, echoing what
// each connection sends, until the test ends.
func (h host) echo(t *testing.T, addr netip.Addr) netip.AddrPort {
	t.Helper()
	var l net.Listener
	netnstest.Run(t, h.p.Target, func() (err error) {
		l, err = net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
		return err
	})
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return netip.MustParseAddrPort(l.Addr().String())
}

// dial connects from the scanner's namespace; nil and the error when the
// connection is not made within dropWait.
func (h host) dial(t *testing.T, to netip.AddrPort) (net.Conn, error) {
	t.Helper()
	var c net.Conn
	var derr error
	netnstest.Run(t, h.p.Scanner, func() error {
		c, derr = net.DialTimeout("tcp", to.String(), dropWait)
		return nil
	})
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, derr
}

// mustConnect dials and exchanges bytes.
func (h host) mustConnect(t *testing.T, to netip.AddrPort, why string) net.Conn {
	t.Helper()
	c, err := h.dial(t, to)
	if err != nil {
		t.Fatalf("%s: connect to %s: %v, want connected", why, to, err)
	}
	exchange(t, c, why)
	return c
}

// mustDrop dials and wants the SYN dropped: a timeout, not a refusal.
func (h host) mustDrop(t *testing.T, to netip.AddrPort, why string) {
	t.Helper()
	c, err := h.dial(t, to)
	var ne net.Error
	if err == nil {
		c.Close()
		t.Fatalf("%s: connected to %s, want the connection dropped", why, to)
	}
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("%s: connect to %s: %v, want a timeout (dropped)", why, to, err)
	}
}

func exchange(t *testing.T, c net.Conn, why string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatalf("%s: write: %v", why, err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("%s: read %q, %v; want the echo of ping", why, buf, err)
	}
}

// waitUntil polls cond every 100ms, for at most limit.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, limit)
		}
	}
}

func (h host) list(t *testing.T) State {
	t.Helper()
	st, err := h.tbl.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestProtectOpenExpire: a protected port drops the scanner's connects;
// an opening for 2s lets them through; once the kernel expires it new
// connects are dropped again, and the connection made while it was open
// still carries bytes.
func TestProtectOpenExpire(t *testing.T) {
	h := newHost(t)
	ctx := context.Background()
	srv := h.echo(t, netnstest.Target4)
	port := srv.Port()

	h.mustConnect(t, srv, "before protect")
	if err := h.tbl.Protect(ctx, port, registry.TCP); err != nil {
		t.Fatal(err)
	}
	h.mustDrop(t, srv, "protected")

	if err := h.tbl.Open(ctx, netnstest.Scanner4, port, registry.TCP, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	st := h.list(t)
	want := Opening{Source: netnstest.Scanner4, Port: Port{port, registry.TCP}, Timeout: 2 * time.Second}
	if len(st.Openings) != 1 || st.Openings[0].Source != want.Source || st.Openings[0].Port != want.Port ||
		st.Openings[0].Timeout != want.Timeout || st.Openings[0].Left <= 0 || st.Openings[0].Left > want.Timeout {
		t.Fatalf("openings %+v, want one like %+v with time left", st.Openings, want)
	}
	if len(st.Protected) != 1 || st.Protected[0] != (Port{port, registry.TCP}) {
		t.Fatalf("protected %v, want %d/tcp", st.Protected, port)
	}
	kept := h.mustConnect(t, srv, "opened")

	waitUntil(t, 10*time.Second, "opening expired", func() bool { return len(h.list(t).Openings) == 0 })
	h.mustDrop(t, srv, "after the opening expired")
	exchange(t, kept, "connection made while open, after the opening expired")

	// Another protocol's opening of the same port does not let TCP in.
	if err := h.tbl.Open(ctx, netnstest.Scanner4, port, registry.UDP, time.Minute); err != nil {
		t.Fatal(err)
	}
	h.mustDrop(t, srv, "opened for udp only")

	if err := h.tbl.Unprotect(ctx, port, registry.TCP); err != nil {
		t.Fatal(err)
	}
	h.mustConnect(t, srv, "unprotected")
	if err := h.tbl.Unprotect(ctx, port, registry.TCP); !errors.Is(err, ErrNotFound) {
		t.Errorf("unprotect again: %v, want ErrNotFound", err)
	}
}

// TestOpenIPv6 does the same for an IPv6 source.
func TestOpenIPv6(t *testing.T) {
	h := newHost(t)
	ctx := context.Background()
	srv := h.echo(t, netnstest.Target6)
	if err := h.tbl.Protect(ctx, srv.Port(), registry.TCP); err != nil {
		t.Fatal(err)
	}
	h.mustDrop(t, srv, "protected")
	if err := h.tbl.Open(ctx, netnstest.Scanner6, srv.Port(), registry.TCP, time.Minute); err != nil {
		t.Fatal(err)
	}
	h.mustConnect(t, srv, "opened")
	if err := h.tbl.Close(ctx, netnstest.Scanner6, srv.Port(), registry.TCP); err != nil {
		t.Fatal(err)
	}
	h.mustDrop(t, srv, "closed")
	if err := h.tbl.Close(ctx, netnstest.Scanner6, srv.Port(), registry.TCP); !errors.Is(err, ErrNotFound) {
		t.Errorf("close again: %v, want ErrNotFound", err)
	}
}

// TestReopenRefreshes: opening again renews the timeout, longer or
// shorter. Adding an element that is there does not renew it before Linux
// 6.12, which is why Open deletes and adds it; on 6.12 and later adding
// alone would pass this test too.
func TestReopenRefreshes(t *testing.T) {
	h := newHost(t)
	ctx := context.Background()
	src := netip.MustParseAddr("198.18.0.77")
	if err := h.tbl.Open(ctx, src, 2222, registry.TCP, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := h.tbl.Open(ctx, src, 2222, registry.TCP, time.Hour); err != nil {
		t.Fatal(err)
	}
	st := h.list(t)
	if len(st.Openings) != 1 || st.Openings[0].Timeout != time.Hour || st.Openings[0].Left <= 5*time.Second {
		t.Fatalf("openings after re-open for 1h: %+v, want one with a timeout of 1h", st.Openings)
	}
	// And shorter again: the new timeout, not the longer old one.
	if err := h.tbl.Open(ctx, src, 2222, registry.TCP, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if st := h.list(t); len(st.Openings) != 1 || st.Openings[0].Timeout != 5*time.Second {
		t.Fatalf("openings after re-open for 5s: %+v", st.Openings)
	}
}

// TestBlock: a blocked source's connects are dropped, to any port, until
// the block expires.
func TestBlock(t *testing.T) {
	h := newHost(t)
	ctx := context.Background()
	srv := h.echo(t, netnstest.Target4)
	if err := h.tbl.Block(ctx, netnstest.Scanner4, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	st := h.list(t)
	if len(st.Blocked) != 1 || st.Blocked[0].Source != netnstest.Scanner4 || st.Blocked[0].Timeout != 2*time.Second || st.Blocked[0].Left <= 0 {
		t.Fatalf("blocked %+v, want %v for 2s", st.Blocked, netnstest.Scanner4)
	}
	h.mustDrop(t, srv, "blocked")
	waitUntil(t, 10*time.Second, "block expired", func() bool { return len(h.list(t).Blocked) == 0 })
	h.mustConnect(t, srv, "block expired")

	if err := h.tbl.Block(ctx, netnstest.Scanner4, 0); err != nil {
		t.Fatal(err)
	}
	if st := h.list(t); len(st.Blocked) != 1 || st.Blocked[0].Timeout != 0 {
		t.Fatalf("blocked without expiry: %+v", st.Blocked)
	}
	h.mustDrop(t, srv, "blocked until unblocked")
	if err := h.tbl.Unblock(ctx, netnstest.Scanner4); err != nil {
		t.Fatal(err)
	}
	h.mustConnect(t, srv, "unblocked")
	if err := h.tbl.Unblock(ctx, netnstest.Scanner4); !errors.Is(err, ErrNotFound) {
		t.Errorf("unblock again: %v, want ErrNotFound", err)
	}
}

// TestFlushLeavesOthers: flush removes portkit's table and nothing else;
// another table is byte for byte what it was.
func TestFlushLeavesOthers(t *testing.T) {
	h := newHost(t)
	ctx := context.Background()
	h.nftScript(t, `table inet other {
	set allowed { type ipv4_addr; elements = { 198.18.0.9 } }
	chain input { type filter hook input priority 0; policy accept; ip saddr @allowed counter accept; }
}
table ip nat {
	chain pre { type nat hook prerouting priority -100; }
}
`)
	before := h.nft(t, "-j", "list", "table", "inet", "other") + h.nft(t, "-j", "list", "table", "ip", "nat")
	if err := h.tbl.Protect(ctx, 22, registry.TCP); err != nil {
		t.Fatal(err)
	}
	if err := h.tbl.Open(ctx, netnstest.Scanner4, 22, registry.TCP, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := h.tbl.Block(ctx, netip.MustParseAddr("2001:2::9"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if rs := h.nft(t, "list", "ruleset"); !strings.Contains(rs, "table inet portkit") {
		t.Fatalf("no portkit table in the ruleset:\n%s", rs)
	}
	removed, err := h.tbl.Flush(ctx)
	if err != nil || !removed {
		t.Fatalf("flush: %v, %v; want removed", removed, err)
	}
	after := h.nft(t, "-j", "list", "table", "inet", "other") + h.nft(t, "-j", "list", "table", "ip", "nat")
	if before != after {
		t.Errorf("other tables changed by flush:\nbefore %s\nafter  %s", before, after)
	}
	if rs := h.nft(t, "list", "ruleset"); strings.Contains(rs, "portkit") {
		t.Errorf("portkit's table still there after flush:\n%s", rs)
	}
	if removed, err := h.tbl.Flush(ctx); err != nil || removed {
		t.Errorf("flush again: %v, %v; want nothing removed", removed, err)
	}
}

// nftScript loads rules into the target namespace from a script.
func (h host) nftScript(t *testing.T, script string) {
	t.Helper()
	needNft(t)
	cmd := exec.Command("ip", "netns", "exec", h.p.Target, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v\n%s\n%s", err, out, script)
	}
}

// TestCheckChangesNothing: Check, as root, says the table can be used
// whether it is there or not, and makes none.
func TestCheckChangesNothing(t *testing.T) {
	h := newHost(t)
	needNft(t)
	ctx := context.Background()
	before := h.nft(t, "-j", "list", "ruleset")
	if err := h.tbl.Check(ctx); err != nil {
		t.Fatalf("check without a table: %v", err)
	}
	if after := h.nft(t, "-j", "list", "ruleset"); after != before {
		t.Errorf("check changed the ruleset:\nbefore %s\nafter  %s", before, after)
	}
	if err := h.tbl.Protect(ctx, 22, registry.TCP); err != nil {
		t.Fatal(err)
	}
	if err := h.tbl.Check(ctx); err != nil {
		t.Errorf("check with portkit's table: %v", err)
	}
}

// TestForeignTableLeftAlone: a table of portkit's name that portkit did
// not make is neither changed nor removed.
func TestForeignTableLeftAlone(t *testing.T) {
	h := newHost(t)
	ctx := context.Background()
	h.nftScript(t, "table inet portkit {\n\tset protected { type inet_service; }\n}\n")
	before := h.nft(t, "-j", "list", "table", "inet", "portkit")
	if err := h.tbl.Protect(ctx, 22, registry.TCP); !errors.Is(err, ErrForeignTable) {
		t.Errorf("protect: %v, want ErrForeignTable", err)
	}
	if _, err := h.tbl.Flush(ctx); !errors.Is(err, ErrForeignTable) {
		t.Errorf("flush: %v, want ErrForeignTable", err)
	}
	if err := h.tbl.Check(ctx); !errors.Is(err, ErrForeignTable) {
		t.Errorf("check: %v, want ErrForeignTable", err)
	}
	if after := h.nft(t, "-j", "list", "table", "inet", "portkit"); after != before {
		t.Errorf("foreign table changed:\nbefore %s\nafter  %s", before, after)
	}
	h.nft(t, "delete", "table", "inet", "portkit")
}

// TestStatusNamesForeignDrops: another table's input chain with policy
// drop undoes an opening (nftables runs every base chain), and status
// names it; a rule dropping the port is named too, and a rule that drops
// only invalid packets is not.
func TestStatusNamesForeignDrops(t *testing.T) {
	h := newHost(t)
	ctx := context.Background()
	srv := h.echo(t, netnstest.Target4)
	port := strconv.Itoa(int(srv.Port()))
	h.nftScript(t, `table ip hostfw {
	chain input { type filter hook input priority 0; policy drop;
		ct state established,related accept
		tcp dport 80 accept
	}
}
table inet other {
	chain in { type filter hook input priority 10; policy accept;
		ct state invalid drop
		tcp dport `+port+` drop
		udp dport 53 drop
	}
	chain out { type filter hook output priority 0; policy drop; }
}
`)
	if err := h.tbl.Protect(ctx, srv.Port(), registry.TCP); err != nil {
		t.Fatal(err)
	}
	if err := h.tbl.Protect(ctx, 80, registry.TCP); err != nil {
		t.Fatal(err)
	}
	if err := h.tbl.Open(ctx, netnstest.Scanner4, srv.Port(), registry.TCP, time.Minute); err != nil {
		t.Fatal(err)
	}
	h.mustDrop(t, srv, "opened by portkit, dropped by table ip hostfw")

	// The dropping rule's handle, as nft -a shows it.
	handle := ""
	for _, line := range strings.Split(h.nft(t, "-a", "list", "chain", "inet", "other", "in"), "\n") {
		if _, after, ok := strings.Cut(line, "tcp dport "+port+" drop # handle "); ok {
			handle = strings.TrimSpace(after)
		}
	}
	rep, err := h.tbl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range rep.Conflicts {
		got = append(got, c.String()+" "+portsText(c.Ports))
	}
	want := []string{
		"table ip hostfw chain input (hook input priority 0, policy drop): policy drop " + port + "/tcp",
		"table inet other chain in (hook input priority 10, policy accept) rule handle " + handle + ": rule drops tcp dport " + port + " " + port + "/tcp",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("conflicts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	h.nft(t, "delete", "table", "ip", "hostfw")
	h.nft(t, "delete", "table", "inet", "other")
	h.mustConnect(t, srv, "opened, nothing else dropping")
}

func portsText(ps []Port) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return strings.Join(s, ",")
}

// TestConcurrentFirstUse: several callers making the table at once end
// with one table, one set of rules, and every element they added.
func TestConcurrentFirstUse(t *testing.T) {
	h := newHost(t)
	ctx := context.Background()
	const n = 6
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- h.tbl.Protect(ctx, uint16(1000+i), registry.TCP) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if st := h.list(t); len(st.Protected) != n {
		t.Errorf("protected %v, want %d ports", st.Protected, n)
	}
	c, err := nftables.New(nftables.WithNetNSFd(h.tbl.NetNS))
	if err != nil {
		t.Fatal(err)
	}
	nt := &nftables.Table{Name: DefaultTable, Family: nftables.TableFamilyINet}
	rules, err := c.GetRules(nt, &nftables.Chain{Name: chainInput, Table: nt})
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 7 {
		t.Errorf("%d rules in the input chain, want 7", len(rules))
	}
}
