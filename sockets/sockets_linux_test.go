package sockets

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portkit/portkit/internal/netnstest"
)

// backends are the ways Table reads the socket table and finds holders.
var backends = []struct {
	name  string
	table Table
}{
	{"netlink", Table{}},
	{"netlink, /proc search", Table{NoBPF: true}},
	{"procnet", Table{NoNetlink: true}},
}

// listener is a socket this test process holds open.
type listener struct {
	proto  Proto
	family Family
	addr   netip.AddrPort
}

// openListeners opens TCP and UDP sockets on the loopback addresses, port
// 0, of the families this host has.
func openListeners(t *testing.T) []listener {
	t.Helper()
	var ls []listener
	for _, l := range []struct {
		network, addr string
		proto         Proto
		family        Family
	}{
		{"tcp4", "127.0.0.1:0", TCP, IPv4},
		{"tcp6", "[::1]:0", TCP, IPv6},
		{"udp4", "127.0.0.1:0", UDP, IPv4},
		{"udp6", "[::1]:0", UDP, IPv6},
	} {
		addr, err := listen(t, l.network, l.addr)
		if err != nil && l.family == IPv6 {
			t.Logf("skipping %s: %v", l.network, err)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		ap, err := netip.ParseAddrPort(addr.String())
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, listener{l.proto, l.family, ap})
	}
	return ls
}

// listen opens a listener, TCP or UDP, closed when t ends.
func listen(t *testing.T, network, addr string) (net.Addr, error) {
	if strings.HasPrefix(network, "tcp") {
		ln, err := net.Listen(network, addr)
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { ln.Close() })
		return ln.Addr(), nil
	}
	c, err := net.ListenPacket(network, addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c.LocalAddr(), nil
}

func TestListOwnListeners(t *testing.T) {
	ls := openListeners(t)
	me := os.Getpid()
	uid := uint32(os.Getuid())
	userName := strconv.Itoa(os.Getuid())
	if u, err := user.Current(); err == nil {
		userName = u.Username
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, l := range ls {
				q := Query{Protos: l.proto, Families: l.family, Port: l.addr.Port(), WithProcesses: true}
				got, err := b.table.List(context.Background(), q)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != 1 {
					t.Fatalf("%v %v: %d entries, want 1: %+v", l.proto, l.addr, len(got), got)
				}
				e := got[0]
				wantState := Listen
				if l.proto == UDP {
					wantState = Close
				}
				if e.Local != l.addr || e.State != wantState || e.UID != uid || e.Inode == 0 || e.Hidden {
					t.Errorf("%v %v: %+v", l.proto, l.addr, e)
				}
				if len(e.Processes) != 1 {
					t.Fatalf("%v %v: processes %+v, want this one", l.proto, l.addr, e.Processes)
				}
				p := e.Processes[0]
				if p.PID != me || p.UID != uid || p.User != userName || len(p.Cmdline) == 0 || p.Cmdline[0] != os.Args[0] {
					t.Errorf("%v %v: process %+v, want pid %d, uid %d (%s), argv %q", l.proto, l.addr, p, me, uid, userName, os.Args)
				}
				if p.StartTicks == 0 || time.Since(p.StartTime) < 0 || time.Since(p.StartTime) > time.Hour {
					t.Errorf("%v %v: process started at %v (%d ticks)", l.proto, l.addr, p.StartTime, p.StartTicks)
				}
			}

			// The default query sees all of them too, without processes.
			got, err := b.table.List(context.Background(), Query{})
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range ls {
				found := false
				for _, e := range got {
					if e.Proto == l.proto && e.Local == l.addr {
						found = true
						if e.Processes != nil {
							t.Errorf("%v: processes without WithProcesses", l.addr)
						}
					}
				}
				if !found {
					t.Errorf("%v %v not in the default listing", l.proto, l.addr)
				}
			}
		})
	}
}

