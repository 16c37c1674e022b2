package cli

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portkit/portkit/internal/netnstest"
	"github.com/portkit/portkit/internal/testtool"
	"github.com/portkit/portkit/knock"
	"github.com/portkit/portkit/knock/access"
	"github.com/portkit/portkit/knock/replay"
	"github.com/portkit/portkit/knock/spa"
)

// within polls cond every 20ms for up to 10s: the bound only ends a
// broken test; what is waited for takes milliseconds.
func within(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not seen within 10s: %s", what)
		}
	}
}

// runIn runs portkit with args in namespace ns and returns its exit code
// and its output.
func runIn(t *testing.T, ns string, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := -1
	netnstest.Run(t, ns, func() error {
		code = Main(context.Background(), args, Streams{In: strings.NewReader(""), Out: &out, Err: &out, Getenv: func(string) string { return "" }})
		return nil
	})
	return code, out.String()
}

// TestKnockStockKnockd: portkit knock's sequence opens the stock knockd's
// door (its command touches a file), in a namespace of the test's own.
func TestKnockStockKnockd(t *testing.T) {
	knockd := testtool.Need(t, "knockd")
	pair := netnstest.New(t, "sk")
	dir := t.TempDir()
	opened := filepath.Join(dir, "opened")
	logFile := filepath.Join(dir, "knockd.log")
	conf := filepath.Join(dir, "knockd.conf")
	err := os.WriteFile(conf, []byte(fmt.Sprintf(`[options]
	LogFile = %s
	PidFile = %s
	Interface = %s
[open]
	sequence    = 7000,8000:udp,9000
	seq_timeout = 10
	tcpflags    = syn
	command     = /usr/bin/touch %s
`, logFile, filepath.Join(dir, "knockd.pid"), pair.Target, opened)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", pair.Target, knockd, "-c", conf, "-i", pair.Target)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	within(t, "knockd listening", func() bool {
		b, _ := os.ReadFile(logFile)
		return bytes.Contains(b, []byte("listening"))
	})

	// The wrong order does not open.
	if code, out := runIn(t, pair.Scanner, "knock", netnstest.Target4.String(), "7000", "9000", "8000:udp"); code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	code, out := runIn(t, pair.Scanner, "knock", "-d", "20", netnstest.Target4.String(), "7000", "8000:udp", "9000")
	if code != 0 || !strings.Contains(out, "knocked 198.18.0.2: 7000,8000:udp,9000") {
		t.Fatalf("exit %d: %s", code, out)
	}
	within(t, "knockd's command ran", func() bool {
		_, err := os.Stat(opened)
		return err == nil
	})
	b, _ := os.ReadFile(logFile)
	if n := bytes.Count(b, []byte("OPEN SESAME")); n != 1 {
		t.Errorf("knockd opened %d times:\n%s", n, b)
	}
}

type recordingOpener struct {
	mu    sync.Mutex
	calls []string
}

func (r *recordingOpener) Open(_ context.Context, src netip.Addr, port uint16, proto string, d time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf("%v %s/%d %v", src, proto, port, d))
	return nil
}

func (r *recordingOpener) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

