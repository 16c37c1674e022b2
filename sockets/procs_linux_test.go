package sockets

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portkit/portkit/internal/testtool"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		stat  string
		name  string
		ppid  int
		ticks uint64
	}{
		{"1 (systemd) S 0 1 1 0 -1 4194560 97016 1864419 114 1062 366 407 3458 1592 20 0 1 0 12 22306816 3257 18446744073709551615 1 1 0 0 0 0 671173123 4096 1260 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n", "systemd", 0, 12},
		// A name may hold spaces and parentheses: fields count from the last ')'.
		{"4242 (tmux: server) S 1 4242 4242 0 -1 4194368 3066 0 0 0 147 96 0 0 20 0 1 0 98765 9957376 1290 18446744073709551615 1 1 0 0 0 0 0 3674112 134433283 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n", "tmux: server", 1, 98765},
		{"77 (a) b) c) R 3021 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 555 0 0", "a) b) c", 3021, 555},
	}
	for _, tt := range tests {
		name, ppid, ticks, err := parseStat([]byte(tt.stat))
		if err != nil || name != tt.name || ppid != tt.ppid || ticks != tt.ticks {
			t.Errorf("parseStat(%.30q) = %q, %d, %d, %v; want %q, %d, %d", tt.stat, name, ppid, ticks, err, tt.name, tt.ppid, tt.ticks)
		}
	}
	for _, bad := range []string{"", "1 systemd S 0", "1 (x) S 0 1 1", "1 (x) S 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 -5 0", "1 (x) S -1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0"} {
		if _, _, _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
}

