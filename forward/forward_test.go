package forward

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portkit/portkit/forward/proxyproto"
)

// logBuf collects a forwarder's JSON log lines.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// lines returns the log records with the given msg.
func (l *logBuf) lines(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(l.buf.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// waitLines polls until n records with msg are logged: connection ends are
// logged after the client has seen its connection close.
func (l *logBuf) waitLines(t *testing.T, msg string, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs := l.lines(msg)
		if len(recs) >= n || time.Now().After(deadline) {
			if len(recs) < n {
				t.Fatalf("%d %q log lines, want %d; log:\n%s", len(recs), msg, n, l.buf.String())
			}
			return recs
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type fixture struct {
	t   *testing.T
	fw  *Forwarder
	log *logBuf
	m   *Metrics
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	lb := &logBuf{}
	opts.Logger = slog.New(slog.NewJSONHandler(lb, nil))
	opts.Metrics = NewMetrics()
	fx := &fixture{t: t, fw: New(opts), log: lb, m: opts.Metrics}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		fx.fw.Shutdown(ctx)
	})
	return fx
}

// start runs rules and returns the address the first one listens on.
func (fx *fixture) start(rules ...Rule) string {
	fx.t.Helper()
	if err := fx.fw.Reload(rules); err != nil {
		fx.t.Fatal(err)
	}
	return fx.fw.Addr(rules[0].Protocol, rules[0].Listen).String()
}

// echoServer accepts on 127.0.0.1:0 and echoes each connection until the
// client half-closes, then closes its side.
func echoServer(t *testing.T) (addr string, accepted func() int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var mu sync.Mutex
	n := 0
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().String(), func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// roundTrip sends msg, half-closes, and returns everything read back.
func roundTrip(t *testing.T, addr, msg string) string {
	t.Helper()
	c := dial(t, "tcp", addr)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil && !isReset(err) {
		t.Fatal(err)
	}
	return string(b)
}

// dial connects to addr, closing the connection when t ends.
func dial(t *testing.T, network, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func isReset(err error) bool { return err != nil && strings.Contains(err.Error(), "reset") }

func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// serveOnce accepts one connection on 127.0.0.1:0 and hands it to serve,
// which it closes after; it returns the address.
func serveOnce(t *testing.T, serve func(c *net.TCPConn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		serve(c.(*net.TCPConn))
	}()
	return l.Addr().String()
}

func TestTCPEchoAndLog(t *testing.T) {
	echo, _ := echoServer(t)
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Name: "echo", Listen: "127.0.0.1:0", Targets: []string{echo}})
	msg := strings.Repeat("portkit ", 100000) // 800 kB: several splices
	if got := roundTrip(t, addr, msg); got != msg {
		t.Fatalf("echoed %d bytes, want %d", len(got), len(msg))
	}
	rec := fx.log.waitLines(t, "connection end", 1)[0]
	for k, want := range map[string]any{"rule": "echo", "target": echo, "end": "closed",
		"bytes_from_client": float64(len(msg)), "bytes_to_client": float64(len(msg))} {
		if rec[k] != want {
			t.Errorf("log %s = %v, want %v", k, rec[k], want)
		}
	}
	if !strings.HasPrefix(rec["client"].(string), "127.0.0.1:") {
		t.Errorf("log client = %v", rec["client"])
	}
	checkMillis(t, rec, "duration_ms")
}

// TestHalfClose: a protocol in which the client says everything, shuts its
// sending side, and only then gets the answer, which needs the half-close
// passed through to the target and the other direction kept open.
func TestHalfClose(t *testing.T) {
	asker := serveOnce(t, func(c *net.TCPConn) {
		b, _ := io.ReadAll(c) // until the client's FIN arrives through the forwarder
		time.Sleep(50 * time.Millisecond)
		io.WriteString(c, "got "+string(rune('0'+len(b)%10))+" "+strings.ToUpper(string(b)))
	})
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Listen: "127.0.0.1:0", Targets: []string{asker}})
	if got := roundTrip(t, addr, "question"); got != "got 8 QUESTION" {
		t.Fatalf("answer %q", got)
	}
	// And the other way: the target shuts first, the client still sends.
	got := make(chan string, 1)
	banner := serveOnce(t, func(c *net.TCPConn) {
		io.WriteString(c, "banner")
		c.CloseWrite()
		b, _ := io.ReadAll(c)
		got <- string(b)
	})
	fx2 := newFixture(t, Options{})
	addr2 := fx2.start(Rule{Listen: "127.0.0.1:0", Targets: []string{banner}})
	c := dial(t, "tcp", addr2)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c) // the target's FIN reaches the client
	if err != nil || string(b) != "banner" {
		t.Fatalf("read %q, %v", b, err)
	}
	io.WriteString(c, "after your FIN")
	c.(*net.TCPConn).CloseWrite()
	if s := <-got; s != "after your FIN" {
		t.Fatalf("target got %q", s)
	}
}