// TestListEstablished checks that a connection is listed, both ends, with
// the states ss -a shows.
func TestListEstablished(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	clientAddr := netip.MustParseAddrPort(client.LocalAddr().String())

	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			got, err := b.table.List(context.Background(), Query{Protos: TCP, States: AllStates, Port: port, WithProcesses: true})
			if err != nil {
				t.Fatal(err)
			}
			var states State
			for _, e := range got {
				states |= e.State
				if len(e.Processes) != 1 || e.Processes[0].PID != os.Getpid() {
					t.Errorf("%v %v: processes %+v", e.State, e.Local, e.Processes)
				}
				if e.State == Established && e.Remote != clientAddr {
					t.Errorf("accepted connection from %v, want %v", e.Remote, clientAddr)
				}
			}
			if len(got) != 2 || states != Listen|Established {
				t.Errorf("port %d: %+v, want the listener and the accepted connection", port, got)
			}
			// The default query lists listeners only.
			got, err = b.table.List(context.Background(), Query{Protos: TCP, Port: port})
			if err != nil || len(got) != 1 || got[0].State != Listen {
				t.Errorf("listeners on %d: %+v, %v", port, got, err)
			}
			// The client end, found by its own local port (which other
			// connections, to other peers, may share).
			got, err = b.table.List(context.Background(), Query{Protos: TCP, Families: IPv4, States: Established, Port: clientAddr.Port()})
			if err != nil || !slices.ContainsFunc(got, func(e Entry) bool { return e.Remote.Port() == port }) {
				t.Errorf("client end: %+v, %v", got, err)
			}
		})
	}
}

// TestProcFixture reads a whole fixture /proc: sockets from /proc/net and
// processes from their fd directories.
func TestProcFixture(t *testing.T) {
	const (
		docker = "c2f9e0d1a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e"
		k8s    = "8e3b0a9d7c6f5e4d3c2b1a09f8e7d6c5b4a392817f6e5d4c3b2a190817f6e5d4"
	)
	table := Table{ProcRoot: "testdata/proc", NoNetlink: true}
	got, err := table.List(context.Background(), Query{States: AllStates, WithProcesses: true})
	if err != nil {
		t.Fatal(err)
	}
	holders := map[uint64][]int{}
	for _, e := range got {
		if e.Hidden {
			t.Errorf("%v hidden", e.Local)
		}
		for _, p := range e.Processes {
			holders[e.Inode] = append(holders[e.Inode], p.PID)
		}
	}
	want := map[uint64][]int{
		20001: {101}, 20002: {202}, 20003: {303}, 20004: {404},
		20005: {505, 506}, // the master before its worker, read first
		20006: {506}, 20011: {506}, 20008: {707}, 20009: {808}, 20012: {808}, 20010: {909},
	}
	if len(holders) != len(want) {
		t.Errorf("holders %v, want %v", holders, want)
	}
	for ino, pids := range want {
		if !slices.Equal(holders[ino], pids) {
			t.Errorf("socket %d held by %v, want %v", ino, holders[ino], pids)
		}
	}
	if n := len(got); n != 13 {
		t.Errorf("%d sockets, want 13", n)
	}

	got, err = table.List(context.Background(), Query{Protos: TCP, Port: 80, WithProcesses: true})
	if err != nil || len(got) != 1 {
		t.Fatalf("port 80: %+v, %v", got, err)
	}
	ps := got[0].Processes
	if len(ps) != 2 || ps[0].PID != 505 || ps[1].PID != 506 {
		t.Fatalf("port 80 with all holders: %+v", ps)
	}
	master, worker := ps[0], ps[1]
	if master.Name != "nginx" || master.UID != 0 || master.Container != k8s ||
		master.StartTicks != 3000 || !master.StartTime.Equal(time.Unix(1700000030, 0)) ||
		len(master.Cmdline) != 1 || master.Cmdline[0] != "nginx: master process /usr/sbin/nginx -g daemon on; master_process on;" {
		t.Errorf("nginx master: %+v", master)
	}
	if worker.UID != 33 || worker.StartTime.Sub(master.StartTime) != 10*time.Millisecond {
		t.Errorf("nginx worker: %+v", worker)
	}

	got, err = table.List(context.Background(), Query{Protos: TCP, Families: IPv4, Port: 8080, WithProcesses: true})
	if err != nil || len(got) != 1 || len(got[0].Processes) != 1 {
		t.Fatalf("port 8080: %+v, %v", got, err)
	}
	if p := got[0].Processes[0]; p.Container != docker || p.User == "" || p.Cmdline[1] != "server.js" {
		t.Errorf("node in docker: %+v", p)
	}
	got, err = table.List(context.Background(), Query{Protos: TCP, States: Established, Port: 22, WithProcesses: true})
	if err != nil || len(got) != 1 || len(got[0].Processes) != 1 || got[0].Processes[0].Cmdline[0] != "sshd: alice [priv]" {
		t.Errorf("sshd session: %+v, %v", got, err)
	}
}

