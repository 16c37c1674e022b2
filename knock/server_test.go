package knock

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portkit/portkit/knock/access"
	"github.com/portkit/portkit/knock/replay"
	"github.com/portkit/portkit/knock/spa"
)

// fakeOpener records the openings asked for.
type fakeOpener struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeOpener) Open(_ context.Context, src netip.Addr, port uint16, proto string, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("%v %s/%d %v", src, proto, port, d))
	return nil
}

// takeOpened waits for the openings a logged "accepted" announces: the
// server logs it before it calls the opener, so a test that saw the line
// may look before the call. It returns the calls once there are want, or
// what there is after 10 seconds.
func (f *fakeOpener) takeOpened(want int) []string {
	var got []string
	for deadline := time.Now().Add(10 * time.Second); ; {
		got = append(got, f.take()...)
		if len(got) >= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *fakeOpener) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// ipv4 builds an IPv4 packet from src to dst carrying l4 of protocol proto.
func ipv4(src, dst netip.Addr, proto Proto, l4 []byte) []byte {
	b := make([]byte, 20, 20+len(l4))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(20+len(l4)))
	b[8] = 64
	b[9] = byte(proto)
	s, d := src.As4(), dst.As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	return append(b, l4...)
}

func ipv6(src, dst netip.Addr, proto Proto, l4 []byte) []byte {
	b := make([]byte, 40, 40+len(l4))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(l4)))
	b[6] = byte(proto)
	b[7] = 64
	s, d := src.As16(), dst.As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	return append(b, l4...)
}

func udp(dport uint16, payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(b[0:], 40000)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(8+len(payload)))
	return append(b, payload...)
}

func tcp(dport uint16, flags byte) []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint16(b[0:], 40000)
	binary.BigEndian.PutUint16(b[2:], dport)
	b[12] = 5 << 4
	b[13] = flags
	return b
}

const (
	synFlag = 0x02
	ackFlag = 0x10
)

var (
	client = netip.MustParseAddr("198.18.0.1")
	server = netip.MustParseAddr("198.18.0.2")
	other  = netip.MustParseAddr("198.18.0.7")
)

type testServer struct {
	*Server
	opener *fakeOpener
	log    *bytes.Buffer
	now    time.Time
	keys   spa.Keys
	cache  *replay.Cache
}

