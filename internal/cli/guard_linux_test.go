//go:build linux

package cli

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portkit/portkit/internal/netnstest"
)

// waitFor waits until f is true, or fails after a bound.
func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if f() {
			return
		}
	}
	t.Fatalf("no %s after 15s", what)
}

// TestGuardReloadNetns: SIGHUP reloads the config file all or nothing. A
// bad file changes nothing (its low threshold does not apply); a good
// one takes effect for the next probes. guard watches lo in a namespace
// of its own, so no other traffic reaches it.
func TestGuardReloadNetns(t *testing.T) {
	pair := netnstest.New(t, "h")
	dir := t.TempDir()
	conf := filepath.Join(dir, "guard.toml")
	write := func(s string) {
		if err := os.WriteFile(conf, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const base = "interfaces = [\"lo\"]\nallow_local = false\nanswer_wait = \"200ms\"\n"
	write(base + "[short]\nthreshold = 100\n")

	var out, errb lockedBuffer
	s := Streams{Out: &out, Err: &errb, Getenv: func(string) string { return "" }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		// guard opens its capture in the namespace: this thread's.
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+pair.Target, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Setns(fd, unix.CLONE_NEWNET)
			unix.Close(fd)
		}
		if err != nil {
			t.Error(err)
			done <- -1
			return
		}
		done <- Main(ctx, []string{"guard", "--config", conf, "--log-format", "json", "--metrics", "127.0.0.1:0"}, s)
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 && code != ExitInterrupted {
			t.Errorf("exit %d: %s", code, errb.String())
		}
	}()
	waitFor(t, "watching", func() bool { return strings.Contains(errb.String(), `"msg":"watching"`) })

	// probe connects to n closed ports on the namespace's lo.
	probe := func(n int) {
		netnstest.Run(t, pair.Target, func() error {
			for range n {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					return err
				}
				addr := l.Addr().String()
				l.Close()
				if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
					c.Close()
				}
			}
			return nil
		})
	}

	write(base + "[short]\nthreshold = 3\nbogus = 1\n")
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitFor(t, "reload failure", func() bool { return strings.Contains(errb.String(), "reload failed") })
	probe(5)
	waitFor(t, "5 attempts", func() bool { return strings.Count(out.String(), `"event":"attempt"`) >= 5 })
	if strings.Contains(out.String(), `"event":"scan"`) {
		t.Fatalf("a bad file's threshold applied:\n%s", out.String())
	}

	write(base + "[short]\nthreshold = 3\n")
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitFor(t, "reload", func() bool { return strings.Contains(errb.String(), `"msg":"reloaded"`) })
	probe(5)
	waitFor(t, "a scan", func() bool { return strings.Contains(out.String(), `"event":"scan"`) })
	// The scan is found at its third port: the metrics once all ten
	// attempts are decided.
	waitFor(t, "10 attempts", func() bool { return strings.Count(out.String(), `"event":"attempt"`) >= 10 })

	// --metrics serves the counters, in the namespace guard runs in.
	m := regexp.MustCompile(`"msg":"metrics","addr":"([^"]+)"`).FindStringSubmatch(errb.String())
	if m == nil {
		t.Fatalf("no metrics address logged: %s", errb.String())
	}
	var body string
	netnstest.Run(t, pair.Target, func() error {
		c, err := net.DialTimeout("tcp", m[1], 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /metrics HTTP/1.0\r\n\r\n")
		b, err := io.ReadAll(c)
		body = string(b)
		return err
	})
	for _, re := range []string{`(?m)^portkit_guard_scans_total\{type="connect"\} 1$`, `(?m)^portkit_guard_refused_total 10$`,
		`(?m)^portkit_guard_ring_dropped_total 0$`, `(?m)^portkit_guard_sources_tracked 1$`} {
		if !regexp.MustCompile(re).MatchString(body) {
			t.Errorf("metrics without %s:\n%s", re, body)
		}
	}
}