func BenchmarkListListeners(b *testing.B) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	ctx := context.Background()
	for _, be := range backends {
		for _, bc := range []struct {
			name string
			q    Query
		}{
			{"all", Query{}},
			{"all+processes", Query{WithProcesses: true}},
			{"port+processes", Query{Port: port, WithProcesses: true}},
		} {
			b.Run(be.name+"/"+bc.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := be.table.List(ctx, bc.q); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func TestProcessSelf(t *testing.T) {
	var tb Table
	p, err := tb.Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if p.PID != os.Getpid() || p.StartTicks == 0 || p.Name == "" {
		t.Errorf("Process(self) = %+v", p)
	}
	if _, err := tb.Process(1 << 30); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Process(no such pid) error = %v, want fs.ErrNotExist", err)
	}
}

// TestLinkLocalZone: a listener on a link-local address is listed with its
// interface's name as the zone, as it was bound.
func TestLinkLocalZone(t *testing.T) {
	p := netnstest.New(t, "zo")
	if out, err := exec.Command("ip", "-n", p.Target, "addr", "add", "fe80::1/64", "dev", p.Target, "nodad").CombinedOutput(); err != nil {
		t.Fatalf("ip addr add: %v: %s", err, out)
	}
	netnstest.Run(t, p.Target, func() error {
		ln, err := net.Listen("tcp6", "[fe80::1%"+p.Target+"]:0")
		if err != nil {
			return err
		}
		defer ln.Close()
		// Go's Addr leaves the zone out here: name it as it was bound.
		port := uint16(ln.Addr().(*net.TCPAddr).Port)
		want := netip.AddrPortFrom(netip.MustParseAddr("fe80::1%"+p.Target), port)
		for _, b := range backends {
			got, err := b.table.List(context.Background(), Query{Protos: TCP, Families: IPv6, Port: want.Port()})
			if err != nil {
				return err
			}
			if b.name == "procnet" {
				// /proc/net/tcp6 has no interface index to name.
				want = netip.AddrPortFrom(want.Addr().WithZone(""), want.Port())
			}
			if len(got) != 1 || got[0].Local != want {
				return fmt.Errorf("%s: %+v, want one at %v", b.name, got, want)
			}
		}
		return nil
	})
}

// TestBoundInactive: a TCP socket bound but neither listening nor
// connected holds its port; netlink lists it (Linux 6.8 and later) among
// the sockets that hold a port.
func TestBoundInactive(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(sa.(*syscall.SockaddrInet4).Port)
	got, err := new(Table).List(context.Background(), Query{Protos: TCP, Port: port, WithProcesses: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 {
		t.Skip("this kernel lists no bound, inactive TCP sockets (Linux 6.8 and later do)")
	}
	if e := got[0]; len(got) != 1 || e.State != Bound || len(e.Processes) != 1 || e.Processes[0].PID != os.Getpid() {
		t.Fatalf("bound socket on %d: %+v", port, got)
	}
}