func TestFailover(t *testing.T) {
	echo, _ := echoServer(t)
	dead := closedPort(t)
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Name: "fo", Listen: "127.0.0.1:0", Targets: []string{dead, echo}})
	for i := range 3 {
		if got := roundTrip(t, addr, "x"); got != "x" {
			t.Fatalf("round %d: %q", i, got)
		}
	}
	var text bytes.Buffer
	fx.m.WriteText(&text)
	for _, want := range []string{
		`portkit_forward_dial_errors_total{rule="fo",target="` + dead + `"} 1`, // tried once, then skipped while down
		`portkit_forward_target_up{rule="fo",target="` + dead + `"} 0`,
		`portkit_forward_target_up{rule="fo",target="` + echo + `"} 1`,
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("metrics lack %s:\n%s", want, text.String())
		}
	}
	if recs := fx.log.lines("target down"); len(recs) != 1 || recs[0]["target"] != dead {
		t.Errorf("target down lines: %v", recs)
	} else {
		checkMillis(t, recs[0], "retry_in_ms")
	}
}

// checkMillis checks that a JSON log record gives a duration as a number
// in a key that names its unit, and no unit-less key beside it.
func checkMillis(t *testing.T, rec map[string]any, key string) {
	t.Helper()
	if v, ok := rec[key].(float64); !ok || v < 0 {
		t.Errorf("log %s = %v, want a number of milliseconds; record %v", key, rec[key], rec)
	}
	for _, bare := range []string{"duration", "retry_in", "drain_timeout"} {
		if _, ok := rec[bare]; ok {
			t.Errorf("log has %s without its unit: %v", bare, rec)
		}
	}
}

func TestRoundRobin(t *testing.T) {
	a, na := echoServer(t)
	b, nb := echoServer(t)
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Listen: "127.0.0.1:0", Targets: []string{a, b}, Balance: RoundRobin})
	for range 4 {
		roundTrip(t, addr, "x")
	}
	if na() != 2 || nb() != 2 {
		t.Fatalf("connections per target %d and %d, want 2 and 2", na(), nb())
	}
}

func TestAllTargetsDown(t *testing.T) {
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Listen: "127.0.0.1:0", Targets: []string{closedPort(t), closedPort(t)}})
	refusedWithReset(t, addr)
	rec := fx.log.waitLines(t, "connection end", 1)[0]
	if rec["end"] != "dial failed" || !strings.Contains(rec["err"].(string), "refused") {
		t.Fatalf("log: %v", rec)
	}
}

