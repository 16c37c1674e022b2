package sockets

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portkit/portkit/internal/testtool"
)

// needBPF skips unless the BPF iterator can run here: root (or the
// capabilities) and the kernel's BTF. Where both are, it must work.
func needBPF(t *testing.T) {
	t.Helper()
	if !bpfCapable() {
		t.Skip("needs CAP_SYS_ADMIN, or CAP_BPF and CAP_PERFMON")
	}
	if _, err := os.Stat(vmlinuxBTF); err != nil {
		t.Skip("no kernel BTF:", err)
	}
}

// sharedFixture opens, on one port of 127.0.0.1, a listener held by this
// process and two children, a bound, not listening, TCP socket held by this
// process and one child, another held by this process alone, and a UDP
// socket held by this process and one child. It returns the port, the
// children's PIDs and the sockets' inodes, holders by inode.
func sharedFixture(t *testing.T) (port int, holders map[uint64][]int) {
	t.Helper()
	lc := reusePortConfig()
	ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	port = ln.Addr().(*net.TCPAddr).Port
	lf, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lf.Close() })
	var bound []*os.File
	for range 2 {
		bound = append(bound, bindReusePort(t, port))
	}
	pc, err := net.ListenPacket("udp4", ln.Addr().String())
	if err != nil {
		t.Skipf("UDP port %d taken: %v", port, err)
	}
	t.Cleanup(func() { pc.Close() })
	uf, err := pc.(*net.UDPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uf.Close() })

	self := os.Getpid()
	holders = map[uint64][]int{
		inodeOf(t, lf): {self}, inodeOf(t, bound[0]): {self}, inodeOf(t, bound[1]): {self}, inodeOf(t, uf): {self},
	}
	for _, f := range []*os.File{lf, lf, bound[0], uf} {
		child := exec.Command("sleep", "30")
		child.ExtraFiles = []*os.File{f}
		if err := child.Start(); err != nil {
			testtool.Need(t, "sleep")
			t.Fatal("run sleep:", err)
		}
		t.Cleanup(func() { child.Process.Kill(); child.Wait() })
		ino := inodeOf(t, f)
		holders[ino] = append(holders[ino], child.Process.Pid)
	}
	return port, holders
}

// debugLog is a logger that keeps its debug messages for the test.
func debugLog() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

// TestBPFHolders: the BPF iterator and the /proc search find the same
// sockets with the same holders, every one of them: a listener shared by
// three processes, bound but not listening TCP sockets held by two and by
// one, a UDP socket held by two.
func TestBPFHolders(t *testing.T) {
	needBPF(t)
	port, holders := sharedFixture(t)
	q := Query{Port: uint16(port), WithProcesses: true}
	reqs, err := q.requests()
	if err != nil {
		t.Fatal(err)
	}
	log, logged := debugLog()
	list := func(l linuxLister) []Entry {
		got, err := l.list(context.Background(), reqs, q)
		if err != nil {
			t.Fatalf("bpf %v: %v", l.bpf, err)
		}
		sortEntries(got)
		return got
	}
	viaBPF := list(linuxLister{root: "/proc", bpf: true, btfPath: vmlinuxBTF, log: log})
	if logged.Len() > 0 {
		t.Fatalf("the BPF iterator was not used: %s", logged)
	}
	viaProc := list(linuxLister{root: "/proc"})
	if !reflect.DeepEqual(viaBPF, viaProc) {
		t.Errorf("via BPF:\n%+v\nvia /proc:\n%+v", viaBPF, viaProc)
	}
	checkHolders(t, viaBPF, holders)

	// The records themselves: each holder with the socket, on a
	// descriptor of its own.
	recs, err := bpfSockets(vmlinuxBTF)
	if err != nil {
		t.Fatal(err)
	}
	for ino, pids := range holders {
		for _, pid := range pids {
			if !slices.ContainsFunc(recs, func(r heldRecord) bool { return r.inode == ino && int(r.pid) == pid }) {
				t.Errorf("no record of pid %d holding socket %d", pid, ino)
			}
		}
	}
}

// checkHolders checks that got has every socket of holders, each with its
// holders, this process first, and no other.
func checkHolders(t *testing.T, got []Entry, holders map[uint64][]int) {
	t.Helper()
	seen := 0
	for _, e := range got {
		want, ok := holders[e.Inode]
		if !ok {
			continue // a socket of another test on the same port
		}
		seen++
		var pids []int
		for _, p := range e.Processes {
			pids = append(pids, p.PID)
		}
		if len(pids) == 0 || pids[0] != os.Getpid() || !sameSet(pids, want) || e.Hidden {
			t.Errorf("%v %v socket %d: holders %v (hidden %v), want %v, this process first", e.Proto, e.State, e.Inode, pids, e.Hidden, want)
		}
	}
	if seen != len(holders) {
		t.Errorf("%d of the %d sockets listed: %+v", seen, len(holders), got)
	}
}

