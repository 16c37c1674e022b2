package knock

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portkit/portkit/internal/netnstest"
	"github.com/portkit/portkit/internal/testtool"
	"github.com/portkit/portkit/knock/access"
	"github.com/portkit/portkit/knock/replay"
	"github.com/portkit/portkit/knock/spa"
)

// syncBuffer is a log sink the test reads while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// eventually polls cond every 20ms for up to 10s: what is waited for is
// a packet crossing a veth pair, which takes microseconds; the bound is
// only there so that a broken test ends.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not seen within 10s: %s", what)
		}
	}
}

// netnsServer runs a Server in the target namespace of a fresh pair,
// with a fake Opener, until the test ends.
type netnsServer struct {
	seen   int // log bytes already matched by waitLog
	pair   netnstest.Pair
	opener *fakeOpener
	log    *syncBuffer
	keys   spa.Keys
	state  string
}

func startNetnsServer(t *testing.T, pair netnstest.Pair, state string, keys spa.Keys, cfg *Config) *netnsServer {
	t.Helper()
	return startNetnsServerWith(t, pair, state, keys, cfg, nil)
}

// startNetnsServerWith is startNetnsServer with opener in place of the
// fake one (ns.opener), when it is not nil.
func startNetnsServerWith(t *testing.T, pair netnstest.Pair, state string, keys spa.Keys, cfg *Config, opener Opener) *netnsServer {
	t.Helper()
	ns := &netnsServer{pair: pair, opener: &fakeOpener{}, log: &syncBuffer{}, keys: keys, state: state}
	if opener == nil {
		opener = ns.opener
	}
	cache, err := replay.Open(filepath.Join(state, "knockd.replay"), replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(cfg, Options{Opener: opener, Logger: slog.New(slog.NewTextHandler(ns.log, nil)), Replay: cache})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		var runErr error
		netnstest.Run(t, pair.Target, func() error {
			runErr = srv.Run(ctx, RunOptions{Started: func() { close(started) }})
			return nil
		})
		done <- runErr
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("server: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
		cache.Close()
	})
	return ns
}

func spaConfig(keys spa.Keys) *Config {
	return &Config{
		SPAPort: DefaultSPAPort,
		SPA: []SPARule{{Stanza: access.Stanza{
			Source:          []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")},
			OpenPorts:       []spa.ProtoPort{{Proto: "tcp", Port: 22}},
			Keys:            keys,
			FWAccessTimeout: 45 * time.Second,
		}}},
		Doors: []*Door{{Name: "ssh", SourceAny: true, Sequence: []Knock{{7000, TCP}, {8000, UDP}, {9000, TCP}},
			SeqTimeout: 10 * time.Second, OpenPorts: []spa.ProtoPort{{Proto: "tcp", Port: 22}}, AccessTimeout: time.Minute}},
	}
}

// inScanner runs name with args in the scanner namespace.
func (ns *netnsServer) inScanner(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.pair.Scanner, name}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// sendUDP sends payload from the scanner namespace to the SPA port.
func (ns *netnsServer) sendUDP(t *testing.T, payload []byte) {
	t.Helper()
	netnstest.Run(t, ns.pair.Scanner, func() error {
		c, err := net.Dial("udp", net.JoinHostPort(netnstest.Target4.String(), "62201"))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(payload)
		return err
	})
}

func (ns *netnsServer) fwknop(t *testing.T, dir string, keys spa.Keys, extra ...string) {
	t.Helper()
	args := []string{"--no-rc-file", "--no-home-dir", "-E", filepath.Join(dir, "run"),
		"-D", netnstest.Target4.String(), "-a", netnstest.Scanner4.String(), "-U", "alice", "--use-hmac",
		"--key-base64-rijndael", keys.EncryptionBase64(), "--key-base64-hmac", keys.HMACBase64()}
	ns.inScanner(t, "fwknop", append(args, extra...)...)
}