func TestDenyBeforeDial(t *testing.T) {
	echo, accepted := echoServer(t)
	fx := newFixture(t, Options{})
	addr := fx.start(
		Rule{Name: "deny", Listen: "127.0.0.1:0", Targets: []string{echo}, Deny: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
	)
	refusedWithReset(t, addr)
	rec := fx.log.waitLines(t, "connection end", 1)[0]
	if rec["end"] != "denied" || rec["target"] != "" {
		t.Fatalf("log: %v", rec)
	}
	// An allow list without the client denies too; with it, it passes.
	fx2 := newFixture(t, Options{})
	addr2 := fx2.start(Rule{Listen: "127.0.0.1:0", Targets: []string{echo}, Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	refusedWithReset(t, addr2)
	if accepted() != 0 {
		t.Fatalf("target dialled %d times for denied clients", accepted())
	}
	fx3 := newFixture(t, Options{})
	addr3 := fx3.start(Rule{Listen: "127.0.0.1:0", Targets: []string{echo}, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if got := roundTrip(t, addr3, "x"); got != "x" {
		t.Fatalf("allowed client got %q", got)
	}
}

func TestMaxConnsPerSource(t *testing.T) {
	echo, _ := echoServer(t)
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Listen: "127.0.0.1:0", Targets: []string{echo}, MaxConnsPerSource: 1})
	first := dial(t, "tcp", addr)
	io.WriteString(first, "a") // proves the first is through before the second
	first.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(first, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	refusedWithReset(t, addr)
	if rec := fx.log.waitLines(t, "connection end", 1)[0]; rec["end"] != "limit" {
		t.Fatalf("log: %v", rec)
	}
	first.Close()
	fx.log.waitLines(t, "connection end", 2)
	if got := roundTrip(t, addr, "y"); got != "y" {
		t.Fatalf("after the first closed: %q", got)
	}
}

// proxyTarget accepts one connection, reads its PROXY header and returns
// the header and the bytes after it.
func proxyTarget(t *testing.T) (string, <-chan proxyResult) {
	ch := make(chan proxyResult, 1)
	addr := serveOnce(t, func(c *net.TCPConn) {
		br := bufio.NewReader(c)
		h, err := proxyproto.Read(br)
		rest, _ := io.ReadAll(br)
		ch <- proxyResult{h, string(rest), err}
	})
	return addr, ch
}

// viaBalancer connects to addr as a load balancer would: the header in
// the given version and the client's first bytes in one write, then a
// half-close.
func viaBalancer(t *testing.T, addr string, h proxyproto.Header, version int, payload string) {
	t.Helper()
	hdr, err := h.Format(version)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, "tcp", addr)
	t.Cleanup(func() { c.Close() })
	c.Write(append(hdr, payload...))
	c.(*net.TCPConn).CloseWrite()
}

type proxyResult struct {
	h    proxyproto.Header
	rest string
	err  error
}

func TestSendProxyProtocol(t *testing.T) {
	for _, v := range []int{1, 2} {
		target, got := proxyTarget(t)
		fx := newFixture(t, Options{})
		addr := fx.start(Rule{Listen: "127.0.0.1:0", Targets: []string{target}, ProxyProtocol: v})
		c := dial(t, "tcp", addr)
		io.WriteString(c, "payload")
		c.(*net.TCPConn).CloseWrite()
		r := <-got
		c.Close()
		if r.err != nil {
			t.Fatalf("v%d: %v", v, r.err)
		}
		wantSrc := netip.MustParseAddrPort(c.LocalAddr().String())
		wantDst := netip.MustParseAddrPort(addr)
		if r.h.Version != v || r.h.Command != proxyproto.Proxy || r.h.Transport != proxyproto.TCP4 ||
			r.h.Source != wantSrc || r.h.Destination != wantDst || r.rest != "payload" {
			t.Fatalf("v%d: target saw %+v then %q; want source %v destination %v", v, r.h, r.rest, wantSrc, wantDst)
		}
	}
}

// TestAcceptProxyProtocol: a trusted load balancer's header names the
// client, the allow list is applied to that client, and the header sent on
// to the target carries it; the client's first bytes, sent with the header
// in one segment, are not lost.
func TestAcceptProxyProtocol(t *testing.T) {
	target, got := proxyTarget(t)
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Listen: "127.0.0.1:0", Targets: []string{target}, ProxyProtocol: 2,
		AcceptProxyProtocol: true, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Allow: []netip.Prefix{netip.MustParsePrefix("198.18.7.0/24")}})
	client := netip.MustParseAddrPort("198.18.7.9:40000")
	dst := netip.MustParseAddrPort("198.18.0.1:443")
	viaBalancer(t, addr, proxyproto.Header{Command: proxyproto.Proxy, Transport: proxyproto.TCP4, Source: client, Destination: dst}, 1, "early bytes")
	r := <-got
	if r.err != nil || r.h.Source != client || r.h.Destination != dst || r.rest != "early bytes" {
		t.Fatalf("target saw %+v then %q (%v)", r.h, r.rest, r.err)
	}

	// A trusted peer without a header is refused; a garbled one too.
	for _, bad := range []string{"GET / HTTP/1.0\r\n\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n"} {
		c := dial(t, "tcp", addr)
		io.WriteString(c, bad)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, _ := c.Read(make([]byte, 1)); n != 0 {
			t.Fatalf("%q: connection not refused", bad)
		}
		c.Close()
	}
	recs := fx.log.waitLines(t, "connection end", 3)
	var ends []string
	for _, r := range recs {
		ends = append(ends, r["end"].(string))
	}
	if strings.Count(strings.Join(ends, ","), "bad proxy header") != 2 {
		t.Fatalf("ends %v", ends)
	}
}

func TestIdleTimeout(t *testing.T) {
	echo, _ := echoServer(t)
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Listen: "127.0.0.1:0", Targets: []string{echo}, IdleTimeout: 300 * time.Millisecond})

	// A connection that talks more often than the timeout lives on past it.
	busy := dial(t, "tcp", addr)
	busy.SetDeadline(time.Now().Add(10 * time.Second))
	for range 10 {
		if _, err := io.WriteString(busy, "."); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(busy, make([]byte, 1)); err != nil {
			t.Fatalf("busy connection cut: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A quiet one is closed.
	quiet := dial(t, "tcp", addr)
	quiet.SetDeadline(time.Now().Add(10 * time.Second))
	if n, err := quiet.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("quiet connection: %d, %v", n, err)
	}
	if rec := fx.log.waitLines(t, "connection end", 1)[0]; rec["end"] != "idle" {
		t.Fatalf("log: %v", rec)
	}
}

// TestReloadKeepsConnections: a changed rule keeps its listener and its live
// connection, a new rule starts, a removed one stops accepting and its
// connection drains; a bad set changes nothing.
func TestReloadKeepsConnections(t *testing.T) {
	echo, _ := echoServer(t)
	fx := newFixture(t, Options{DrainTimeout: 300 * time.Millisecond})
	keep := Rule{Name: "keep", Listen: "127.0.0.1:0", Targets: []string{echo}}
	gone := Rule{Name: "gone", Listen: "[::1]:0", Targets: []string{echo}}
	if err := fx.fw.Reload([]Rule{keep, gone}); err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	keepAddr := fx.fw.Addr(TCP, keep.Listen).String()
	goneAddr := fx.fw.Addr(TCP, gone.Listen).String()
	live := dial(t, "tcp", keepAddr)
	draining := dial(t, "tcp", goneAddr)
	for _, c := range []net.Conn{live, draining} {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "1")
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	}

	bad := keep
	bad.Targets = []string{"nohost"}
	if err := fx.fw.Reload([]Rule{bad}); err == nil {
		t.Fatal("bad rule accepted")
	}
	if fx.fw.Addr(TCP, gone.Listen) == nil {
		t.Fatal("a failed reload stopped a rule")
	}

	changed := keep
	changed.MaxConnsPerSource = 100
	added := Rule{Name: "added", Listen: "127.0.0.1:0", Protocol: UDP, Targets: []string{"127.0.0.1:9"}}
	if err := fx.fw.Reload([]Rule{changed, added}); err != nil {
		t.Fatal(err)
	}
	if got := fx.fw.Addr(TCP, keep.Listen).String(); got != keepAddr {
		t.Fatalf("kept rule moved from %s to %s", keepAddr, got)
	}
	if fx.fw.Addr(UDP, added.Listen) == nil {
		t.Fatal("added rule not running")
	}
	io.WriteString(live, "2")
	if _, err := io.ReadFull(live, make([]byte, 1)); err != nil {
		t.Fatalf("live connection lost across reload: %v", err)
	}
	if _, err := net.DialTimeout("tcp", goneAddr, time.Second); err == nil {
		t.Fatal("removed rule still accepts")
	}
	// The removed rule's connection works until the drain time is up.
	io.WriteString(draining, "3")
	if _, err := io.ReadFull(draining, make([]byte, 1)); err != nil {
		t.Fatalf("draining connection cut early: %v", err)
	}
	if n, _ := draining.Read(make([]byte, 1)); n != 0 {
		t.Fatal("draining connection not closed at the drain timeout")
	}
	if rec := fx.log.waitLines(t, "connection end", 1)[0]; rec["rule"] != "gone" || rec["end"] != "shutdown" {
		t.Fatalf("log: %v", rec)
	}
}