// startServer runs a knock.Server in the target namespace until the test
// ends.
func startServer(t *testing.T, ns string, cfg *knock.Config, now func() time.Time) *recordingOpener {
	t.Helper()
	op := &recordingOpener{}
	cache, err := replay.Open(filepath.Join(t.TempDir(), "replay"), replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := knock.NewServer(cfg, knock.Options{Opener: op, Replay: cache, Now: now,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	started, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		netnstest.Run(t, ns, func() error {
			return srv.Run(ctx, knock.RunOptions{Started: func() { close(started) }})
		})
	}()
	select {
	case <-started:
	case <-done:
		t.Fatal("the server ended before it started")
	}
	t.Cleanup(func() { cancel(); <-done; cache.Close() })
	return op
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestKnockSPAToKnockd: portkit knock --spa, from the scanner namespace,
// opens through portkit's server, for the address the route uses.
func TestKnockSPAToKnockd(t *testing.T) {
	pair := netnstest.New(t, "ks")
	keys, err := spa.Keygen(nil)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, fmt.Appendf(nil, "KEY_BASE64: %s\nHMAC_KEY_BASE64: %s\n", keys.EncryptionBase64(), keys.HMACBase64()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &knock.Config{SPAPort: knock.DefaultSPAPort, SPA: []knock.SPARule{{Stanza: access.Stanza{
		SourceAny: true, OpenPorts: []spa.ProtoPort{{Proto: "tcp", Port: 22}}, Keys: keys,
		FWAccessTimeout: 30 * time.Second, RequireSourceAddress: true,
	}}}}
	op := startServer(t, pair.Target, cfg, nil)
	code, out := runIn(t, pair.Scanner, "knock", "--spa", netnstest.Target4.String(), "--open", "22/tcp", "--key-file", keyFile, "--client-timeout", "90")
	if code != 0 || !strings.Contains(out, "for 198.18.0.1,tcp/22") {
		t.Fatalf("exit %d: %s", code, out)
	}
	within(t, "the opening", func() bool { return len(op.all()) > 0 })
	if got := op.all(); len(got) != 1 || got[0] != "198.18.0.1 tcp/22 1m30s" {
		t.Errorf("opened %q", got)
	}
}

// TestKnockTOTPToKnockd: portkit knock --secret-file knocks the sequence
// the server takes now; the same sequence replayed two steps later is
// refused (the server's clock injected).
func TestKnockTOTPToKnockd(t *testing.T) {
	pair := netnstest.New(t, "kt")
	secret := make([]byte, 32)
	for i := range secret {
		secret[i] = byte(i * 7)
	}
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("# the shared secret\n"+(spa.Keys{Encryption: secret}).EncryptionBase64()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tp := &knock.TOTP{Secret: secret, Low: 41000, High: 41999, Length: 4, Step: 30 * time.Second, Proto: knock.UDP}
	var mu sync.Mutex
	skew := time.Duration(0)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(skew) }
	cfg := &knock.Config{Doors: []*knock.Door{{Name: "totp", SourceAny: true, TOTP: tp,
		OpenPorts: []spa.ProtoPort{{Proto: "tcp", Port: 22}}, AccessTimeout: time.Minute},
		{Name: "barrier", SourceAny: true, Sequence: []knock.Knock{{Port: 5000, Proto: knock.TCP}, {Port: 5001, Proto: knock.TCP}},
			OpenPorts: []spa.ProtoPort{{Proto: "tcp", Port: 23}}, AccessTimeout: time.Minute}}}
	op := startServer(t, pair.Target, cfg, now)
	// The client's step and the server's can differ by one at a boundary;
	// the server takes the previous step too.
	code, out := runIn(t, pair.Scanner, "knock", "--secret-file", secretFile, "--totp-ports", "41000-41999", "--totp-proto", "udp", netnstest.Target4.String())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	within(t, "the opening", func() bool { return len(op.all()) > 0 })

	// A recorded sequence, a window later: nothing opens. The client
	// sends what it computes for a clock two steps behind the server's,
	// which is what a recording would hold.
	mu.Lock()
	skew = 65 * time.Second
	mu.Unlock()
	old := tp.At(time.Now())
	var ports []string
	for _, k := range old {
		ports = append(ports, k.String())
	}
	if code, out := runIn(t, pair.Scanner, append([]string{"knock", netnstest.Target4.String()}, ports...)...); code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	// A barrier: another door's sequence, knocked after. Packets are
	// handled in order, so once its opening is seen the old sequence was
	// handled too.
	if code, out := runIn(t, pair.Scanner, "knock", netnstest.Target4.String(), "5000", "5001"); code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	within(t, "the barrier's opening", func() bool { return len(op.all()) > 1 })
	if got := op.all(); len(got) != 2 || got[1] != "198.18.0.1 tcp/23 1m0s" {
		t.Errorf("opened %q: the old sequence opened too", got)
	}
}

// TestKnockSPAToStockFwknopd: `portkit knock --spa` has the stock fwknopd
// (Debian's fwknop-server, its iptables the nft-backed build) open a
// port it keeps closed, as bench/knock.sh runs it: fwknopd sniffs the
// target namespace's link with libpcap, and a default drop for new
// connections to the port sits behind the jump to its FWKNOP_INPUT chain.
// Before the knock a connect from the scanner namespace is dropped; after
// it, it is taken.
func TestKnockSPAToStockFwknopd(t *testing.T) {
	fwknopd := testtool.Need(t, "fwknopd")
	iptables := testtool.Need(t, "iptables")
	pair := netnstest.New(t, "fd")
	const port = 2222
	// The service behind the firewall.
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
			c.Close()
		}
	}()
	ipt := func(args ...string) error {
		out, err := exec.Command("ip", append([]string{"netns", "exec", pair.Target, iptables}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	drop := []string{"INPUT", "-p", "tcp", "--dport", fmt.Sprint(port), "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"}
	if err := ipt(append([]string{"-A"}, drop...)...); err != nil {
		t.Fatal(err)
	}
	// Deleting the namespace takes its rules along; this leaves it clean
	// before that, as fwknopd's own exit does for its chains.
	t.Cleanup(func() { ipt(append([]string{"-D"}, drop...)...) })

	connect := func() error { return dialFrom(t, pair.Scanner, fmt.Sprintf("%v:%d", netnstest.Target4, port)) }
	if err := connect(); err == nil {
		t.Fatal("the port took a connect before fwknopd ran: the drop rule is not in place")
	}

	keys, err := spa.Keygen(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	conf := filepath.Join(dir, "fwknopd.conf")
	accessConf := filepath.Join(dir, "access.conf")
	for file, text := range map[string]string{
		keyFile: fmt.Sprintf("KEY_BASE64: %s\nHMAC_KEY_BASE64: %s\n", keys.EncryptionBase64(), keys.HMACBase64()),
		// fwknopd's defaults otherwise: libpcap on the interface with the
		// filter "udp port 62201", iptables, its chains flushed at exit.
		conf: fmt.Sprintf("PCAP_INTF %s;\nFWKNOP_RUN_DIR %s;\nFIREWALL_EXE %s;\n", pair.Target, dir, iptables),
		accessConf: fmt.Sprintf("SOURCE 198.18.0.0/24\nOPEN_PORTS tcp/%d\nKEY_BASE64 %s\nHMAC_KEY_BASE64 %s\nFW_ACCESS_TIMEOUT 30\nREQUIRE_SOURCE_ADDRESS Y\n",
			port, keys.EncryptionBase64(), keys.HMACBase64()),
	} {
		// fwknopd wants its files readable by their owner only.
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	daemon := exec.Command("ip", "netns", "exec", pair.Target, fwknopd, "-f", "-c", conf, "-a", accessConf,
		"-d", filepath.Join(dir, "digest.cache"), "-p", filepath.Join(dir, "fwknopd.pid"))
	out, err := daemon.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	daemon.Stderr = daemon.Stdout
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	dl := readDaemonLog("fwknopd", out)
	defer func() {
		// SIGTERM: fwknopd removes its chains and rules as it exits.
		daemon.Process.Signal(syscall.SIGTERM)
		daemon.Wait()
		t.Log("fwknopd:\n" + dl.String())
	}()
	dl.wait(t, "main event loop")

	code, msg := runIn(t, pair.Scanner, "knock", "--spa", netnstest.Target4.String(), "--open", fmt.Sprintf("%d/tcp", port), "--key-file", keyFile)
	if code != 0 {
		t.Fatalf("knock --spa: exit %d: %s", code, msg)
	}
	within(t, "a connect through fwknopd's opening", func() bool { return connect() == nil })
	// The opening is fwknopd's: an accept for the scanner in its chain.
	rules, err := exec.Command("ip", "netns", "exec", pair.Target, iptables, "-S", "FWKNOP_INPUT").CombinedOutput()
	if err != nil || !strings.Contains(string(rules), "-s 198.18.0.1/32") || !strings.Contains(string(rules), fmt.Sprintf("--dport %d", port)) {
		t.Errorf("fwknopd's FWKNOP_INPUT chain holds no accept for 198.18.0.1 to %d: %v\n%s", port, err, rules)
	}
}