func TestParseStatusUID(t *testing.T) {
	uid, err := parseStatusUID([]byte("Name:\tsudo\nUmask:\t0022\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n"))
	if err != nil || uid != 0 {
		t.Errorf("effective uid %d, %v; want 0", uid, err)
	}
	for _, bad := range []string{"Name:\tx\n", "Uid:\t1000\n", "Uid:\t1000\tx\t0\t0\n"} {
		if _, err := parseStatusUID([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseCmdline(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"/usr/bin/python3\x00-m\x00http.server\x00", []string{"/usr/bin/python3", "-m", "http.server"}},
		{"postgres: checkpointer \x00\x00\x00\x00", []string{"postgres: checkpointer "}},
		{"a\x00\x00b\x00", []string{"a", "", "b"}},
	}
	for _, tt := range tests {
		got := parseCmdline([]byte(tt.in))
		if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("parseCmdline(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSocketInode(t *testing.T) {
	for link, want := range map[string]uint64{
		"socket:[12345]":       12345,
		"socket:[4294967295]":  4294967295,
		"socket:[]":            0,
		"socket:[12":           0,
		"pipe:[12345]":         0,
		"/dev/null":            0,
		"anon_inode:[eventfd]": 0,
	} {
		if got := socketInode([]byte(link)); got != want {
			t.Errorf("socketInode(%q) = %d, want %d", link, got, want)
		}
	}
}

// writeTree writes files (path → content; content "-> target" makes a
// symbolic link) under root.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for path, content := range files {
		path = filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(content, "-> "); ok {
			err = os.Symlink(target, path)
		} else {
			err = os.WriteFile(path, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestHiddenFixture checks Hidden with a fixture /proc in which one
// process's fd directory cannot be read. Root reads it all the same, so as
// root TestOtherUser covers this with real processes instead.
func TestHiddenFixture(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every directory; TestOtherUser checks Hidden as root")
	}
	const tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 20001 1 0 100 0 0 10 0\n" +
		"   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 20002 1 0 100 0 0 10 0\n"
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"net/tcp":       tcp,
		"stat":          "btime 1700000000\n",
		"10/fd/0":       "-> /dev/null",
		"10/stat":       "10 (sshd) S 1 10 10 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0\n",
		"10/status":     "Uid:\t0\t0\t0\t0\n",
		"20/fd/3":       "-> socket:[20002]",
		"20/stat":       "20 (devserver) S 1 20 20 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 200 0 0\n",
		"20/status":     "Uid:\t1000\t1000\t1000\t1000\n",
		"20/cmdline":    "devserver\x00",
		"net/tcp6":      strings.SplitAfter(tcp, "\n")[0],
		"net/udp":       strings.SplitAfter(tcp, "\n")[0],
		"net/udp6":      strings.SplitAfter(tcp, "\n")[0],
		"self/fd/.keep": "",
	})
	table := Table{ProcRoot: root, NoNetlink: true}
	list := func() map[uint16]Entry {
		t.Helper()
		got, err := table.List(context.Background(), Query{WithProcesses: true})
		if err != nil {
			t.Fatal(err)
		}
		m := map[uint16]Entry{}
		for _, e := range got {
			m[e.Local.Port()] = e
		}
		return m
	}
	// Everything readable: port 22 has no process, and that is all.
	got := list()
	if e := got[22]; e.Hidden || len(e.Processes) != 0 {
		t.Errorf("port 22, all readable: %+v", e)
	}
	if e := got[8080]; e.Hidden || len(e.Processes) != 1 || e.Processes[0].PID != 20 {
		t.Errorf("port 8080: %+v", e)
	}
	// Process 10's descriptors hidden: port 22 may be its.
	if err := os.Chmod(filepath.Join(root, "10/fd"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(root, "10/fd"), 0o755) })
	got = list()
	if e := got[22]; !e.Hidden || len(e.Processes) != 0 || e.UID != 0 {
		t.Errorf("port 22, process 10 unreadable: %+v, want hidden, owned by uid 0", e)
	}
	if e := got[8080]; e.Hidden || len(e.Processes) != 1 {
		t.Errorf("port 8080: %+v", e)
	}
}

// helperEnv names what TestHelperProcess does when the test binary runs
// itself as a child.
const helperEnv = "SOCKETS_TEST_HELPER"

// TestHelperProcess is not a test: TestOtherUser runs the test binary with
// it as another uid. "listen" holds a listener and prints its port until
// stdin closes; "list PORT" prints what each backend sees of PORT as JSON;
// "capable" whether it may use the BPF iterator; "bpf" what the iterator
// answered (TestBPFOtherPIDNamespace).
func TestHelperProcess(t *testing.T) {
	mode, arg, _ := strings.Cut(os.Getenv(helperEnv), " ")
	switch mode {
	case "":
		return
	case "listen":
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println(ln.Addr().(*net.TCPAddr).Port)
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	case "bpf":
		recs, err := bpfSockets(vmlinuxBTF)
		fmt.Println(err, len(recs))
		os.Exit(0)
	case "capable":
		fmt.Println(bpfCapable())
		os.Exit(0)
	case "list":
		port, _ := strconv.Atoi(arg)
		for _, b := range backends {
			got, err := b.table.List(context.Background(), Query{Protos: TCP, Port: uint16(port), WithProcesses: true})
			json.NewEncoder(os.Stdout).Encode(helperResult{b.name, got, fmt.Sprint(err)})
		}
		os.Exit(0)
	}
}

type helperResult struct {
	Backend string
	Entries []Entry
	Err     string
}

// TestOtherUser runs a listener as uid 65534 (nobody) and looks for it as
// root, who must see the process, and as uid 65533, who may not read
// nobody's descriptors and must be told the holder is hidden. Both are
// real: the second runs this test binary as uid 65533 and reads what it
// prints.
func TestOtherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run processes as other users")
	}
	const owner, other = 65534, 65533
	exe := executableCopy(t)
	run := func(uid uint32, env string) *exec.Cmd {
		cmd := exec.Command(exe, "-test.run=^TestHelperProcess$")
		cmd.Dir = filepath.Dir(exe)
		cmd.Env = append(os.Environ(), helperEnv+"="+env)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		cmd.Stderr = os.Stderr
		return cmd
	}

	holder := run(owner, "listen")
	stdin, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { holder.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			holder.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	port, perr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || perr != nil {
		t.Fatalf("listener said %q, %v", line, err)
	}

	// As root.
	for _, b := range backends {
		got, err := b.table.List(context.Background(), Query{Protos: TCP, Port: uint16(port), WithProcesses: true})
		if err != nil || len(got) != 1 {
			t.Fatalf("%s as root: %+v, %v", b.name, got, err)
		}
		e := got[0]
		if e.UID != owner || e.Hidden || len(e.Processes) != 1 {
			t.Fatalf("%s as root: %+v", b.name, e)
		}
		if p := e.Processes[0]; p.PID != holder.Process.Pid || p.UID != owner {
			t.Errorf("%s as root: process %+v, want pid %d uid %d", b.name, p, holder.Process.Pid, owner)
		}
	}

	// As another unprivileged user, who may not use the BPF iterator.
	if out, err := run(other, "capable").Output(); err != nil || string(out) != "false\n" {
		t.Errorf("uid %d may use BPF: %q, %v", other, out, err)
	}
	out, err := run(other, "list "+strconv.Itoa(port)).Output()
	if err != nil {
		t.Fatalf("list as uid %d: %v\n%s", other, err, out)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for _, b := range backends {
		var r struct {
			Backend string
			Entries []struct {
				UID       uint32
				Hidden    bool
				Processes []Process
			}
			Err string
		}
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("output of uid %d: %v\n%s", other, err, out)
		}
		if r.Backend != b.name || r.Err != "<nil>" || len(r.Entries) != 1 {
			t.Fatalf("%s as uid %d: %+v", b.name, other, r)
		}
		if e := r.Entries[0]; !e.Hidden || len(e.Processes) != 0 || e.UID != owner {
			t.Errorf("%s as uid %d: %+v, want hidden, owned by uid %d", b.name, other, e, owner)
		}
	}
}

// executableCopy copies the test binary where any user may run it: go test
// builds it in a directory only its owner may enter.
func executableCopy(t *testing.T) string {
	t.Helper()
	src, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "sockets.test")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}

