package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portkit/portkit/internal/testtool"
)

// TestHiddenProcessInNamespace runs, in a network namespace of its own, a
// listener as uid 65534 and portkit as uid 65533: portkit cannot see the
// other user's process, and must say so rather than print nothing. As root
// it sees the process.
func TestHiddenProcessInNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes a network namespace and runs processes as other users")
	}
	testtool.Need(t, "ip")
	ns := fmt.Sprintf("pkhidden%d", os.Getpid())
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	ip("-n", ns, "link", "set", "lo", "up")

	// `ip netns exec` replaces itself with the child, so its pid is the
	// listener's.
	srv := exec.Command("ip", "netns", "exec", ns, os.Args[0])
	srv.Env = append(os.Environ(), childEnv+"=serve", "PORTKIT_TEST_UID=65534")
	out, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal("listener as uid 65534:", err)
	}
	port := strings.TrimSpace(line)

	portkit := func(uid string, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		cmd := exec.Command("ip", append([]string{"netns", "exec", ns, os.Args[0]}, args...)...)
		cmd.Env = append(os.Environ(), childEnv+"=portkit", "PORTKIT_TEST_UID="+uid, "PORTKIT_SERVICES=")
		if uid == "" {
			cmd.Env = append(os.Environ(), childEnv+"=portkit", "PORTKIT_SERVICES=")
		}
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		cmd.Run()
		return o.String(), e.String(), cmd.ProcessState.ExitCode()
	}

	stdout, stderr, code := portkit("65533", "who", port)
	if code != ExitOK || !strings.Contains(stdout, "(hidden)") || !strings.Contains(stderr, "run as root (sudo) to see it") {
		t.Errorf("who %s as uid 65533: exit %d\nstdout:\n%s\nstderr:\n%s\nwant the socket, its owner and the hidden-process note", port, code, stdout, stderr)
	}
	if strings.Contains(stdout, strconv.Itoa(srv.Process.Pid)) {
		t.Errorf("uid 65533 saw the pid of uid 65534's process:\n%s", stdout)
	}
	stdout, _, _ = portkit("65533", "ls", "--port", port, "--json")
	if !strings.Contains(stdout, `"hidden": true`) || !strings.Contains(stdout, `"uid": 65534`) {
		t.Errorf("ls --json as uid 65533:\n%s\nwant hidden and uid 65534", stdout)
	}

	// kill cannot signal a process it cannot see: it says so at once
	// instead of waiting out its timeout.
	start := time.Now()
	stdout, _, code = portkit("65533", "kill", port, "--timeout", "20s")
	if code != ExitNegative || !strings.Contains(stdout, "still held; nothing signalled") ||
		!strings.Contains(stdout, "uid 65534 is hidden; run as root") || time.Since(start) > 10*time.Second {
		t.Errorf("kill %s as uid 65533: exit %d after %v\n%s\nwant exit 1 at once, nothing signalled, run as root", port, code, time.Since(start), stdout)
	}

	stdout, stderr, code = portkit("", "who", port)
	if code != ExitOK || !strings.Contains(stdout, strconv.Itoa(srv.Process.Pid)) || strings.Contains(stderr, "hidden") {
		t.Errorf("who %s as root: exit %d\nstdout:\n%s\nstderr:\n%s\nwant pid %d", port, code, stdout, stderr, srv.Process.Pid)
	}

}
