package forward

import (
	"bytes"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// udpEcho answers each datagram with "echo:" and the datagram.
func udpEcho(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, maxDatagram)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			c.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
	return c.LocalAddr().String()
}

func udpAsk(t *testing.T, c net.Conn, msg string) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, maxDatagram)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("%q: %v", msg, err)
	}
	return string(buf[:n])
}

func TestUDPSessions(t *testing.T) {
	echo := udpEcho(t)
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Name: "dns", Protocol: UDP, Listen: "127.0.0.1:0", Targets: []string{echo}})
	var clients []net.Conn
	for range 5 {
		clients = append(clients, dial(t, "udp", addr))
	}
	big := strings.Repeat("z", 60000) // far above any MTU: one datagram still
	for round := range 3 {
		for i, c := range clients {
			msg := fmt.Sprintf("client %d round %d", i, round)
			if got := udpAsk(t, c, msg); got != "echo:"+msg {
				t.Fatalf("got %q for %q", got, msg)
			}
		}
	}
	if got := udpAsk(t, clients[0], big); got != "echo:"+big {
		t.Fatalf("60 kB datagram came back as %d bytes", len(got))
	}
	var text bytes.Buffer
	fx.m.WriteText(&text)
	for _, want := range []string{
		`portkit_forward_udp_sessions_active{rule="dns"} 5`,
		`portkit_forward_udp_sessions_total{rule="dns"} 5`,
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("metrics lack %s:\n%s", want, text.String())
		}
	}
}

// TestUDPEviction: at max_sessions, a new client's session takes the place
// of the one quiet longest, not of a busy one.
func TestUDPEviction(t *testing.T) {
	echo := udpEcho(t)
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Name: "ev", Protocol: UDP, Listen: "127.0.0.1:0", Targets: []string{echo}, MaxSessions: 2})
	a, b, c := dial(t, "udp", addr), dial(t, "udp", addr), dial(t, "udp", addr)
	udpAsk(t, a, "a1")
	udpAsk(t, b, "b1")
	udpAsk(t, a, "a2") // b is now the quietest
	udpAsk(t, c, "c1") // evicts b
	recs := fx.log.waitLines(t, "session end", 1)
	if recs[0]["end"] != "evicted" || recs[0]["client"] != b.LocalAddr().String() {
		t.Fatalf("ended %v, want b (%s) evicted", recs[0], b.LocalAddr())
	}
	if recs[0]["bytes_from_client"] != float64(2) || recs[0]["bytes_to_client"] != float64(7) {
		t.Fatalf("bytes in the log: %v", recs[0])
	}
	checkMillis(t, recs[0], "duration_ms")
	// b comes back as a new session (evicting a, now the quietest).
	if got := udpAsk(t, b, "b2"); got != "echo:b2" {
		t.Fatalf("b after eviction: %q", got)
	}
	var text bytes.Buffer
	fx.m.WriteText(&text)
	if !strings.Contains(text.String(), `portkit_forward_udp_sessions_evicted_total{rule="ev"} 2`) {
		t.Fatalf("metrics:\n%s", text.String())
	}
}

func TestUDPIdleAndDeny(t *testing.T) {
	echo := udpEcho(t)
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Protocol: UDP, Listen: "127.0.0.1:0", Targets: []string{echo}, IdleTimeout: 200 * time.Millisecond})
	c := dial(t, "udp", addr)
	udpAsk(t, c, "hi")
	if rec := fx.log.waitLines(t, "session end", 1)[0]; rec["end"] != "idle" {
		t.Fatalf("log: %v", rec)
	}
	if got := udpAsk(t, c, "again"); got != "echo:again" {
		t.Fatalf("after idle end: %q", got)
	}

	fx2 := newFixture(t, Options{})
	addr2 := fx2.start(Rule{Name: "d", Protocol: UDP, Listen: "127.0.0.1:0", Targets: []string{echo}, Allow: mustPrefixes("10.0.0.0/8")})
	d := dial(t, "udp", addr2)
	d.Write([]byte("let me in"))
	d.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := d.Read(make([]byte, 100)); err == nil {
		t.Fatalf("denied client got %d bytes", n)
	}
	var text bytes.Buffer
	fx2.m.WriteText(&text)
	if !strings.Contains(text.String(), `portkit_forward_denied_total{rule="d",reason="acl"} 1`) {
		t.Fatalf("metrics:\n%s", text.String())
	}
}

// TestUDPFailover: a target that answers with ICMP port unreachable is
// marked down and the client's next datagram goes to the next target.
func TestUDPFailover(t *testing.T) {
	echo := udpEcho(t)
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.LocalAddr().String()
	dead.Close()
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Protocol: UDP, Listen: "127.0.0.1:0", Targets: []string{deadAddr, echo}})
	c := dial(t, "udp", addr)
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 100)
	for {
		c.Write([]byte("ping"))
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, err := c.Read(buf); err == nil {
			if string(buf[:n]) != "echo:ping" {
				t.Fatalf("got %q", buf[:n])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("never failed over to the live target")
		}
	}
	if rec := fx.log.waitLines(t, "session end", 1)[0]; rec["end"] != "refused" || rec["target"] != deadAddr {
		t.Fatalf("log: %v", rec)
	}
}

