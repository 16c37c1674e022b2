package sockets

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"testing"
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