func TestShutdownLeavesNothing(t *testing.T) {
	echo, _ := echoServer(t)
	before := runtime.NumGoroutine()
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Listen: "127.0.0.1:0", Targets: []string{echo}},
		Rule{Listen: "127.0.0.1:0", Protocol: UDP, Targets: []string{"127.0.0.1:9"}})
	var conns []net.Conn
	for range 20 {
		c := dial(t, "tcp", addr)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "x")
		io.ReadFull(c, make([]byte, 1))
		conns = append(conns, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	fx.fw.Shutdown(ctx)
	for _, c := range conns {
		if n, _ := c.Read(make([]byte, 1)); n != 0 {
			t.Fatal("connection open after shutdown")
		}
		c.Close()
	}
	if err := fx.fw.Reload(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Reload after Shutdown: %v", err)
	}
	// The echo server's goroutines end as their clients close.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after shutdown, %d before", n, before)
	}
}

func TestListenInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fx := newFixture(t, Options{PortHolder: func(p Protocol, addr string) string { return "holder of " + string(p) + "/" + addr }})
	err = fx.fw.Reload([]Rule{{Listen: "127.0.0.1:0", Targets: []string{"127.0.0.1:1"}}, {Listen: l.Addr().String(), Targets: []string{"127.0.0.1:1"}}})
	var le *ListenError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "held by holder of tcp/"+l.Addr().String()) {
		t.Fatalf("error %v", err)
	}
	if fx.fw.Addr(TCP, "127.0.0.1:0") != nil {
		t.Fatal("the good rule of a failed set is running")
	}
}

func mustPrefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// TestProxyV2InV1Out: a load balancer's v2 header with TLVs, passed on as
// v1, keeps the client's address and drops what v1 cannot carry.
func TestProxyV2InV1Out(t *testing.T) {
	target, got := proxyTarget(t)
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Listen: "127.0.0.1:0", Targets: []string{target}, ProxyProtocol: 1,
		AcceptProxyProtocol: true, TrustedProxies: mustPrefixes("127.0.0.0/8")})
	client := netip.MustParseAddrPort("[2001:db8::7]:40000")
	dst := netip.MustParseAddrPort("[2001:db8::1]:443")
	viaBalancer(t, addr, proxyproto.Header{Command: proxyproto.Proxy, Transport: proxyproto.TCP6, Source: client, Destination: dst,
		TLVs: []proxyproto.TLV{{Type: 0x04, Value: []byte("unique-id")}}}, 2, "x")
	r := <-got
	if r.err != nil || r.h.Version != 1 || r.h.Source != client || r.h.Destination != dst || len(r.h.TLVs) != 0 || r.rest != "x" {
		t.Fatalf("target saw %+v then %q (%v)", r.h, r.rest, r.err)
	}
}

// TestIdleHalfClosedStuckWriter: the client half-closes and stops reading
// while the target keeps sending; no direction is reading any more, and
// the idle timeout must still end the connection.
func TestIdleHalfClosedStuckWriter(t *testing.T) {
	streamer := serveOnce(t, func(c *net.TCPConn) {
		chunk := make([]byte, 64<<10)
		for { // until the forwarder closes it
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Listen: "127.0.0.1:0", Targets: []string{streamer}, IdleTimeout: 300 * time.Millisecond})
	c := dial(t, "tcp", addr)
	c.(*net.TCPConn).CloseWrite() // and never read
	if rec := fx.log.waitLines(t, "connection end", 1)[0]; rec["end"] != "idle" {
		t.Fatalf("log: %v", rec)
	}
}

// TestShutdownCutsRemovedDrains: connections of a rule a reload removed
// drain on their own time, but a Shutdown whose deadline has passed ends
// them too.
func TestShutdownCutsRemovedDrains(t *testing.T) {
	echo, _ := echoServer(t)
	fx := newFixture(t, Options{DrainTimeout: time.Hour})
	addr := fx.start(Rule{Listen: "127.0.0.1:0", Targets: []string{echo}})
	c := dial(t, "tcp", addr)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "x")
	io.ReadFull(c, make([]byte, 1))
	if err := fx.fw.Reload(nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() {
		fx.fw.Shutdown(ctx)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown waited for a removed rule's drain time")
	}
	if n, _ := c.Read(make([]byte, 1)); n != 0 {
		t.Fatal("removed rule's connection still open")
	}
}

// TestFailedReloadKeepsMetrics: a reload that fails to bind changes no
// rule's settings, the metrics' view of its targets included.
func TestFailedReloadKeepsMetrics(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	fx := newFixture(t, Options{})
	fx.start(Rule{Name: "web", Listen: "127.0.0.1:0", Targets: []string{"127.0.0.1:1"}})
	err = fx.fw.Reload([]Rule{
		{Name: "web", Listen: "127.0.0.1:0", Targets: []string{"198.18.9.9:80"}},
		{Name: "clash", Listen: busy.Addr().String(), Targets: []string{"127.0.0.1:1"}},
	})
	if err == nil {
		t.Fatal("reload onto a busy port succeeded")
	}
	var text bytes.Buffer
	fx.m.WriteText(&text)
	if strings.Contains(text.String(), "198.18.9.9") || strings.Contains(text.String(), "clash") {
		t.Fatalf("a failed reload shows in the metrics:\n%s", text.String())
	}
}

// TestReloadToOverlappingAddress: a rule moved from a host address to the
// wildcard on the same port takes effect in one reload, its old
// connections draining; when the new address cannot be bound, the old
// listener listens again and nothing changes.
func TestReloadToOverlappingAddress(t *testing.T) {
	echo, _ := echoServer(t)
	fx := newFixture(t, Options{DrainTimeout: 5 * time.Second})
	port := strings.TrimPrefix(closedPort(t), "127.0.0.1:")
	old := Rule{Name: "web", Listen: "127.0.0.1:" + port, Targets: []string{echo}}
	fx.start(old)
	live := dial(t, "tcp", "127.0.0.1:"+port)
	live.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(live, "1")
	if _, err := io.ReadFull(live, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}

	// Another process's socket on 127.0.0.2 keeps the wildcard from
	// binding: the old listener must come back.
	other, err := net.Listen("tcp", "127.0.0.2:"+port)
	if err != nil {
		t.Skip("no 127.0.0.2 here:", err)
	}
	moved := Rule{Name: "web", Listen: "0.0.0.0:" + port, Targets: []string{echo}}
	if err := fx.fw.Reload([]Rule{moved}); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("reload onto a held port: %v, want address in use", err)
	}
	if fx.fw.Addr(TCP, old.Listen) == nil || fx.fw.Addr(TCP, moved.Listen) != nil {
		t.Fatal("a failed reload changed the rules")
	}
	if got := roundTrip(t, "127.0.0.1:"+port, "again"); got != "again" {
		t.Fatalf("old rule after a failed move: %q", got)
	}

	other.Close()
	if err := fx.fw.Reload([]Rule{moved}); err != nil {
		t.Fatalf("move to the wildcard in one reload: %v", err)
	}
	if fx.fw.Addr(TCP, moved.Listen) == nil || fx.fw.Addr(TCP, old.Listen) != nil {
		t.Fatal("rule not moved")
	}
	if got := roundTrip(t, "127.0.0.2:"+port, "moved"); got != "moved" {
		t.Fatalf("through the moved rule: %q", got)
	}
	io.WriteString(live, "2")
	if _, err := io.ReadFull(live, make([]byte, 1)); err != nil {
		t.Fatalf("connection of the old listener lost in the move: %v", err)
	}
}

