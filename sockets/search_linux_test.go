package sockets

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/portkit/portkit/internal/testtool"
)

// TestSharedTables: every descriptor of processes with more descriptors
// than one worker reads alone is read, several large tables at once and
// small ones beside them, whatever the number of workers: each descriptor
// is a socket of its own, and one more socket is shared by three.
func TestSharedTables(t *testing.T) {
	procs := []struct{ pid, fds int }{
		{10, 3 * sharedFds}, {11, 5}, {12, 2*sharedFds + fdChunk/2}, {13, sharedFds + 1}, {14, sharedFds}, {15, 4 * sharedFds}, {16, 0},
	}
	const sharedInode = 99999
	files := map[string]string{}
	var (
		entries []Entry
		want    = map[uint64][]int{sharedInode: {10, 12, 15}}
		pids    []int
	)
	for _, p := range procs {
		pids = append(pids, p.pid)
		dir := strconv.Itoa(p.pid) + "/fd/"
		files[dir+".keep"] = ""
		for fd := range p.fds {
			ino := uint64(p.pid*100000 + fd)
			files[dir+strconv.Itoa(fd)] = fmt.Sprintf("-> socket:[%d]", ino)
			want[ino] = []int{p.pid}
			entries = append(entries, Entry{Socket: Socket{Inode: ino}})
		}
		if slices.Contains(want[sharedInode], p.pid) {
			files[dir+strconv.Itoa(p.fds)] = fmt.Sprintf("-> socket:[%d]", sharedInode)
		}
	}
	entries = append(entries, Entry{Socket: Socket{Inode: sharedInode}})
	root := t.TempDir()
	writeTree(t, root, files)
	for _, procs := range []int{1, 2, 4} {
		t.Run(fmt.Sprint("GOMAXPROCS=", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			for range 3 { // different interleavings
				s := newSearch(slices.Clone(entries), false)
				if err := s.run(context.Background(), root, pids); err != nil {
					t.Fatal(err)
				}
				bad := 0
				for _, e := range s.entries {
					var got []int
					for _, p := range e.Processes {
						got = append(got, p.PID)
					}
					slices.Sort(got)
					if !slices.Equal(got, want[e.Inode]) && bad < 5 {
						bad++
						t.Errorf("socket %d: holders %v, want %v", e.Inode, got, want[e.Inode])
					}
				}
			}
		})
	}
}

// TestSharedTableOfThisProcess: this process, with thousands of
// descriptors, is found to hold a listener whose descriptor is among the
// last, read by several workers.
func TestSharedTableOfThisProcess(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0))))
	ln := manyDescriptors(t, 2000)
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	got, err := new(Table).List(context.Background(), Query{Protos: TCP, Port: port, WithProcesses: true})
	if err != nil || len(got) != 1 {
		t.Fatalf("%+v, %v", got, err)
	}
	if !slices.ContainsFunc(got[0].Processes, func(p Process) bool { return p.PID == os.Getpid() }) {
		t.Errorf("holders %+v lack this process, %d", got[0].Processes, os.Getpid())
	}
}