// waitLog waits for a log line with every one of the parts, after the
// line the last waitLog matched.
func (ns *netnsServer) waitLog(t *testing.T, parts ...string) {
	t.Helper()
	eventually(t, strings.Join(parts, " "), func() bool {
		log := ns.log.String()
		for off := ns.seen; off < len(log); {
			l, _, _ := strings.Cut(log[off:], "\n")
			off += len(l) + 1
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(l, p)
			}
			if ok {
				ns.seen = off
				return true
			}
		}
		return false
	})
}

// TestNetnsStockFwknop: packets from the stock fwknop client, sent across
// a veth pair, open through the Opener; replays (after a restart too),
// stale packets, wrong keys and ports the stanza does not allow are
// refused and logged with the source address.
func TestNetnsStockFwknop(t *testing.T) {
	testtool.Need(t, "fwknop")
	pair := netnstest.New(t, "kf")
	keys := testKeys(t)
	state, dir := t.TempDir(), t.TempDir()
	ns := startNetnsServer(t, pair, state, keys, spaConfig(keys))
	src := "src=" + netnstest.Scanner4.String()

	saved := filepath.Join(dir, "pkt")
	ns.fwknop(t, dir, keys, "-A", "tcp/22", "-B", saved)
	ns.waitLog(t, "msg=accepted", "kind=spa", src, "allow=198.18.0.1", "ports=tcp/22", "user=alice")
	if got := ns.opener.takeOpened(1); len(got) != 1 || got[0] != "198.18.0.1 tcp/22 45s" {
		t.Fatalf("opened %q", got)
	}
	pkt, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	pkt = bytes.TrimSpace(pkt)
	ns.sendUDP(t, pkt)
	ns.waitLog(t, "msg=refused", src, "reason=replay")

	ns.fwknop(t, dir, keys, "-A", "tcp/22", "--time-offset-minus", "300sec")
	ns.waitLog(t, "msg=refused", src, "reason=stale")
	ns.fwknop(t, dir, testKeys(t), "-A", "tcp/22")
	ns.waitLog(t, "msg=refused", src, `reason="bad HMAC"`)
	ns.fwknop(t, dir, keys, "-A", "tcp/23")
	ns.waitLog(t, "msg=refused", src, `reason="not allowed"`, "tcp/23")
	ns.fwknop(t, dir, keys, "-A", "tcp/22", "-f", "300")
	ns.waitLog(t, "msg=accepted", src, "timeout_ms=300000")

	flipped := bytes.Clone(pkt)
	if i := len(flipped) / 3; flipped[i] == 'A' {
		flipped[i] = 'B'
	} else {
		flipped[i] = 'A'
	}
	ns.sendUDP(t, flipped)
	ns.waitLog(t, "msg=refused", src, `reason="bad HMAC"`)
	ns.sendUDP(t, pkt[:120])
	ns.waitLog(t, "msg=refused", src, `reason="bad packet"`, "fewer than 140")
	// Bigger than the link's MTU: the first fragment arrives, and its UDP
	// header tells the whole size.
	ns.sendUDP(t, bytes.Repeat([]byte("A"), 1600))
	ns.waitLog(t, "msg=refused", src, `reason="bad packet"`, "1600 bytes, more than 1500")
	ns.sendUDP(t, bytes.Repeat([]byte("A"), 1450))
	ns.waitLog(t, "msg=refused", src, `reason="bad HMAC"`)
	if got := ns.opener.takeOpened(1); len(got) != 1 {
		t.Errorf("opened %q, want the one client-timeout packet", got)
	}

	// A restarted server, with the same state directory: still a replay.
	t.Run("restart", func(t *testing.T) {
		pair2 := netnstest.New(t, "kr")
		ns2 := startNetnsServer(t, pair2, state, keys, spaConfig(keys))
		ns2.sendUDP(t, pkt)
		ns2.waitLog(t, "msg=refused", src, "reason=replay")
		if got := ns2.opener.take(); len(got) != 0 {
			t.Errorf("opened %q", got)
		}
	})
}