// TestHoldersFixture: every process holding a socket is listed, the one
// that opened it first: a master before its worker, and the worker before
// its child caught between fork and exec; a service before the init that
// passed it its socket.
func TestHoldersFixture(t *testing.T) {
	const tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 20002 1 0 100 0 0 10 0\n" +
		"   1: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 20003 1 0 100 0 0 10 0\n" +
		"   2: 0100007F:1F92 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 20004 1 0 100 0 0 10 0\n"
	proc := func(pid, ppid int, name string) map[string]string {
		dir := strconv.Itoa(pid) + "/"
		return map[string]string{
			dir + "stat":   fmt.Sprintf("%d (%s) S %d 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 %d 0 0\n", pid, name, ppid, pid),
			dir + "status": "Uid:\t0\t0\t0\t0\n",
		}
	}
	files := map[string]string{
		"net/tcp":       tcp,
		"net/tcp6":      strings.SplitAfter(tcp, "\n")[0],
		"net/udp":       strings.SplitAfter(tcp, "\n")[0],
		"net/udp6":      strings.SplitAfter(tcp, "\n")[0],
		"stat":          "btime 1700000000\n",
		"self/fd/.keep": "",
		// 8080: a master (30), its worker (31, a higher pid: read first,
		// newest first) and the worker's child between fork and exec
		// (29: pids wrap), all holding it; a worker with a pid below its
		// master's (28).
		"30/fd/3": "-> socket:[20002]",
		"31/fd/3": "-> socket:[20002]",
		"29/fd/3": "-> socket:[20002]",
		"28/fd/5": "-> socket:[20002]",
		// 8081: opened by 33, a child of 30 that does not hold it.
		"33/fd/4": "-> socket:[20003]",
		// 8082: init's, passed to the service it started (socket activation).
		"1/fd/9":  "-> socket:[20004]",
		"50/fd/3": "-> socket:[20004]",
	}
	for _, p := range []map[string]string{proc(1, 0, "init"), proc(30, 1, "master"), proc(31, 30, "worker"),
		proc(29, 31, "worker"), proc(28, 30, "worker"), proc(33, 30, "helper"), proc(50, 1, "service")} {
		maps.Copy(files, p)
	}
	root := t.TempDir()
	writeTree(t, root, files)
	table := Table{ProcRoot: root, NoNetlink: true}
	got, err := table.List(context.Background(), Query{WithProcesses: true})
	if err != nil {
		t.Fatal(err)
	}
	pids := map[uint16][]int{}
	for _, e := range got {
		for _, p := range e.Processes {
			pids[e.Local.Port()] = append(pids[e.Local.Port()], p.PID)
		}
	}
	want := map[uint16][]int{8080: {30, 28, 31, 29}, 8081: {33}, 8082: {50, 1}}
	if !reflect.DeepEqual(pids, want) {
		t.Errorf("holders %v, want %v", pids, want)
	}
}

