//go:build unix

package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestForwardReloadAndStop runs `portkit forward --config` as a process:
// SIGHUP brings in a new rule while a live connection through a changed
// rule carries on, a bad file changes nothing, and SIGTERM drains and
// exits 0.
func TestForwardReloadAndStop(t *testing.T) {
	echo := echoListener(t)
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.toml")
	portA, portB := freeTCPPort(t), freeTCPPort(t)
	write := func(body string) {
		if err := os.WriteFile(rules, []byte("drain_timeout = \"300ms\"\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ruleA := fmt.Sprintf("[[rule]]\nname = \"a\"\nlisten = \"127.0.0.1:%d\"\ntargets = [%q]\n", portA, echo)
	ruleB := fmt.Sprintf("[[rule]]\nname = \"b\"\nlisten = \"127.0.0.1:%d\"\ntargets = [%q]\n", portB, echo)
	write(ruleA)

	var stderr lockedBuffer
	cmd := exec.Command(os.Args[0], "forward", "--config", rules)
	cmd.Env = append(os.Environ(), childEnv+"=portkit")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	addrA := fmt.Sprintf("127.0.0.1:%d", portA)
	addrB := fmt.Sprintf("127.0.0.1:%d", portB)
	waitListening(t, addrA, &stderr)

	live, err := net.Dial("tcp", addrA)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	exchange := func(what string) {
		t.Helper()
		live.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(live, what); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if _, err := io.ReadFull(live, make([]byte, len(what))); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, stderr.String())
		}
	}
	exchange("before")

	write(strings.Replace(ruleA, "targets", "max_conns = 50\ntargets", 1) + ruleB)
	cmd.Process.Signal(syscall.SIGHUP)
	waitListening(t, addrB, &stderr)
	exchange("after reload")

	write(ruleA + "[[rule]]\nlisten = \"nonsense\"\ntargets = []\n")
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, &stderr, "reload failed")
	if c, err := net.Dial("tcp", addrB); err != nil {
		t.Fatalf("a bad reload stopped rule b: %v", err)
	} else {
		c.Close()
	}
	exchange("after bad reload")

	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
	// Cut by the drain: a reset, not an end that looks complete.
	if n, err := live.Read(make([]byte, 1)); n != 0 || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("live connection after the drain ran out: read %d, %v; want ECONNRESET", n, err)
	}
	log := stderr.String()
	if strings.Contains(log, "canceled") {
		t.Errorf("Go internals in the log:\n%s", log)
	}
	for _, want := range []string{"msg=reloaded", `rules.toml:`, "msg=stopping signal=terminated", "end=shutdown", "msg=stopped"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func echoListener(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go echoAll(l)
	return l.Addr().String()
}

func freeTCPPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitListening(t *testing.T, addr string, log *lockedBuffer) {
	t.Helper()
	waitLog(t, log, "addr="+addr)
}

func waitLog(t *testing.T, log *lockedBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(log.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", want, log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