// manyDescriptors opens n descriptors (of /dev/null), then a listener,
// whose descriptor comes after them, all closed at the end of the test.
func manyDescriptors(tb testing.TB, n int) net.Listener {
	tb.Helper()
	null, err := os.Open(os.DevNull)
	if err != nil {
		tb.Fatal(err)
	}
	defer null.Close()
	for range n {
		fd, err := syscall.Dup(int(null.Fd()))
		if err != nil {
			tb.Skipf("dup: %v (RLIMIT_NOFILE?)", err)
		}
		tb.Cleanup(func() { syscall.Close(fd) })
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	return ln
}

// BenchmarkSearchManyFds reads the descriptors of this process, holding
// 10,000 of them, for a socket it does not hold: the cost of one busy
// server's table, on the workers GOMAXPROCS allows.
func BenchmarkSearchManyFds(b *testing.B) {
	manyDescriptors(b, 10000)
	pids := []int{os.Getpid()}
	b.ResetTimer()
	for b.Loop() {
		entries := []Entry{{Socket: Socket{Inode: 1}}} // no descriptor's
		s := newSearch(entries, false)
		if err := s.run(context.Background(), "/proc", pids); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/fd")
}

// TestSplitSlow: TCP requests for listening or bound sockets are split in
// two, listeners with the quick requests (UDP's among them), bound sockets
// with the slow; each keeps its family, ports and order, so that IPv4 and
// IPv6 stay side by side for dumpTCP. Other requests stay whole and quick.
func TestSplitSlow(t *testing.T) {
	tcp := func(f Family, st State) request { return request{TCP, f, st, 80, 81} }
	udp := func(f Family) request { return request{UDP, f, udpStates, 80, 81} }
	tests := []struct {
		name              string
		reqs, quick, slow []request
	}{
		{"who: listening or bound TCP, all UDP",
			[]request{tcp(IPv4, Listen|Bound), tcp(IPv6, Listen|Bound), udp(IPv4), udp(IPv6)},
			[]request{tcp(IPv4, Listen), tcp(IPv6, Listen), udp(IPv4), udp(IPv6)},
			[]request{tcp(IPv4, Bound), tcp(IPv6, Bound)}},
		{"ls: listeners only",
			[]request{tcp(IPv4, Listen), tcp(IPv6, Listen), udp(IPv4)},
			[]request{tcp(IPv4, Listen), tcp(IPv6, Listen), udp(IPv4)}, nil},
		{"ls -a: every state, not split",
			[]request{tcp(IPv4, AllStates&^Close), tcp(IPv6, AllStates&^Close)},
			[]request{tcp(IPv4, AllStates&^Close), tcp(IPv6, AllStates&^Close)}, nil},
		{"bound only: nothing to start the search with",
			[]request{tcp(IPv4, Bound)}, []request{tcp(IPv4, Bound)}, nil},
	}
	for _, tt := range tests {
		quick, slow := splitSlow(tt.reqs)
		if !slices.Equal(quick, tt.quick) || !slices.Equal(slow, tt.slow) {
			t.Errorf("%s: quick %v slow %v, want %v and %v", tt.name, quick, slow, tt.quick, tt.slow)
		}
	}
}

// reusePortConfig listens with SO_REUSEPORT, so that several sockets
// share a port.
func reusePortConfig() net.ListenConfig {
	return net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) { err = setReusePort(int(fd)) }); cerr != nil {
			return cerr
		}
		return err
	}}
}

func setReusePort(fd int) error {
	return syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, soReusePort, 1)
}