// TestUDPEvictionCountsReplies: a session that only receives (a client
// subscribed to a stream) is not the quietest; one that sent once is.
func TestUDPEvictionCountsReplies(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() { // "stream" subscribes the sender to a datagram every 20 ms; anything else is echoed
		buf := make([]byte, 100)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if string(buf[:n]) != "stream" {
				pc.WriteTo(buf[:n], from)
				continue
			}
			go func() {
				for range 200 {
					if _, err := pc.WriteTo([]byte("tick"), from); err != nil {
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
		}
	}()
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Protocol: UDP, Listen: "127.0.0.1:0", Targets: []string{pc.LocalAddr().String()}, MaxSessions: 2})
	sub, once, late := dial(t, "udp", addr), dial(t, "udp", addr), dial(t, "udp", addr)
	if got := udpAsk(t, sub, "stream"); got != "tick" {
		t.Fatalf("subscriber got %q", got)
	}
	udpAsk(t, once, "ping")            // more recent than the subscriber's request,
	time.Sleep(200 * time.Millisecond) // but the ticks keep the subscriber fresher
	udpAsk(t, late, "hello")
	rec := fx.log.waitLines(t, "session end", 1)[0]
	if rec["end"] != "evicted" || rec["client"] != once.LocalAddr().String() {
		t.Fatalf("evicted %v, want the one-off client %s", rec, once.LocalAddr())
	}
}

// TestUDPReloadEndsDeniedSessions: a session lives as long as its client
// sends, so a reload that denies the client ends it.
func TestUDPReloadEndsDeniedSessions(t *testing.T) {
	echo := udpEcho(t)
	fx := newFixture(t, Options{})
	rule := Rule{Protocol: UDP, Listen: "127.0.0.1:0", Targets: []string{echo}}
	addr := fx.start(rule)
	c := dial(t, "udp", addr)
	udpAsk(t, c, "before")
	rule.Deny = mustPrefixes("127.0.0.0/8")
	if err := fx.fw.Reload([]Rule{rule}); err != nil {
		t.Fatal(err)
	}
	if rec := fx.log.waitLines(t, "session end", 1)[0]; rec["end"] != "reload" {
		t.Fatalf("log: %v", rec)
	}
	c.Write([]byte("after"))
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := c.Read(make([]byte, 100)); err == nil {
		t.Fatalf("denied client still answered (%d bytes)", n)
	}
}

// TestUDPBurst: datagrams that arrive together, from several clients
// interleaved and of sizes from 0 to 60 kB, each reach the target once and
// come back whole to their own client, and the byte counts add up. On
// Linux they are read and written in batches. The burst stays well within
// the default socket buffers, which would drop what overflows them.
func TestUDPBurst(t *testing.T) {
	echo := udpEcho(t)
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Name: "burst", Protocol: UDP, Listen: "127.0.0.1:0", Targets: []string{echo}})
	clients := []net.Conn{dial(t, "udp", addr), dial(t, "udp", addr), dial(t, "udp", addr)}
	for _, c := range clients {
		udpAsk(t, c, "hello") // the sessions exist before the burst
	}
	sizes := []int{0, 1, 100, 1400, 60000, 100, 10, 1000, 0, 1, 100, 1400}
	want := make([]map[string]int, len(clients))
	sent := int64(0)
	for i := range 3 * udpBatch {
		c := i % len(clients)
		size := sizes[i%len(sizes)]
		if size > 1400 && i >= len(sizes) {
			size = 1400 // one big datagram is enough
		}
		msg := fmt.Sprintf("%d:", i) + strings.Repeat("x", size)
		if want[c] == nil {
			want[c] = map[string]int{}
		}
		want[c]["echo:"+msg]++
		if _, err := clients[c].Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		sent += int64(len(msg))
	}
	buf := make([]byte, maxDatagram)
	for c, conn := range clients {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		for n := len(want[c]); n > 0; n-- {
			k, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("client %d: %v with %d replies missing", c, err, n)
			}
			got := string(buf[:k])
			if want[c][got] == 0 {
				t.Fatalf("client %d: unexpected reply of %d bytes: %.20q", c, k, got)
			}
			want[c][got]--
		}
	}
	var text bytes.Buffer
	fx.m.WriteText(&text)
	line := fmt.Sprintf(`portkit_forward_bytes_total{rule="burst",direction="client_to_target"} %d`, sent+3*int64(len("hello")))
	if !strings.Contains(text.String(), line) {
		t.Errorf("metrics lack %s:\n%s", line, text.String())
	}
}

// TestUDPWildcardReplySource: a wildcard listener answers each client from
// the address it wrote to, so a connected client (as most resolvers are)
// takes the reply.
func TestUDPWildcardReplySource(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the destination address is learnt on Linux only")
	}
	echo := udpEcho(t)
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Name: "dns", Protocol: UDP, Listen: "0.0.0.0:0", Targets: []string{echo}})
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	for _, host := range []string{"127.0.0.1", "127.0.0.2", "::1"} {
		to := net.JoinHostPort(host, port)
		c, err := net.Dial("udp", to)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := udpAsk(t, c, "q "+host); got != "echo:q "+host {
			t.Fatalf("via %s: %q", to, got)
		}
	}
}

// TestUDPNoIdleTimeout: idle_timeout switched off (0 in a file, NoLimit
// here) keeps a session rather than ending it at once.
func TestUDPNoIdleTimeout(t *testing.T) {
	echo := udpEcho(t)
	fx := newFixture(t, Options{})
	addr := fx.start(Rule{Name: "forever", Protocol: UDP, Listen: "127.0.0.1:0", Targets: []string{echo}, IdleTimeout: NoLimit})
	c := dial(t, "udp", addr)
	for _, msg := range []string{"one", "two", "three"} {
		if got := udpAsk(t, c, msg); got != "echo:"+msg {
			t.Fatalf("%s: got %q", msg, got)
		}
	}
	if n := fx.m.rule("forever", UDP).sessionsTotal.Load(); n != 1 {
		t.Fatalf("%d sessions for one client, want 1; log %v", n, fx.log.lines("session end"))
	}
}
