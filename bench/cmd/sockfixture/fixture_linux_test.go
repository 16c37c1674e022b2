package main

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// asMain makes the test binary behave as sockfixture, so that the tests and
// the children the fixture re-executes run the code under test.
const asMain = "SOCKFIXTURE_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		os.Exit(run(os.Args[1:], os.Stderr))
	}
	os.Exit(m.Run())
}

// startFixture runs a small fixture on the host's loopback and returns it
// with its ports once it is ready.
func startFixture(t *testing.T, extra ...string) (*exec.Cmd, string, []int) {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	args := append([]string{"-procs", "3", "-conns", "2", "-ready", ready, "-max-lifetime", "1m"}, extra...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), asMain+"=1")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, err := os.ReadFile(ready)
		if err == nil {
			var ports []int
			for f := range strings.FieldsSeq(string(data)) {
				p, err := strconv.Atoi(f)
				if err != nil {
					t.Fatalf("ready file: %q", data)
				}
				ports = append(ports, p)
			}
			if len(ports) != 3 {
				t.Fatalf("ready file lists %d ports, want 3: %q", len(ports), data)
			}
			return cmd, ready, ports
		}
		if time.Now().After(deadline) {
			t.Fatal("fixture not ready within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dial(port int) error {
	c, err := net.DialTimeout("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

// waitClosed waits until nothing listens on any of ports any more.
func waitClosed(t *testing.T, ports []int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range ports {
		for dial(p) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("port %d still listening 10s after the fixture stopped", p)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func TestFixtureStopsOnSIGTERM(t *testing.T) {
	cmd, ready, ports := startFixture(t)
	for _, p := range ports {
		if err := dial(p); err != nil {
			t.Errorf("port %d: %v", p, err)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("fixture exited with %v, want 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fixture still running 10s after SIGTERM")
	}
	// Children are reaped before the parent exits, so nothing may linger.
	for _, p := range ports {
		if err := dial(p); err == nil {
			t.Errorf("port %d still listening after the fixture exited", p)
		}
	}
	if _, err := os.Stat(ready); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ready file left behind: %v", err)
	}
}

// Killed outright, the parent cannot clean up: its children must go by
// themselves (EOF on the hold pipe; Pdeathsig, should one be stuck elsewhere).
func TestChildrenDieWithParent(t *testing.T) {
	cmd, _, ports := startFixture(t)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	waitClosed(t, ports)
}

// TestBusyChild: with -busy, one more child holds that many accepted
// connections besides its listener, the parent their client ends, and the
// ready file lists only the other children's ports.
func TestBusyChild(t *testing.T) {
	const busy = 50
	cmd, _, ports := startFixture(t, "-busy", strconv.Itoa(busy))
	parent := cmd.Process.Pid
	if n := socketCount(t, parent); n < busy {
		t.Errorf("parent holds %d sockets, want at least %d", n, busy)
	}
	var counts []int
	for _, pid := range childrenOf(t, parent) {
		counts = append(counts, socketCount(t, pid))
	}
	slices.Sort(counts)
	// Three children with a listener and 2 connections to themselves (5
	// sockets), the busy one with a listener and 50 accepted.
	if want := []int{5, 5, 5, 1 + busy}; !slices.Equal(counts, want) {
		t.Errorf("children hold %v sockets, want %v", counts, want)
	}
	if len(ports) != 3 {
		t.Errorf("ready file lists %d ports, want the 3 regular children's", len(ports))
	}
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited
		}
		// pid (comm) state ppid …: comm may hold spaces, so from the last ')'.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// socketCount counts the sockets process pid has open.
func socketCount(t *testing.T, pid int) int {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if link, err := os.Readlink(dir + "/" + e.Name()); err == nil && strings.HasPrefix(link, "socket:") {
			n++
		}
	}
	return n
}