// stuckOpener is an Opener whose first Open waits until release is
// closed, as a firewall (or a disk, for the replay cache) that is slow to
// answer does.
type stuckOpener struct {
	fakeOpener
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (o *stuckOpener) Open(ctx context.Context, src netip.Addr, port uint16, proto string, d time.Duration) error {
	o.once.Do(func() {
		close(o.entered)
		<-o.release
	})
	return o.fakeOpener.Open(ctx, src, port, proto, d)
}

// TestNetnsReaderGoesOnWhileOpening: while an accepted packet's opening
// waits for the firewall, the server goes on reading and checking
// packets (knockbench's flood found the kernel dropping packets, valid ones
// among them, while the reader waited on fsync and netlink); the opening
// is made once the firewall answers, and the packets behind it after.
func TestNetnsReaderGoesOnWhileOpening(t *testing.T) {
	pair := netnstest.New(t, "kw")
	keys := testKeys(t)
	opener := &stuckOpener{entered: make(chan struct{}), release: make(chan struct{})}
	ns := startNetnsServerWith(t, pair, t.TempDir(), keys, spaConfig(keys), opener)
	released := false
	release := func() {
		if !released {
			released = true
			close(opener.release)
		}
	}
	t.Cleanup(release) // before the server stops: cleanups run last first

	encode := func(allow string) []byte {
		pkt, err := spa.Encode(spa.Message{Username: "alice", Timestamp: time.Now(), Type: spa.AccessMsg, Message: allow + ",tcp/22"}, keys, nil)
		if err != nil {
			t.Fatal(err)
		}
		return pkt
	}
	ns.sendUDP(t, encode("198.18.0.1"))
	select {
	case <-opener.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first opening was not asked for within 10s")
	}
	// The firewall has not answered: junk is still read and refused.
	ns.sendUDP(t, bytes.Repeat([]byte("A"), 200))
	ns.waitLog(t, "msg=refused", `reason="bad HMAC"`)
	ns.sendUDP(t, encode("198.18.0.1"))
	release()
	eventually(t, "both openings", func() bool {
		opener.mu.Lock()
		defer opener.mu.Unlock()
		return len(opener.calls) == 2
	})
}

// TestNetnsStockKnock: the stock knock client's sequence opens; in the
// wrong order it is refused and logged.
func TestNetnsStockKnock(t *testing.T) {
	testtool.Need(t, "knock")
	pair := netnstest.New(t, "kk")
	ns := startNetnsServer(t, pair, t.TempDir(), testKeys(t), spaConfig(testKeys(t)))
	src := "src=" + netnstest.Scanner4.String()

	ns.inScanner(t, "knock", netnstest.Target4.String(), "7000", "8000:udp", "9000")
	ns.waitLog(t, "msg=accepted", "kind=sequence", src, "door=ssh")
	if got := ns.opener.takeOpened(1); len(got) != 1 || got[0] != "198.18.0.1 tcp/22 1m0s" {
		t.Fatalf("opened %q", got)
	}
	ns.inScanner(t, "knock", netnstest.Target4.String(), "7000", "9000", "8000:udp")
	ns.waitLog(t, "msg=refused", "kind=sequence", src, `reason="wrong sequence"`, "knocks=7000,9000")
	// A port of no sequence is not watched (as knockd, whose filter
	// holds the sequences' ports), so it neither knocks nor breaks.
	ns.inScanner(t, "knock", netnstest.Target4.String(), "7000", "1234", "8000:udp", "9000")
	ns.waitLog(t, "msg=accepted", "kind=sequence", src, "door=ssh")
	ns.opener.takeOpened(1)
	// IPv6.
	ns.inScanner(t, "knock", "-6", netnstest.Target6.String(), "7000", "8000:udp", "9000")
	ns.waitLog(t, "msg=accepted", "kind=sequence", "src="+netnstest.Scanner6.String())
	if got := ns.opener.takeOpened(1); len(got) != 1 || got[0] != "2001:2::1 tcp/22 1m0s" {
		t.Fatalf("opened %q", got)
	}
}