func testKeys(t *testing.T) spa.Keys {
	k, err := spa.Keygen(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newTestServer(t *testing.T, stateDir string, keys spa.Keys, mod func(*Config)) *testServer {
	t.Helper()
	ts := &testServer{opener: &fakeOpener{}, log: &bytes.Buffer{}, now: time.Unix(1_800_000_000, 0), keys: keys}
	cfg := &Config{
		SPAPort: DefaultSPAPort,
		SPA: []SPARule{{Stanza: access.Stanza{
			Source:          []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")},
			OpenPorts:       []spa.ProtoPort{{Proto: "tcp", Port: 22}},
			Keys:            keys,
			FWAccessTimeout: 30 * time.Second,
		}}},
		Doors: []*Door{{Name: "ssh", SourceAny: true, Sequence: []Knock{{7000, TCP}, {8000, UDP}, {9000, TCP}},
			OpenPorts: []spa.ProtoPort{{Proto: "tcp", Port: 22}}, AccessTimeout: time.Minute}},
	}
	if mod != nil {
		mod(cfg)
	}
	clock := func() time.Time { return ts.now }
	cache, err := replay.Open(filepath.Join(stateDir, "replay"), replay.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	ts.cache = cache
	s, err := NewServer(cfg, Options{Opener: ts.opener, Logger: slog.New(slog.NewTextHandler(ts.log, nil)), Replay: cache, Now: clock, Metrics: NewMetrics()})
	if err != nil {
		t.Fatal(err)
	}
	ts.Server = s
	return ts
}

func (ts *testServer) spaPacket(t *testing.T, m spa.Message, keys spa.Keys) []byte {
	t.Helper()
	if m.Timestamp.IsZero() {
		m.Timestamp = ts.now
	}
	if m.Username == "" {
		m.Username = "alice"
	}
	if m.Message == "" {
		m.Message = "198.18.0.1,tcp/22"
		if m.Type == spa.CommandMsg {
			m.Message = "198.18.0.1,touch /tmp/x"
		}
	}
	pkt, err := spa.Encode(m, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pkt
}

// expect feeds pkt from src and checks the openings and the log line.
func (ts *testServer) expect(t *testing.T, src netip.Addr, pkt []byte, opens []string, logWant string) {
	t.Helper()
	ts.log.Reset()
	ts.HandlePacket(context.Background(), ipv4(src, server, UDP, udp(DefaultSPAPort, pkt)))
	got := ts.opener.take()
	if strings.Join(got, ";") != strings.Join(opens, ";") {
		t.Errorf("opened %q, want %q", got, opens)
	}
	line := ts.log.String()
	if !strings.Contains(line, logWant) || !strings.Contains(line, "src="+src.String()) {
		t.Errorf("log %q, want %q and src=%v", line, logWant, src)
	}
}

func TestServerSPA(t *testing.T) {
	keys := testKeys(t)
	dir := t.TempDir()
	ts := newTestServer(t, dir, keys, nil)
	access := spa.Message{Type: spa.AccessMsg}

	pkt := ts.spaPacket(t, access, keys)
	ts.expect(t, client, pkt, []string{"198.18.0.1 tcp/22 30s"}, "msg=accepted kind=spa src=198.18.0.1 allow=198.18.0.1 ports=tcp/22 timeout_ms=30000")
	ts.expect(t, client, pkt, nil, "reason=replay")
	ts.expect(t, other, pkt, nil, "reason=replay")

	flipped := bytes.Clone(ts.spaPacket(t, access, keys))
	// One bit of the base64 text's value: 'A' (0) and 'B' (1) differ in
	// the lowest bit, and the text stays base64.
	if i := len(flipped) / 2; flipped[i] == 'A' {
		flipped[i] = 'B'
	} else {
		flipped[i] = 'A'
	}
	ts.expect(t, client, flipped, nil, `reason="bad HMAC"`)
	ts.expect(t, client, ts.spaPacket(t, access, testKeys(t)), nil, `reason="bad HMAC"`)

	old := access
	old.Timestamp = ts.now.Add(-300 * time.Second)
	ts.expect(t, client, ts.spaPacket(t, old, keys), nil, "reason=stale")
	future := access
	future.Timestamp = ts.now.Add(300 * time.Second)
	ts.expect(t, client, ts.spaPacket(t, future, keys), nil, `reason="from the future"`)

	ts.expect(t, client, ts.spaPacket(t, spa.Message{Type: spa.AccessMsg, Message: "198.18.0.1,tcp/23"}, keys), nil, `reason="not allowed"`)
	ts.expect(t, client, ts.spaPacket(t, spa.Message{Type: spa.AccessMsg, Message: "198.18.0.1,tcp/22,udp/53"}, keys), nil, `reason="not allowed"`)
	ts.expect(t, client, ts.spaPacket(t, spa.Message{Type: spa.CommandMsg}, keys), nil, "reason=unsupported")
	ts.expect(t, client, ts.spaPacket(t, spa.Message{Type: spa.NATAccessMsg, NATAccess: "198.18.0.9,22"}, keys), nil, "reason=unsupported")

	// The address asked for is opened, not the source, unless the stanza
	// requires the source.
	ts.expect(t, other, ts.spaPacket(t, access, keys), []string{"198.18.0.1 tcp/22 30s"}, "allow=198.18.0.1")
	ts.expect(t, client, ts.spaPacket(t, spa.Message{Type: spa.AccessMsg, Message: "0.0.0.0,tcp/22"}, keys), []string{"198.18.0.1 tcp/22 30s"}, "allow=198.18.0.1")
	ts.expect(t, client, ts.spaPacket(t, spa.Message{Type: spa.ClientTimeoutAccessMsg, ClientTimeout: 120}, keys), []string{"198.18.0.1 tcp/22 2m0s"}, "accepted")

	ts.expect(t, netip.MustParseAddr("198.19.0.1"), ts.spaPacket(t, access, keys), nil, `reason="source not allowed"`)

	good := ts.spaPacket(t, access, keys)
	ts.expect(t, client, good[:100], nil, `reason="bad packet"`)
	ts.expect(t, client, bytes.Repeat([]byte("A"), 1600), nil, `reason="bad packet"`)
	ts.expect(t, client, append(bytes.Repeat([]byte("A"), 200), '!'), nil, `reason="bad packet" err="not base64: byte 0x21 at offset 200"`)
	// Truncated: the UDP header says more than arrived.
	ts.log.Reset()
	cut := ipv4(client, server, UDP, udp(DefaultSPAPort, good))
	ts.HandlePacket(context.Background(), cut[:len(cut)-10])
	if !strings.Contains(ts.log.String(), "truncated") || len(ts.opener.take()) != 0 {
		t.Errorf("truncated packet: log %q", ts.log.String())
	}
	// The good packet still opens: none of the refusals spent it.
	ts.expect(t, client, good, []string{"198.18.0.1 tcp/22 30s"}, "accepted")

	var metrics bytes.Buffer
	ts.opts.Metrics.WriteText(&metrics)
	for _, want := range []string{`portkit_knockd_accepted_total{kind="spa"} 5`, `portkit_knockd_refused_total{kind="spa",reason="bad_HMAC"} 2`, `reason="replay"} 2`} {
		if !strings.Contains(metrics.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics.String())
		}
	}

	// After a restart, a new server with the same state directory still
	// knows it.
	ts.cache.Close()
	ts2 := newTestServer(t, dir, keys, nil)
	ts2.expect(t, client, pkt, nil, "reason=replay")
}

func TestServerRequireSourceAddress(t *testing.T) {
	keys := testKeys(t)
	ts := newTestServer(t, t.TempDir(), keys, func(c *Config) { c.SPA[0].RequireSourceAddress = true })
	ts.expect(t, other, ts.spaPacket(t, spa.Message{Type: spa.AccessMsg}, keys), nil, `reason="not allowed"`)
	ts.expect(t, client, ts.spaPacket(t, spa.Message{Type: spa.AccessMsg, Message: "0.0.0.0,tcp/22"}, keys), nil, `reason="not allowed"`)
	ts.expect(t, client, ts.spaPacket(t, spa.Message{Type: spa.AccessMsg}, keys), []string{"198.18.0.1 tcp/22 30s"}, "accepted")
}

// TestServerTwoStanzas: the stanza whose keys decode the packet is the one
// applied.
func TestServerTwoStanzas(t *testing.T) {
	k1, k2 := testKeys(t), testKeys(t)
	ts := newTestServer(t, t.TempDir(), k1, func(c *Config) {
		second := c.SPA[0]
		second.Keys = k2
		second.OpenPorts = []spa.ProtoPort{{Proto: "tcp", Port: 443}}
		second.MaxAge = time.Second
		c.SPA = append(c.SPA, second)
	})
	ts.expect(t, client, ts.spaPacket(t, spa.Message{Type: spa.AccessMsg, Message: "198.18.0.1,tcp/443"}, k2), []string{"198.18.0.1 tcp/443 30s"}, "accepted")
	ts.expect(t, client, ts.spaPacket(t, spa.Message{Type: spa.AccessMsg, Message: "198.18.0.1,tcp/443"}, k1), nil, `reason="not allowed"`)
	// The second stanza's max_age is a second.
	ts.expect(t, client, ts.spaPacket(t, spa.Message{Type: spa.AccessMsg, Message: "198.18.0.1,tcp/443", Timestamp: ts.now.Add(-5 * time.Second)}, k2), nil, "reason=stale")
}

func TestServerSequence(t *testing.T) {
	ts := newTestServer(t, t.TempDir(), testKeys(t), nil)
	feed := func(p []byte) { ts.HandlePacket(context.Background(), p) }
	feed(ipv4(client, server, TCP, tcp(7000, synFlag)))
	feed(ipv4(client, server, TCP, tcp(7000, synFlag|ackFlag))) // not a knock, not a break
	feed(ipv4(client, server, TCP, tcp(1234, ackFlag)))
	feed(ipv4(client, server, UDP, udp(8000, nil)))
	feed(ipv4(client, server, TCP, tcp(9000, synFlag)))
	if got := ts.opener.take(); len(got) != 1 || got[0] != "198.18.0.1 tcp/22 1m0s" {
		t.Fatalf("opened %q", got)
	}
	if !strings.Contains(ts.log.String(), "msg=accepted kind=sequence src=198.18.0.1") {
		t.Errorf("log %q", ts.log.String())
	}
	ts.log.Reset()
	// IPv6, in the wrong order.
	c6 := netip.MustParseAddr("2001:2::1")
	s6 := netip.MustParseAddr("2001:2::2")
	feed(ipv6(c6, s6, TCP, tcp(7000, synFlag)))
	feed(ipv6(c6, s6, TCP, tcp(9000, synFlag)))
	if got := ts.opener.take(); len(got) != 0 {
		t.Fatalf("opened %q", got)
	}
	if !strings.Contains(ts.log.String(), `msg=refused kind=sequence src=2001:2::1 reason="wrong sequence"`) {
		t.Errorf("log %q", ts.log.String())
	}
}

func TestOneTimeDoor(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "otp")
	writeFileWhole(path, []byte("# used ones are commented\n 7000,8000\n 7100,8100:udp\n"))
	ot, err := LoadOneTime(path)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, dir, testKeys(t), func(c *Config) {
		c.Doors = []*Door{{Name: "otp", SourceAny: true, OneTime: ot, OpenPorts: []spa.ProtoPort{{Proto: "tcp", Port: 22}}, AccessTimeout: time.Minute}}
	})
	seq := func(a, b []byte) {
		ts.HandlePacket(context.Background(), ipv4(client, server, TCP, a))
		ts.HandlePacket(context.Background(), ipv4(client, server, UDP, b))
	}
	knock := func(p1 uint16, p2 []byte) { seq(tcp(p1, synFlag), p2) }
	knock(7000, tcp(8000, synFlag)[:0]) // UDP 8000 is not the sequence's TCP 8000
	ts.HandlePacket(context.Background(), ipv4(client, server, TCP, tcp(7000, synFlag)))
	ts.HandlePacket(context.Background(), ipv4(client, server, TCP, tcp(8000, synFlag)))
	if got := ts.opener.take(); len(got) != 1 {
		t.Fatalf("first sequence: opened %q", got)
	}
	// Used: it opens no more; the next line does.
	ts.HandlePacket(context.Background(), ipv4(client, server, TCP, tcp(7000, synFlag)))
	ts.HandlePacket(context.Background(), ipv4(client, server, TCP, tcp(8000, synFlag)))
	if got := ts.opener.take(); len(got) != 0 {
		t.Fatalf("used sequence opened %q", got)
	}
	knock(7100, udp(8100, nil))
	if got := ts.opener.take(); len(got) != 1 {
		t.Fatalf("second sequence: opened %q", got)
	}
	ot2, err := LoadOneTime(path)
	if err != nil {
		t.Fatal(err)
	}
	if ot2.Remaining() != 0 {
		t.Errorf("after a reload %d sequences remain unused", ot2.Remaining())
	}
}

// TestServerFlood: junk from many sources costs no lasting memory: the
// tracker stays within MaxSources, the replay cache holds nothing, and
// nothing opens.
func TestServerFlood(t *testing.T) {
	keys := testKeys(t)
	ts := newTestServer(t, t.TempDir(), keys, func(c *Config) { c.MaxSources = 500 })
	junk := bytes.Repeat([]byte("QUJD"), 60)
	for i := range 20000 {
		src := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		junk[i%len(junk)] = "ABCDEFGH"[i%8]
		ts.HandlePacket(context.Background(), ipv4(src, server, UDP, udp(DefaultSPAPort, junk)))
		ts.HandlePacket(context.Background(), ipv4(src, server, TCP, tcp(7000, synFlag)))
		if i%1000 == 0 {
			ts.log.Reset()
		}
	}
	if n := ts.tr.Len(); n > 500 {
		t.Errorf("%d sources followed, at most 500", n)
	}
	if n := ts.cache.Len(); n != 0 {
		t.Errorf("%d digests kept from junk", n)
	}
	if got := ts.opener.take(); len(got) != 0 {
		t.Errorf("opened %q", got)
	}
}

// TestServerReloadKeepsSpentSteps: a TOTP sequence that opened does not
// open again after a reload within its window.
func TestServerReloadKeepsSpentSteps(t *testing.T) {
	tp := &TOTP{Secret: []byte("0123456789abcdef0123"), Low: 40000, High: 40999, Proto: UDP}
	door := func() *Door {
		return &Door{Name: "totp", SourceAny: true, TOTP: tp, OpenPorts: []spa.ProtoPort{{Proto: "tcp", Port: 22}}, AccessTimeout: time.Minute}
	}
	ts := newTestServer(t, t.TempDir(), testKeys(t), func(c *Config) { c.Doors = []*Door{door()} })
	knockAll := func() {
		for _, k := range tp.At(ts.now) {
			ts.HandlePacket(context.Background(), ipv4(client, server, UDP, udp(k.Port, nil)))
		}
	}
	knockAll()
	if got := ts.opener.take(); len(got) != 1 {
		t.Fatalf("opened %q", got)
	}
	cfg := *ts.Config()
	cfg.Doors = []*Door{door()}
	if err := ts.Reload(&cfg); err != nil {
		t.Fatal(err)
	}
	knockAll()
	if got := ts.opener.take(); len(got) != 0 {
		t.Errorf("a spent step opened again after a reload: %q", got)
	}
}