// TestOrderHoldersLoop: PPIDs that loop (a fixture, or PIDs reused while
// they were read) end the climb rather than hang it.
func TestOrderHoldersLoop(t *testing.T) {
	procs := []Process{{PID: 7, PPID: 8}, {PID: 8, PPID: 7}, {PID: 6, PPID: 1}}
	orderHolders(procs)
	if procs[0].PID != 6 {
		t.Errorf("order %+v, want pid 6 first", procs)
	}
}

// TestPreforkHolders: a listener this process shares with children it
// started (a pre-forking server's shape) is listed with every holder, this
// process first, though the children are newer.
func TestPreforkHolders(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	want := []int{os.Getpid()}
	for range 3 {
		child := exec.Command("sleep", "30")
		child.ExtraFiles = []*os.File{f}
		if err := child.Start(); err != nil {
			f.Close()
			testtool.Need(t, "sleep")
			t.Fatal("run sleep:", err)
		}
		defer func() { child.Process.Kill(); child.Wait() }()
		want = append(want, child.Process.Pid)
	}
	f.Close()
	slices.Sort(want[1:])
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	got, err := new(Table).List(context.Background(), Query{Protos: TCP, Port: port, WithProcesses: true})
	if err != nil || len(got) != 1 {
		t.Fatalf("%+v, %v", got, err)
	}
	var pids []int
	for _, p := range got[0].Processes {
		pids = append(pids, p.PID)
	}
	// Children this test binary forks for other tests meanwhile hold the
	// listener between fork and exec: true holders, listed after it.
	if len(pids) < len(want) || pids[0] != want[0] {
		t.Fatalf("holders %v, want %v first", pids, want)
	}
	for _, pid := range want {
		if !slices.Contains(pids, pid) {
			t.Errorf("holders %v lack pid %d", pids, pid)
		}
	}
}

func TestStatusNSInit(t *testing.T) {
	for status, want := range map[string]bool{
		"Name:\tsh\nNSpid:\t4242\t1\n":  true,  // a container's init, seen from the host
		"Name:\tsh\nNSpid:\t4242\t17\n": false, // another process in it
		"Name:\tsystemd\nNSpid:\t1\n":   false, // the host's init: PID 1 is told apart by PID
		"Name:\tsh\nNSpid:\t4242\n":     false,
		"Name:\tsh\nUid:\t0\t0\t0\t0\n": false, // before Linux 4.1
	} {
		if got := statusNSInit([]byte(status)); got != want {
			t.Errorf("statusNSInit(%q) = %v, want %v", status, got, want)
		}
	}
	if !(Process{PID: 900, Name: "systemd"}).Manager() || !(Process{PID: 1}).Manager() || (Process{PID: 900, Name: "nginx"}).Manager() {
		t.Error("Manager")
	}
}
