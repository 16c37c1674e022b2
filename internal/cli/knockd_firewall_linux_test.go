package cli

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portkit/portkit/internal/netnstest"
	"github.com/portkit/portkit/internal/testtool"
	"github.com/portkit/portkit/knock/spa"
)

// TestKnockdOpensFirewall runs `portkit knockd` and `portkit firewall` as
// they run on a host, in the target namespace: a protected port drops the
// scanner's connects until `portkit knock --spa` from the scanner
// namespace has knockd open it in nftables; then the scanner connects.
func TestKnockdOpensFirewall(t *testing.T) {
	pair := netnstest.New(t, "kf")
	testtool.Need(t, "nft")
	const port = 2222
	// The service behind the firewall: a listener in the target namespace.
	var ln net.Listener
	netnstest.Run(t, pair.Target, func() error {
		var err error
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	})
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello\n"))
			c.Close()
		}
	}()
	if _, stderr, code := fwNS(t, pair.Target, "", "firewall", "protect", fmt.Sprintf("%d/tcp", port)); code != 0 {
		t.Fatalf("firewall protect: exit %d: %s", code, stderr)
	}
	t.Cleanup(func() { fwNS(t, pair.Target, "", "firewall", "flush") })

	connect := func() error { return dialFrom(t, pair.Scanner, fmt.Sprintf("%v:%d", netnstest.Target4, port)) }
	if err := connect(); err == nil {
		t.Fatal("a protected port took a connect before any knock")
	}

	keys, err := spa.Keygen(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, fmt.Appendf(nil, "KEY_BASE64: %s\nHMAC_KEY_BASE64: %s\n", keys.EncryptionBase64(), keys.HMACBase64()), 0o600); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "knockd.toml")
	if err := os.WriteFile(config, fmt.Appendf(nil, `
[[spa]]
source = ["198.18.0.0/24"]
open_ports = ["tcp/%d"]
key_base64 = %q
hmac_key_base64 = %q
access_timeout = "30s"
require_source_address = true
`, port, keys.EncryptionBase64(), keys.HMACBase64()), 0o600); err != nil {
		t.Fatal(err)
	}

	knockd := exec.Command("ip", "netns", "exec", pair.Target, os.Args[0], "knockd", "--config", config, "--state-dir", filepath.Join(dir, "state"))
	knockd.Env = append(os.Environ(), childEnv+"=portkit", "PORTKIT_SERVICES=")
	logs, err := knockd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := knockd.Start(); err != nil {
		t.Fatal(err)
	}
	dl := readDaemonLog("knockd", logs)
	defer func() {
		knockd.Process.Signal(syscall.SIGTERM)
		knockd.Wait()
		t.Log("knockd:\n" + dl.String())
	}()
	dl.wait(t, "listening")

	code, out := runIn(t, pair.Scanner, "knock", "--spa", netnstest.Target4.String(), "--open", fmt.Sprintf("%d/tcp", port), "--key-file", keyFile)
	if code != 0 {
		t.Fatalf("knock --spa: exit %d: %s", code, out)
	}
	within(t, "a connect through the opening", func() bool { return connect() == nil })
	// The kernel holds the opening, in portkit's table.
	if got := nftNS(t, pair.Target, "list", "table", "inet", "portkit"); !strings.Contains(got, fmt.Sprintf("198.18.0.1 . tcp . %d", port)) {
		t.Errorf("portkit's table holds no opening for 198.18.0.1 . tcp . %d:\n%s", port, got)
	}
}

// TestKnockdNeedsNetAdminAtStart runs knockd as an unprivileged user that
// keeps CAP_NET_RAW (it can read packets) but not CAP_NET_ADMIN (it could
// not open a port): knockd must say so and exit 2 at start, naming the
// capability, not listen and fail the first client who knocks right.
func TestKnockdNeedsNetAdminAtStart(t *testing.T) {
	pair := netnstest.New(t, "kc")
	keys, err := spa.Keygen(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Readable and writable by the user knockd runs as.
	dir, err := os.MkdirTemp("", "knockdcap")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	const nobody = 65534
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "knockd.toml")
	if err := os.WriteFile(config, fmt.Appendf(nil, `
[[spa]]
source = ["ANY"]
open_ports = ["tcp/22"]
key_base64 = %q
hmac_key_base64 = %q
`, keys.EncryptionBase64(), keys.HMACBase64()), 0o644); err != nil {
		t.Fatal(err)
	}
	// setpriv (util-linux) runs as root in the namespace and execs the
	// test binary as nobody with CAP_NET_RAW alone, ambient so that it
	// survives the exec. (Dropping the credentials before `ip netns exec`
	// would not do: entering a namespace needs more than CAP_SYS_ADMIN
	// here.)
	setpriv := testtool.Need(t, "setpriv")
	cmd := exec.Command("ip", "netns", "exec", pair.Target, setpriv, fmt.Sprintf("--reuid=%d", nobody), fmt.Sprintf("--regid=%d", nobody), "--clear-groups",
		"--inh-caps=-all,+net_raw", "--ambient-caps=+net_raw", "--",
		os.Args[0], "knockd", "--config", config, "--state-dir", filepath.Join(dir, "state"))
	cmd.Env = append(os.Environ(), childEnv+"=portkit", "PORTKIT_SERVICES=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("knockd without CAP_NET_ADMIN still ran after 10s:\n%s", stderr.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != ExitUsage || !strings.Contains(stderr.String(), "CAP_NET_ADMIN") {
		t.Fatalf("knockd without CAP_NET_ADMIN: exit %d, want %d naming CAP_NET_ADMIN:\n%s", code, ExitUsage, stderr.String())
	}
	t.Logf("knockd said:\n%s", stderr.String())
	if strings.Contains(stderr.String(), "listening") {
		t.Errorf("knockd said it was listening before it failed:\n%s", stderr.String())
	}
}
