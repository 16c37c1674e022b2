package guard

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

var (
	t0     = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	local4 = netip.MustParseAddr("198.18.0.2")
	scan4  = netip.MustParseAddr("198.18.0.1")
)

// sim drives an engine with made-up packets and keeps what it reports.
type sim struct {
	t      *testing.T
	e      *Engine
	now    time.Time
	events []Event
}

func newSim(t *testing.T, cfg Config) *sim {
	s := &sim{t: t, now: t0}
	s.e = New(cfg, func(ev Event) { s.events = append(s.events, ev) })
	return s
}

func (s *sim) at(d time.Duration) { s.now = s.now.Add(d); s.e.Tick(s.now) }

func (s *sim) in(src netip.Addr, sport uint16, dst netip.Addr, dport uint16, proto Proto, flags uint8) *Packet {
	p := &Packet{At: s.now, Flow: Flow{Src: src, Dst: dst, SrcPort: sport, DstPort: dport, Proto: proto}, Flags: flags, TTL: 64, Seq: 1000}
	return p
}

func (s *sim) send(p *Packet) { p.At = s.now; s.e.Packet(p) }

// rst is this host's reset answering p.
func (s *sim) rst(p *Packet) {
	s.send(&Packet{Outgoing: true, Flow: p.Flow.Reverse(), Flags: RST | ACK, TTL: 64})
}

func (s *sim) unreach(p *Packet) {
	s.send(&Packet{Outgoing: true, Flow: Flow{Src: p.Dst, Dst: p.Src, Proto: ICMP}, ICMPType: 3, ICMPCode: 3, Quoted: p.Flow})
}

func (s *sim) alerts(phase Phase) []*Alert {
	var out []*Alert
	for _, ev := range s.events {
		if ev.Alert != nil && (phase == "" || ev.Alert.Phase == phase) {
			out = append(out, ev.Alert)
		}
	}
	return out
}

func (s *sim) attempts() []*Attempt {
	var out []*Attempt
	for _, ev := range s.events {
		if ev.Attempt != nil {
			out = append(out, ev.Attempt)
		}
	}
	return out
}

func (s *sim) finish() { s.e.Flush(s.now.Add(time.Hour)) }

func portsRange(lo, hi uint16) []uint16 {
	var out []uint16
	for p := lo; p <= hi; p++ {
		out = append(out, p)
	}
	return out
}

// oneScan checks that exactly one scan was reported, ended, and returns
// its summary.
func (s *sim) oneScan() *Alert {
	s.t.Helper()
	ends := s.alerts(PhaseEnd)
	starts := s.alerts(PhaseStart)
	if len(starts) != 1 || len(ends) != 1 {
		s.t.Fatalf("%d starts and %d ends, want one scan: %+v", len(starts), len(ends), s.alerts(""))
	}
	if starts[0].ID != ends[0].ID {
		s.t.Fatalf("start %d, end %d", starts[0].ID, ends[0].ID)
	}
	return ends[0]
}

// TestScanTypes: each scan type is told from its packets, with the
// source, the ports and the trigger.
func TestScanTypes(t *testing.T) {
	const lo, hi = 1000, 1099
	open := map[uint16]bool{1010: true, 1050: true}
	for _, c := range []struct {
		name  string
		probe func(s *sim, port uint16)
		want  string
	}{
		{"SYN", func(s *sim, port uint16) {
			p := s.in(scan4, 40000, local4, port, TCP, SYN)
			s.send(p)
			if open[port] { // SYN-ACK (unseen), then the scanner's reset
				s.send(s.in(scan4, 40000, local4, port, TCP, RST))
			} else {
				s.rst(p)
			}
		}, "SYN"},
		{"connect", func(s *sim, port uint16) {
			p := s.in(scan4, 40000+port, local4, port, TCP, SYN)
			p.SACKTS = true
			s.send(p)
			if open[port] {
				s.send(s.in(scan4, 40000+port, local4, port, TCP, ACK))
				s.send(s.in(scan4, 40000+port, local4, port, TCP, RST|ACK))
			} else {
				s.rst(p)
			}
		}, "connect"},
		{"connect without open ports", func(s *sim, port uint16) {
			p := s.in(scan4, 40000+port, local4, port, TCP, SYN)
			p.SACKTS = true
			s.send(p)
			s.rst(p)
		}, "connect"},
		{"FIN", func(s *sim, port uint16) {
			p := s.in(scan4, 40000, local4, port, TCP, FIN)
			s.send(p)
			if !open[port] {
				s.rst(p)
			}
		}, "FIN"},
		{"NULL", func(s *sim, port uint16) { s.send(s.in(scan4, 40000, local4, port, TCP, 0)) }, "NULL"},
		{"Xmas", func(s *sim, port uint16) {
			p := s.in(scan4, 40000, local4, port, TCP, FIN|PSH|URG)
			s.send(p)
			s.rst(p)
		}, "Xmas"},
		{"ACK", func(s *sim, port uint16) {
			p := s.in(scan4, 40000, local4, port, TCP, ACK)
			s.send(p)
			s.send(&Packet{Outgoing: true, Flow: p.Flow.Reverse(), Flags: RST})
		}, "ACK/Window"},
		{"Maimon", func(s *sim, port uint16) {
			p := s.in(scan4, 40000, local4, port, TCP, FIN|ACK)
			s.send(p)
			s.send(&Packet{Outgoing: true, Flow: p.Flow.Reverse(), Flags: RST})
		}, "Maimon"},
		{"UDP", func(s *sim, port uint16) {
			p := s.in(scan4, 40000, local4, port, UDP, 0)
			s.send(p)
			if port%10 == 0 { // the kernel's ICMP rate limit lets few through
				s.unreach(p)
			}
		}, "UDP"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSim(t, Config{})
			for port := uint16(lo); port <= hi; port++ {
				c.probe(s, port)
				s.at(10 * time.Millisecond)
			}
			s.finish()
			a := s.oneScan()
			if a.Type != c.want {
				t.Errorf("type %q, want %q", a.Type, c.want)
			}
			if !slices.Equal(a.Sources, []netip.Addr{scan4}) || !slices.Equal(a.Targets, []netip.Addr{local4}) {
				t.Errorf("sources %v targets %v", a.Sources, a.Targets)
			}
			got := a.TCPPorts
			if c.want == "UDP" {
				got = a.UDPPorts
			}
			// Without an answer an ACK or Maimon probe is not told from
			// a connection's packets: only the reset ports count.
			if !slices.Equal(got, portsRange(lo, hi)) {
				t.Errorf("ports %s, want %d-%d", PortRanges(got), lo, hi)
			}
			if a.Trigger != "short" || a.Kind != "ports" {
				t.Errorf("trigger %q kind %q", a.Trigger, a.Kind)
			}
		})
	}
}