// TestReloadFailedDoubleMove: when the second of two rules moved to the
// wildcard cannot bind, the first one's new listener closes before the old
// ones listen again, so both old rules go on accepting.
func TestReloadFailedDoubleMove(t *testing.T) {
	echo, _ := echoServer(t)
	fx := newFixture(t, Options{DrainTimeout: 5 * time.Second})
	p1 := strings.TrimPrefix(closedPort(t), "127.0.0.1:")
	p2 := strings.TrimPrefix(closedPort(t), "127.0.0.1:")
	a := Rule{Name: "a", Listen: "127.0.0.1:" + p1, Targets: []string{echo}}
	b := Rule{Name: "b", Listen: "127.0.0.1:" + p2, Targets: []string{echo}}
	fx.start(a, b)
	other, err := net.Listen("tcp", "127.0.0.2:"+p2)
	if err != nil {
		t.Skip("no 127.0.0.2 here:", err)
	}
	defer other.Close()
	a2 := Rule{Name: "a", Listen: "0.0.0.0:" + p1, Targets: []string{echo}}
	b2 := Rule{Name: "b", Listen: "0.0.0.0:" + p2, Targets: []string{echo}}
	if err := fx.fw.Reload([]Rule{a2, b2}); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("reload onto a held port: %v, want address in use", err)
	}
	for _, addr := range []string{a.Listen, b.Listen} {
		if got := roundTrip(t, addr, "still"); got != "still" {
			t.Fatalf("%s after the failed reload: %q", addr, got)
		}
	}
}

