package guard

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scenario is a SYN scan of ports 1-100 from scan4 (22 and 80 open, the
// scanner resetting their SYN-ACKs), a UDP probe refused, and a client
// of port 80 from 198.18.0.50.
func scenario() []Packet {
	var out []Packet
	at := t0
	client := netip.MustParseAddr("198.18.0.50")
	for port := uint16(1); port <= 100; port++ {
		syn := Packet{At: at, Flow: Flow{Src: scan4, Dst: local4, SrcPort: 40000, DstPort: port, Proto: TCP}, Flags: SYN, TTL: 50, Seq: 99}
		out = append(out, syn)
		at = at.Add(time.Millisecond)
		if port == 22 || port == 80 {
			out = append(out, Packet{At: at, Flow: syn.Flow, Flags: RST, TTL: 50, Seq: 100})
		} else {
			out = append(out, Packet{At: at, Outgoing: true, Flow: syn.Flow.Reverse(), Flags: RST | ACK, TTL: 64})
		}
		at = at.Add(5 * time.Millisecond)
		if port%10 == 0 {
			c := Flow{Src: client, Dst: local4, SrcPort: 50000 + port, DstPort: 80, Proto: TCP}
			out = append(out, Packet{At: at, Flow: c, Flags: SYN, TTL: 64, SACKTS: true}, Packet{At: at, Flow: c, Flags: ACK, TTL: 64})
		}
	}
	u := Packet{At: at, Flow: Flow{Src: scan4, Dst: local4, SrcPort: 40001, DstPort: 161, Proto: UDP}, TTL: 50}
	out = append(out, u, Packet{At: at.Add(time.Millisecond), Outgoing: true, Flow: Flow{Src: local4, Dst: scan4, Proto: ICMP}, ICMPType: 3, ICMPCode: 3, TTL: 64, Quoted: u.Flow})
	return out
}

// writePcap writes the packets as a pcap file of cooked (SLL) records.
func writePcap(t testing.TB, pkts []Packet) []byte {
	var b bytes.Buffer
	w, err := NewPcapWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		if err := w.Write(p.At, Marshal(&p), p.Outgoing); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// writePcapng writes the packets as pcapng with Ethernet frames, in
// microseconds, with the direction in epb_flags when dir is true.
func writePcapng(pkts []Packet, dir bool) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	block := func(typ uint32, body []byte) {
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		n := uint32(12 + len(body))
		b.Write(le.AppendUint32(nil, typ))
		b.Write(le.AppendUint32(nil, n))
		b.Write(body)
		b.Write(le.AppendUint32(nil, n))
	}
	shb := le.AppendUint32(nil, 0x1a2b3c4d)
	shb = append(shb, 1, 0, 0, 0)
	shb = append(shb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	block(0x0a0d0d0a, shb)
	block(1, []byte{1, 0, 0, 0, 0xff, 0xff, 0, 0}) // Ethernet, no options: microseconds
	for _, p := range pkts {
		ip := Marshal(&p)
		et := []byte{0x08, 0x00}
		if p.Src.Is6() {
			et = []byte{0x86, 0xdd}
		}
		frame := append(make([]byte, 12), et...)
		frame = append(frame, ip...)
		us := uint64(p.At.UnixMicro())
		body := le.AppendUint32(nil, 0)
		body = le.AppendUint32(body, uint32(us>>32))
		body = le.AppendUint32(body, uint32(us))
		body = le.AppendUint32(body, uint32(len(frame)))
		body = le.AppendUint32(body, uint32(len(frame)))
		body = append(body, frame...)
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		if dir {
			flags := uint32(1)
			if p.Outgoing {
				flags = 2
			}
			body = append(body, 2, 0, 4, 0)
			body = le.AppendUint32(body, flags)
			body = append(body, 0, 0, 0, 0)
		}
		block(6, body)
	}
	return b.Bytes()
}

type collector struct {
	mu     sync.Mutex
	events []Event
}

func (c *collector) sink(ev Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, ev)
	return nil
}

func (c *collector) alerts(phase Phase) []*Alert {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Alert
	for _, ev := range c.events {
		if ev.Alert != nil && (phase == "" || ev.Alert.Phase == phase) {
			out = append(out, ev.Alert)
		}
	}
	return out
}

// TestReplay: the same scenario, from pcap, pcapng with and without the
// direction recorded, gives the same scan.
func TestReplay(t *testing.T) {
	pkts := scenario()
	local := func(a netip.Addr) bool { return a == local4 }
	for _, c := range []struct {
		name  string
		file  []byte
		local func(netip.Addr) bool
	}{
		{"pcap sll", writePcap(t, pkts), nil},
		{"pcapng with direction", writePcapng(pkts, true), nil},
		{"pcapng ethernet", writePcapng(pkts, false), local},
	} {
		t.Run(c.name, func(t *testing.T) {
			var col collector
			g := NewGuard(Options{Sinks: []Sink{SinkFunc(col.sink)}})
			if err := g.Replay(context.Background(), bytes.NewReader(c.file), c.local); err != nil {
				t.Fatal(err)
			}
			ends := col.alerts(PhaseEnd)
			if len(ends) != 1 {
				t.Fatalf("%d scans: %+v", len(ends), col.alerts(""))
			}
			a := ends[0]
			if a.Type != "SYN" || !slices.Equal(a.Sources, []netip.Addr{scan4}) || PortRanges(a.TCPPorts) != "1-100" || PortRanges(a.UDPPorts) != "161" || a.TTL != 50 {
				t.Errorf("scan %+v", a)
			}
			var refused int
			for _, ev := range col.events {
				if ev.Attempt != nil {
					refused++
					if ev.Attempt.Src != scan4 {
						t.Errorf("attempt from %v logged", ev.Attempt.Src)
					}
				}
			}
			// The burst of 20, and 3 more over the scan's 0.6 s at 5 a
			// second; the rest are rate-limited.
			if refused != 23 {
				t.Errorf("%d attempts logged, want 23", refused)
			}
		})
	}
	t.Run("no direction, no local", func(t *testing.T) {
		g := NewGuard(Options{})
		err := g.Replay(context.Background(), bytes.NewReader(writePcapng(pkts, false)), nil)
		var ce *CaptureError
		if !errors.As(err, &ce) {
			t.Fatalf("error %v", err)
		}
	})
}

// TestCaptureErrors: broken files are errors naming the offset.
func TestCaptureErrors(t *testing.T) {
	good := writePcap(t, scenario()[:3])
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"bad magic", []byte("GIF89a..................")},
		{"cut header", good[:10]},
		{"cut record", good[:len(good)-3]},
		{"huge record", append(append([]byte(nil), good[:24]...), 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0)},
	} {
		cr, err := NewCaptureReader(bytes.NewReader(c.b))
		for err == nil {
			_, err = cr.Next()
		}
		var ce *CaptureError
		if !errors.As(err, &ce) {
			t.Errorf("%s: %v, want a CaptureError", c.name, err)
		}
	}
}