func sameSet(a, b []int) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestBPFFallback: when the iterator cannot be used (here, no BTF, or BTF
// that is not BTF) the holders come from /proc, all of them, and the
// reason is logged at debug level.
func TestBPFFallback(t *testing.T) {
	needBPF(t)
	port, holders := sharedFixture(t)
	q := Query{Port: uint16(port), WithProcesses: true}
	reqs, err := q.requests()
	if err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(t.TempDir(), "vmlinux")
	if err := os.WriteFile(garbage, []byte("not BTF at all, though longer than its header"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, reason string }{
		{filepath.Join(t.TempDir(), "none"), "bpf read BTF: open"},
		{garbage, "bpf read BTF: malformed BTF: bad magic"},
	} {
		log, logged := debugLog()
		got, err := linuxLister{root: "/proc", bpf: true, btfPath: tc.path, log: log}.list(context.Background(), reqs, q)
		if err != nil {
			t.Fatal(err)
		}
		checkHolders(t, got, holders)
		if !strings.Contains(logged.String(), "level=DEBUG") || !strings.Contains(logged.String(), tc.reason) {
			t.Errorf("%s: logged %q, want a debug message with %q", tc.path, logged, tc.reason)
		}
	}
}

// TestBPFChoice: the iterator is tried only for the system's /proc and
// without NoBPF.
func TestBPFChoice(t *testing.T) {
	for _, tc := range []struct {
		t    Table
		want bool
	}{
		{Table{}, true},
		{Table{NoNetlink: true}, true},
		{Table{NoBPF: true}, false},
		{Table{ProcRoot: "testdata/proc"}, false},
	} {
		l := newLister(&tc.t).(linuxLister)
		if l.bpf != tc.want || l.bpf && l.btfPath != vmlinuxBTF {
			t.Errorf("%+v: bpf %v (BTF %q), want %v", tc.t, l.bpf, l.btfPath, tc.want)
		}
	}
}

// TestReadRecords: records split across reads are put back together; a
// partial record at the end is an error.
func TestReadRecords(t *testing.T) {
	var want []heldRecord
	var data []byte
	for i := range 1000 {
		r := heldRecord{pid: uint32(i), fd: uint32(i % 7), inode: uint64(i) << 33}
		want = append(want, r)
		data = appendRecord(data, r)
	}
	for _, chunk := range []int{1, 5, 16, 17, 4096, len(data)} {
		got, err := readRecords(chunked(data, chunk))
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("chunks of %d: %d records, %v", chunk, len(got), err)
		}
	}
	if _, err := readRecords(chunked(data[:len(data)-3], 100)); err == nil {
		t.Error("a truncated record read as whole")
	}
	// A read interrupted by a signal is retried, a few times.
	src, calls := chunked(data, 4096), 0
	interrupted := func(buf []byte) (int, error) {
		if calls++; calls%2 == 1 {
			return 0, syscall.EINTR
		}
		return src(buf)
	}
	if got, err := readRecords(interrupted); err != nil || !slices.Equal(got, want) {
		t.Errorf("with interruptions: %d records, %v", len(got), err)
	}
	always := func([]byte) (int, error) { return 0, syscall.EINTR }
	if _, err := readRecords(always); err != syscall.EINTR {
		t.Errorf("always interrupted: %v, want EINTR after a few tries", err)
	}
}

func appendRecord(b []byte, r heldRecord) []byte {
	var rec [heldRecordLen]byte
	ne := binary.NativeEndian
	ne.PutUint32(rec[0:], r.pid)
	ne.PutUint32(rec[4:], r.fd)
	ne.PutUint64(rec[8:], r.inode)
	return append(b, rec[:]...)
}

// chunked is a reader that answers data n bytes at a time, as an
// iterator's file answers as much as one read of the kernel gives.
func chunked(data []byte, n int) recordSource {
	return func(buf []byte) (int, error) {
		k := copy(buf[:min(n, len(buf))], data)
		data = data[k:]
		return k, nil
	}
}

// TestBPFOtherPIDNamespace: in a PID namespace of its own, where the
// iterator's PIDs (the initial namespace's) are not this process's,
// bpfSockets refuses before loading anything. The test binary runs itself as the
// first process of a new PID namespace and says what bpfSockets answered.
func TestBPFOtherPIDNamespace(t *testing.T) {
	needBPF(t)
	exe := executableCopy(t)
	cmd := exec.Command(exe, "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"=bpf")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("no PID namespace here: %v %s", err, out)
	}
	if !strings.HasPrefix(string(out), "bpf check: not in the initial PID namespace") {
		t.Errorf("in a new PID namespace bpfSockets said %q, want the namespace check's refusal", out)
	}
}

// BenchmarkBPFSockets times the BPF iterator's parts: reading the kernel's
// BTF (btf-ms), then everything (total-ms: BTF, load and verification,
// attach, the iteration and reading its records), with the records
// (every socket descriptor of the host). Run it beside a fixture:
//
//	go test -run '^$' -bench BPFSockets -benchtime 50x ./sockets
func BenchmarkBPFSockets(b *testing.B) {
	if !bpfCapable() {
		b.Skip("needs CAP_SYS_ADMIN, or CAP_BPF and CAP_PERFMON")
	}
	var btfTook, took time.Duration
	recs := 0
	for b.Loop() {
		start := time.Now()
		if _, err := kernelLayout(vmlinuxBTF); err != nil {
			b.Fatal(err)
		}
		btfTook += time.Since(start)
		start = time.Now()
		r, err := bpfSockets(vmlinuxBTF)
		took += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		recs = len(r)
	}
	b.ReportMetric(float64(btfTook.Microseconds())/1000/float64(b.N), "btf-ms")
	b.ReportMetric(float64(took.Microseconds())/1000/float64(b.N), "total-ms")
	b.ReportMetric(float64(recs), "records")
}