// TestShutdownDuringProxyHeader: a trusted peer that never finishes its
// PROXY header does not hold Shutdown past its deadline.
func TestShutdownDuringProxyHeader(t *testing.T) {
	echo, _ := echoServer(t)
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Listen: "127.0.0.1:0", Targets: []string{echo}, ConnectTimeout: 20 * time.Second,
		AcceptProxyProtocol: true, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	c := dial(t, "tcp", addr)
	io.WriteString(c, "PRO")
	time.Sleep(50 * time.Millisecond) // the handler waits for the rest
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	fx.fw.Shutdown(ctx)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Shutdown took %v with a header half read", d)
	}
	// Cut by the drain, not the peer's fault: no bad-header count, no
	// deadline error in the log.
	if rec := fx.log.waitLines(t, "connection end", 1)[0]; rec["end"] != "shutdown" || rec["err"] != nil {
		t.Fatalf("log: %v", rec)
	}
}

// TestMaxConnsAloneSharesSlots: with max_conns alone, one client address
// gets a quarter of the slots by default, not all of them.
func TestMaxConnsAloneSharesSlots(t *testing.T) {
	echo, _ := echoServer(t)
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Listen: "127.0.0.1:0", Targets: []string{echo}, MaxConns: 4})
	first := dial(t, "tcp", addr)
	first.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(first, "a")
	if _, err := io.ReadFull(first, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	refusedWithReset(t, addr)
	if rec := fx.log.waitLines(t, "connection end", 1)[0]; rec["end"] != "limit" {
		t.Fatalf("log: %v", rec)
	}
}