func FuzzCaptureReader(f *testing.F) {
	f.Add(writePcap(f, scenario()[:4]))
	f.Add(writePcapng(scenario()[:4], true))
	f.Add(writePcapng(scenario()[:4], false))
	f.Fuzz(func(t *testing.T, b []byte) {
		cr, err := NewCaptureReader(bytes.NewReader(b))
		for n := 0; err == nil && n < 10000; n++ {
			var fr Frame
			fr, err = cr.Next()
			if err == nil {
				var p Packet
				_ = Parse(fr.IP, &p)
			}
		}
		if err != nil && err != io.EOF {
			var ce *CaptureError
			if !errors.As(err, &ce) {
				t.Fatalf("error of type %T: %v", err, err)
			}
		}
	})
}

// fakeBlocker records what it is asked to block.
type fakeBlocker struct {
	mu    sync.Mutex
	calls []netip.Addr
	durs  []time.Duration
}

func (f *fakeBlocker) Block(_ context.Context, a netip.Addr, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, a)
	f.durs = append(f.durs, d)
	return nil
}

func (f *fakeBlocker) blocked() []netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// TestBlock: the scanner is blocked once, for the duration; an allowed
// scanner, and this host, never.
func TestBlock(t *testing.T) {
	other := netip.MustParseAddr("198.18.0.77")
	var pkts []Packet
	at := t0
	for _, src := range []netip.Addr{scan4, other, local4} {
		for port := uint16(1); port <= 300; port++ {
			syn := Packet{At: at, Flow: Flow{Src: src, Dst: local4, SrcPort: 40000, DstPort: port, Proto: TCP}, Flags: SYN, TTL: 50}
			pkts = append(pkts, syn, Packet{At: at, Outgoing: true, Flow: syn.Flow.Reverse(), Flags: RST | ACK})
			at = at.Add(100 * time.Millisecond) // 30 s: updates too
		}
	}
	fb := &fakeBlocker{}
	var col collector
	g := NewGuard(Options{
		Config:  Config{Allow: []netip.Prefix{netip.PrefixFrom(other, 32)}},
		Sinks:   []Sink{SinkFunc(col.sink)},
		Blocker: fb, BlockFor: time.Hour,
		Local: func(a netip.Addr) bool { return a == local4 },
	})
	if err := g.Replay(context.Background(), bytes.NewReader(writePcap(t, pkts)), nil); err != nil {
		t.Fatal(err)
	}
	if got := fb.blocked(); !slices.Equal(got, []netip.Addr{scan4}) || fb.durs[0] != time.Hour {
		t.Errorf("blocked %v for %v, want %v once for 1h", got, fb.durs, scan4)
	}
	// The block runs beside the replay: a report names the source in
	// blocked once it is done, and never another.
	for _, a := range col.alerts("") {
		if len(a.Blocked) > 0 && !slices.Equal(a.Blocked, []netip.Addr{scan4}) {
			t.Errorf("scan %d %s lists %v as blocked", a.ID, a.Phase, a.Blocked)
		}
	}
	if _, n := g.Stats(); n != 1 {
		t.Errorf("%d blocks counted", n)
	}
}