// bindReusePort is a TCP socket bound to port of 127.0.0.1 with
// SO_REUSEPORT, not listening, closed when the test ends.
func bindReusePort(t *testing.T, port int) *os.File {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "bound")
	t.Cleanup(func() { f.Close() })
	if err := setReusePort(fd); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestOverlappedSearch: the search run beside the slow requests (the
// bound sockets who asks for) finds what the search after every request
// finds, on real sockets: a listener and two bound, inactive sockets on
// one port (SO_REUSEPORT), the listener held by this process and two
// children, one bound socket by this process and a third child, the other
// by this process alone. Every holder is listed (issue 10).
func TestOverlappedSearch(t *testing.T) {
	lc := reusePortConfig()
	ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	var bound []*os.File
	for range 2 {
		bound = append(bound, bindReusePort(t, port))
	}
	lf, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	for _, f := range []*os.File{lf, lf, bound[0]} {
		child := exec.Command("sleep", "30")
		child.ExtraFiles = []*os.File{f}
		if err := child.Start(); err != nil {
			testtool.Need(t, "sleep")
			t.Fatal("run sleep:", err)
		}
		defer func() { child.Process.Kill(); child.Wait() }()
	}

	q := Query{Port: uint16(port), WithProcesses: true}
	reqs, err := q.requests()
	if err != nil {
		t.Fatal(err)
	}
	list := func(serial bool) []Entry {
		got, err := linuxLister{root: "/proc", serial: serial}.list(context.Background(), reqs, q)
		if err != nil {
			t.Fatalf("serial %v: %v", serial, err)
		}
		sortEntries(got)
		return got
	}
	serial, overlapped := list(true), list(false)
	if n := countState(overlapped, Bound); n == 0 {
		t.Skip("this kernel lists no bound, inactive TCP sockets (Linux 6.8 and later do)")
	}
	if !reflect.DeepEqual(serial, overlapped) {
		t.Errorf("overlapped search:\n%+v\nserial:\n%+v", overlapped, serial)
	}
	for _, e := range overlapped {
		want := 1 // the second bound socket
		switch {
		case e.State == Listen:
			want = 3
		case e.Inode == inodeOf(t, bound[0]):
			want = 2
		}
		if len(e.Processes) != want || e.Processes[0].PID != os.Getpid() {
			t.Errorf("%v socket %d: holders %+v, want this process and %d more", e.State, e.Inode, e.Processes, want-1)
		}
	}
	if len(overlapped) != 3 {
		t.Errorf("%d sockets on port %d, want 3: %+v", len(overlapped), port, overlapped)
	}
}

// soReusePort is SO_REUSEPORT, which package syscall lacks on Linux.
const soReusePort = 15

func countState(entries []Entry, st State) int {
	n := 0
	for _, e := range entries {
		if e.State == st {
			n++
		}
	}
	return n
}

// inodeOf is the inode of the socket f is.
func inodeOf(t *testing.T, f *os.File) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestLateSockets: sockets listed while the search runs find every holder,
// whether the search met them before they were published (and recorded
// them) or after: here all before, or all after, on a fixture /proc, with a
// table large enough to be shared among workers.
func TestLateSockets(t *testing.T) {
	files := map[string]string{
		"10/fd/0": "-> socket:[1001]", "10/fd/1": "-> socket:[1002]", "10/fd/2": "-> /dev/null",
		"11/fd/0": "-> socket:[1002]", "11/fd/1": "-> socket:[1003]",
		"13/fd/.keep": "",
	}
	for fd := range 3 * sharedFds {
		files["12/fd/"+strconv.Itoa(fd)] = fmt.Sprintf("-> socket:[%d]", 20000+fd)
	}
	files["12/fd/"+strconv.Itoa(3*sharedFds)] = "-> socket:[1003]"
	root := t.TempDir()
	writeTree(t, root, files)
	holders := func(entries []Entry) map[uint64][]int {
		m := map[uint64][]int{}
		for _, e := range entries {
			for _, p := range e.Processes {
				m[e.Inode] = append(m[e.Inode], p.PID)
			}
			slices.Sort(m[e.Inode])
		}
		return m
	}
	want := map[uint64][]int{1001: {10}, 1002: {10, 11}, 1003: {11, 12}, 20005: {12}}
	for _, procs := range []int{1, 2} {
		for _, before := range []bool{true, false} {
			t.Run(fmt.Sprintf("GOMAXPROCS=%d/published before the search: %v", procs, before), func(t *testing.T) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
				s := newSearch([]Entry{{Socket: Socket{Inode: 1001}}}, true)
				late := []Entry{{Socket: Socket{Inode: 1002}}, {Socket: Socket{Inode: 1003}}, {Socket: Socket{Inode: 20005}}, {}}
				if before {
					s.publish(late)
				}
				if err := s.run(context.Background(), root, nil); err != nil {
					t.Fatal(err)
				}
				if !before {
					s.publish(late)
				}
				s.joinLate()
				if got := holders(s.entries); !reflect.DeepEqual(got, want) || len(s.entries) != 5 {
					t.Errorf("holders %v of %d sockets, want %v of 5", got, len(s.entries), want)
				}
			})
		}
	}
}

// BenchmarkListWho times List as who calls it, for a listener of this
// process, with the bound-socket walk run before the search and beside it,
// one after the other in each iteration so that both meet the same load:
// serial-ms and overlapped-ms are each way's mean. On the host as it is, or
// in the namespace of bench/sockets.sh's fixture (sockfixture):
//
//	ip netns exec NS go test -run '^$' -bench ListWho -benchtime 30x ./sockets
func BenchmarkListWho(b *testing.B) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	q := Query{Port: uint16(ln.Addr().(*net.TCPAddr).Port), WithProcesses: true}
	reqs, err := q.requests()
	if err != nil {
		b.Fatal(err)
	}
	ways := []linuxLister{{root: "/proc", serial: true}, {root: "/proc"}}
	if bpfCapable() {
		ways = append(ways, linuxLister{root: "/proc", bpf: true, btfPath: vmlinuxBTF})
	}
	took := make([]time.Duration, len(ways))
	for b.Loop() {
		for i, l := range ways {
			start := time.Now()
			got, err := l.list(context.Background(), reqs, q)
			took[i] += time.Since(start)
			if err != nil || len(got) != 1 || len(got[0].Processes) == 0 {
				b.Fatalf("%+v, %v", got, err)
			}
		}
	}
	b.ReportMetric(float64(took[0].Milliseconds())/float64(b.N), "serial-ms")
	b.ReportMetric(float64(took[1].Milliseconds())/float64(b.N), "overlapped-ms")
	if len(took) > 2 {
		b.ReportMetric(float64(took[2].Microseconds())/1000/float64(b.N), "bpf-ms")
	}
}
