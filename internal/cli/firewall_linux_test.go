package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/portkit/portkit/internal/netnstest"
	"github.com/portkit/portkit/internal/testtool"
)

// fwNS runs portkit in network namespace ns as a child process (`ip netns
// exec` puts it there before it starts), as uid when not "".
func fwNS(t *testing.T, ns, uid string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, os.Args[0]}, args...)...)
	cmd.Env = append(os.Environ(), childEnv+"=portkit", "PORTKIT_SERVICES=")
	if uid != "" {
		cmd.Env = append(cmd.Env, "PORTKIT_TEST_UID="+uid)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.Run()
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

func nftNS(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns, "nft"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("nft %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestFirewallCLIInNamespace drives `portkit firewall` as root in the
// target namespace: what it says, its exit codes, and what the kernel then
// holds; flush leaves another table as it was.
func TestFirewallCLIInNamespace(t *testing.T) {
	p := netnstest.New(t, "fc")
	testtool.Need(t, "nft")
	ns := p.Target
	t.Cleanup(func() { fwNS(t, ns, "", "firewall", "flush") })
	run := func(wantCode int, args ...string) (string, string) {
		t.Helper()
		stdout, stderr, code := fwNS(t, ns, "", args...)
		if code != wantCode {
			t.Fatalf("portkit %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, wantCode, stdout, stderr)
		}
		return stdout, stderr
	}
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader("table inet other {\n\tchain input { type filter hook input priority 0; policy accept; }\n}\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v\n%s", err, out)
	}
	other := nftNS(t, ns, "-j", "list", "table", "inet", "other")

	_, stderr := run(ExitNegative, "firewall", "ls")
	if !strings.Contains(stderr, "no table inet portkit") {
		t.Errorf("ls before anything: %q", stderr)
	}
	_, stderr = run(ExitOK, "firewall", "protect", "ssh", "53/udp")
	if !strings.Contains(stderr, "protected 22/tcp") || !strings.Contains(stderr, "protected 53/udp") {
		t.Errorf("protect: %q", stderr)
	}
	run(ExitOK, "firewall", "open", "22/tcp", "--from", netnstest.Scanner4.String(), "--for", "10m")
	run(ExitOK, "firewall", "block", "198.18.0.9", "--for", "1h")
	if rs := nftNS(t, ns, "list", "table", "inet", "portkit"); !strings.Contains(rs, "198.18.0.1 . tcp . 22 timeout 10m") ||
		!strings.Contains(rs, "tcp . 22") || !strings.Contains(rs, "udp . 53") || !strings.Contains(rs, "198.18.0.9 timeout 1h") {
		t.Errorf("the kernel's table after protect, open and block:\n%s", rs)
	}

	stdout, _ := run(ExitOK, "firewall", "ls", "--json")
	var ls firewallLsRow
	if err := json.Unmarshal([]byte(stdout), &ls); err != nil {
		t.Fatalf("ls --json: %v\n%s", err, stdout)
	}
	if !ls.Present || ls.Table != "inet portkit" || len(ls.Protected) != 2 || len(ls.Openings) != 1 || len(ls.Blocked) != 1 ||
		ls.Openings[0].Source != "198.18.0.1" || ls.Openings[0].Service != "ssh" || ls.Openings[0].TimeoutMS != 600000 ||
		ls.Openings[0].LeftMS <= 0 || ls.Blocked[0].Source != "198.18.0.9" {
		t.Errorf("ls --json:\n%s", stdout)
	}
	stdout, _ = run(ExitOK, "firewall", "ls")
	for _, want := range []string{"protected", "22/tcp", "ssh", "open", "198.18.0.1", "of 10m0s", "blocked", "198.18.0.9"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("ls: no %q in\n%s", want, stdout)
		}
	}
	stdout, _ = run(ExitOK, "firewall", "status")
	if !strings.Contains(stdout, "table inet portkit: in place") || !strings.Contains(stdout, "nothing on the input hook drops") {
		t.Errorf("status:\n%s", stdout)
	}

	// T: and U: in a list set each port's protocol.
	_, stderr = run(ExitOK, "firewall", "protect", "T:8000,U:8001")
	if !strings.Contains(stderr, "protected 8000/tcp") || !strings.Contains(stderr, "protected 8001/udp") {
		t.Errorf("protect T:8000,U:8001: %q", stderr)
	}

	_, stderr = run(ExitPartial, "firewall", "close", "22/tcp", "80/tcp", "--from", "198.18.0.1")
	if !strings.Contains(stderr, "closed 22/tcp to 198.18.0.1") || !strings.Contains(stderr, "80/tcp from 198.18.0.1: was not open") {
		t.Errorf("close 22 80: %q", stderr)
	}
	run(ExitNegative, "firewall", "unprotect", "8080")
	run(ExitNegative, "firewall", "unblock", "198.18.0.10")

	_, stderr = run(ExitOK, "firewall", "flush")
	if !strings.Contains(stderr, "removed table inet portkit") {
		t.Errorf("flush: %q", stderr)
	}
	if after := nftNS(t, ns, "-j", "list", "table", "inet", "other"); after != other {
		t.Errorf("flush changed table inet other:\nbefore %s\nafter  %s", other, after)
	}
	if rs := nftNS(t, ns, "list", "ruleset"); strings.Contains(rs, "portkit") {
		t.Errorf("portkit's table after flush:\n%s", rs)
	}
}

// TestFirewallWithoutCapability: as an ordinary user portkit says which
// capability it lacks, and exits 2, whatever the command.
func TestFirewallWithoutCapability(t *testing.T) {
	p := netnstest.New(t, "fu")
	for _, args := range [][]string{
		{"firewall", "ls"},
		{"firewall", "protect", "22/tcp"},
		{"firewall", "open", "22/tcp", "--from", "198.18.0.1", "--for", "30s"},
		{"firewall", "status"},
		{"firewall", "flush"},
	} {
		stdout, stderr, code := fwNS(t, p.Target, "65534", args...)
		if code != ExitUsage || stdout != "" || !strings.Contains(stderr, "needs CAP_NET_ADMIN") {
			t.Errorf("portkit %s as uid 65534: exit %d, stdout %q, stderr %q; want exit 2 naming CAP_NET_ADMIN", strings.Join(args, " "), code, stdout, stderr)
		}
		if strings.Contains(stderr, "netlink") || strings.Contains(stderr, "operation not permitted") {
			t.Errorf("portkit %s as uid 65534 shows the system's words: %q", strings.Join(args, " "), stderr)
		}
	}
}