// stuckBlocker's Block waits for release (or its context), and says it
// was called on entered.
type stuckBlocker struct {
	entered chan netip.Addr
	release chan error
	calls   atomic.Int32
}

func (b *stuckBlocker) Block(ctx context.Context, a netip.Addr, _ time.Duration) error {
	b.calls.Add(1)
	b.entered <- a
	select {
	case err := <-b.release:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// scanPackets feeds g a SYN scan of ports lo to hi from src, 10 ms
// apart from at on, with this host's resets, and returns the time after.
func scanPackets(g *Guard, src netip.Addr, lo, hi uint16, at time.Time) time.Time {
	for port := lo; port <= hi; port++ {
		syn := Packet{At: at, Flow: Flow{Src: src, Dst: local4, SrcPort: 40000, DstPort: port, Proto: TCP}, Flags: SYN, TTL: 50}
		g.Packet(&syn)
		g.Packet(&Packet{At: at, Outgoing: true, Flow: syn.Flow.Reverse(), Flags: RST | ACK})
		at = at.Add(10 * time.Millisecond)
	}
	return at
}

// TestBlockOutsideLock: while the Blocker is busy, packets are processed
// and scans reported; the source is not handed to it again meanwhile; a
// failed block is logged with the source and the reason.
func TestBlockOutsideLock(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(map[bool]string{false: "ok", true: "failed"}[fail], func(t *testing.T) {
			fb := &stuckBlocker{entered: make(chan netip.Addr, 4), release: make(chan error, 1)}
			var col collector
			var logBuf bytes.Buffer
			var logMu sync.Mutex
			g := NewGuard(Options{
				Config:  Config{UpdateEvery: 100 * time.Millisecond},
				Sinks:   []Sink{SinkFunc(col.sink)},
				Logger:  slog.New(slog.NewTextHandler(&lockedWriter{w: &logBuf, mu: &logMu}, nil)),
				Blocker: fb, BlockFor: time.Hour,
			})
			// A bound on waiting, not a measure of speed: with the
			// blocker run under the engine's lock, the packets would
			// wait for it.
			feed := func(lo, hi uint16, at time.Time) time.Time {
				done := make(chan time.Time, 1)
				go func() { done <- scanPackets(g, scan4, lo, hi, at) }()
				select {
				case at = <-done:
				case <-time.After(time.Minute):
					t.Fatal("packets wait for the blocker")
				}
				return at
			}
			at := feed(1, 100, t0)
			if got := <-fb.entered; got != scan4 {
				t.Fatalf("blocking %v, want %v", got, scan4)
			}
			// The block is in flight: more of the scan goes through the
			// engine meanwhile, and is reported.
			at = feed(101, 300, at)
			if st, _ := g.Stats(); st.Packets != 600 {
				t.Errorf("%d packets processed while the block was in flight, want 600", st.Packets)
			}
			if n := len(col.alerts(PhaseUpdate)); n == 0 {
				t.Error("no update of the scan while the block was in flight")
			}
			var err error
			if fail {
				err = errors.New("nftables says no")
			}
			fb.release <- err
			g.WaitBlocks()
			if n := fb.calls.Load(); n != 1 {
				t.Errorf("the blocker was called %d times, want once", n)
			}
			g.Flush(at.Add(time.Hour))
			ends := col.alerts(PhaseEnd)
			_, nBlock := g.Stats()
			logMu.Lock()
			logged := logBuf.String()
			logMu.Unlock()
			if fail {
				if nBlock != 0 || len(ends) != 1 || len(ends[0].Blocked) != 0 {
					t.Errorf("%d blocks counted, ends %+v", nBlock, ends)
				}
				if !strings.Contains(logged, "block failed") || !strings.Contains(logged, "source="+scan4.String()) || !strings.Contains(logged, "nftables says no") {
					t.Errorf("log %q", logged)
				}
				return
			}
			if nBlock != 1 || len(ends) != 1 || !slices.Equal(ends[0].Blocked, []netip.Addr{scan4}) {
				t.Errorf("%d blocks counted, ends %+v", nBlock, ends)
			}
		})
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// TestSinkError: a sink that fails stops the replay with a SinkError.
func TestSinkError(t *testing.T) {
	g := NewGuard(Options{Sinks: []Sink{SinkFunc(func(Event) error { return errors.New("disk full") })}})
	err := g.Replay(context.Background(), bytes.NewReader(writePcap(t, scenario())), nil)
	var se *SinkError
	if !errors.As(err, &se) {
		t.Fatalf("error %v", err)
	}
}

// TestMetrics: the exposition parses with Prometheus's own parser and
// counts the scenario.
func TestMetrics(t *testing.T) {
	g := NewGuard(Options{})
	if err := g.Replay(context.Background(), bytes.NewReader(writePcap(t, scenario())), nil); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := g.WriteMetrics(&b); err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(&b)
	if err != nil {
		t.Fatalf("%v in:\n%s", err, b.String())
	}
	if v := fams["portkit_guard_scans_total"].GetMetric()[0]; v.GetLabel()[0].GetValue() != "SYN" || v.GetCounter().GetValue() != 1 {
		t.Errorf("scans %v", v)
	}
	if v := fams["portkit_guard_packets_total"].GetMetric()[0].GetCounter().GetValue(); v != float64(len(scenario())) {
		t.Errorf("packets %v", v)
	}
	if v := fams["portkit_guard_refused_total"].GetMetric()[0].GetCounter().GetValue(); v != 99 {
		t.Errorf("refused %v, want 98 resets and 1 ICMP", v)
	}
}

// TestSyslog: one datagram per event, scanlogd-style.
func TestSyslog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Skip("no unix datagram sockets here:", err)
	}
	defer ln.Close()
	sl, err := DialSyslog(path, "portkit-guard", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	g := NewGuard(Options{Sinks: []Sink{sl}, Config: Config{LogBurst: 1, LogRate: 0.001}})
	if err := g.Replay(context.Background(), bytes.NewReader(writePcap(t, scenario())), nil); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	var lines []string
	ln.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range 3 { // an attempt, the scan's start and end
		n, err := ln.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(buf[:n]))
	}
	if !strings.HasPrefix(lines[0], "<30>") || !strings.Contains(lines[0], "198.18.0.1:40000 to 198.18.0.2:1 tcp, rst, SYN, TTL 50") {
		t.Errorf("attempt line %q", lines[0])
	}
	if !strings.HasPrefix(lines[1], "<28>") || !strings.Contains(lines[1], "portkit-guard[") ||
		!strings.Contains(lines[1], "198.18.0.1 to 198.18.0.2 ports tcp 1-") || !strings.Contains(lines[1], ", SYN, TTL 50 @") {
		t.Errorf("alert line %q", lines[1])
	}
	if !strings.Contains(lines[2], "ports tcp 1-100 udp 161 (101), SYN") || !strings.Contains(lines[2], "end ports, 101 probes") {
		t.Errorf("end line %q", lines[2])
	}
	_ = os.Remove(path)
}

// TestSyslogStuck: a syslog daemon that does not read drops lines, and
// the guard goes on.
func TestSyslogStuck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Skip("no unix datagram sockets here:", err)
	}
	defer ln.Close()
	sl, err := DialSyslog(path, "portkit-guard", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	sl.WriteTimeout = 10 * time.Millisecond
	var col collector
	g := NewGuard(Options{Sinks: []Sink{sl, SinkFunc(col.sink)}})
	if err := g.Replay(context.Background(), bytes.NewReader(writePcap(t, scenario())), nil); err != nil {
		t.Fatal(err)
	}
	if sl.Dropped() == 0 || len(col.alerts(PhaseEnd)) != 1 {
		t.Errorf("%d dropped, %d scans ended", sl.Dropped(), len(col.alerts(PhaseEnd)))
	}
}
