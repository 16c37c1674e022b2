package guard

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"
)

// floodSource is the i-th spoofed source of a flood: 198.18.1.0 on, as
// bench/guard.sh's.
func floodSource(i int) netip.Addr {
	n := uint32(198<<24|18<<16|1<<8) + uint32(i)
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// floodFrames is a spoofed SYN from each of n sources to port 80 and
// this host's reset answering it, as the capture gives them: the
// packets' bytes.
func floodFrames(n int) (syns, rsts [][]byte) {
	for i := range n {
		syn := Packet{Flow: Flow{Src: floodSource(i), Dst: local4, SrcPort: uint16(1024 + i%60000), DstPort: 80, Proto: TCP}, Flags: SYN, TTL: 64, Seq: uint32(i) * 2654435761, IPID: uint16(i)}
		rst := Packet{Outgoing: true, Flow: syn.Flow.Reverse(), Flags: RST | ACK, TTL: 64}
		syns, rsts = append(syns, Marshal(&syn)), append(rsts, Marshal(&rst))
	}
	return syns, rsts
}

// BenchmarkFlood is the cost per packet of a spoofed SYN flood through
// what the live capture runs for each packet: Parse, the Guard (its
// lock, the engine) and the JSON Lines writer of the attempts logged,
// with guard's defaults (max_sources 65,536, so sources are evicted).
// 100,000 sources, each a SYN and this host's reset, in turn.
func BenchmarkFlood(b *testing.B) {
	syns, rsts := floodFrames(100000)
	g := NewGuard(Options{Sinks: []Sink{NewJSONLines(io.Discard, nil)}})
	var p Packet
	at := t0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		j := i % len(syns)
		at = at.Add(20 * time.Microsecond) // 50,000 SYNs a second
		for _, f := range [][]byte{syns[j], rsts[j]} {
			p.At, p.Outgoing = at, f == nil
			if err := Parse(f, &p); err != nil {
				b.Fatal(err)
			}
			p.Outgoing = p.Src == local4
			g.Packet(&p)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/packet")
}

// BenchmarkSourceMemory reports the heap each tracked source costs after
// a flood of 100,000 spoofed sources, one SYN each (reset by this host),
// all of them kept (max_sources above 100,000).
func BenchmarkSourceMemory(b *testing.B) {
	const n = 100000
	syns, rsts := floodFrames(n)
	for b.Loop() {
		g := NewGuard(Options{Config: Config{MaxSources: 1 << 17}, Sinks: []Sink{NewJSONLines(io.Discard, nil)}})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var p Packet
		at := t0
		for i := range n {
			at = at.Add(20 * time.Microsecond)
			for _, f := range [][]byte{syns[i], rsts[i]} {
				p.At = at
				if err := Parse(f, &p); err != nil {
					b.Fatal(err)
				}
				p.Outgoing = p.Src == local4
				g.Packet(&p)
			}
		}
		g.Tick(at.Add(3 * time.Second)) // every attempt decided
		runtime.GC()
		runtime.ReadMemStats(&after)
		st, _ := g.Stats()
		if st.Sources != n {
			b.Fatalf("%d sources tracked, want %d", st.Sources, n)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/source")
		runtime.KeepAlive(g)
	}
}

// TestOnePortInPlace: random traffic of a few sources over a few ports
// and targets, with every kind of probe and answer and gaps across every
// window, gives the same events whether sources keep their first port in
// place or make their maps at once.
func TestOnePortInPlace(t *testing.T) {
	targets := []netip.Addr{local4, netip.MustParseAddr("198.18.0.3"), netip.MustParseAddr("198.18.0.4")}
	ports := []uint16{22, 80, 443, 1000, 1001, 1002, 1003, 20000, 20001, 20002, 20003, 20004, 20005, 33000, 40000}
	gaps := []time.Duration{0, time.Millisecond, 10 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second, 4 * time.Second, 40 * time.Second, 6 * time.Minute, 11 * time.Minute}
	for _, cfg := range []Config{{}, {LongPorts: 4, SweepHosts: 2, ShortThreshold: 5, EndAfter: 5 * time.Second}, {ShortThreshold: 3, PrivWeight: 3}} {
		for seed := range uint64(20) {
			r := rand.New(rand.NewPCG(seed, 7))
			var pkts []Packet
			at := t0
			for range 3000 {
				at = at.Add(gaps[r.IntN(len(gaps))] * time.Duration(r.IntN(2)))
				src := srcN(r.IntN(6))
				f := Flow{Src: src, Dst: targets[r.IntN(len(targets))], SrcPort: uint16(30000 + r.IntN(50)), DstPort: ports[r.IntN(len(ports))], Proto: TCP}
				switch r.IntN(6) {
				case 0, 1: // SYN refused
					pkts = append(pkts, Packet{At: at, Flow: f, Flags: SYN, TTL: 60}, Packet{At: at, Outgoing: true, Flow: f.Reverse(), Flags: RST | ACK})
				case 2: // SYN dropped
					pkts = append(pkts, Packet{At: at, Flow: f, Flags: SYN, TTL: 60, SACKTS: r.IntN(2) == 0})
				case 3: // a connection
					pkts = append(pkts, Packet{At: at, Flow: f, Flags: SYN, TTL: 60, SACKTS: true}, Packet{At: at, Flow: f, Flags: ACK, TTL: 60})
				case 4: // UDP refused
					f.Proto = UDP
					pkts = append(pkts, Packet{At: at, Flow: f, TTL: 60}, Packet{At: at, Outgoing: true, Flow: Flow{Src: f.Dst, Dst: f.Src, Proto: ICMP}, ICMPType: 3, ICMPCode: 3, Quoted: f})
				case 5: // FIN
					pkts = append(pkts, Packet{At: at, Flow: f, Flags: FIN, TTL: 60})
				}
			}
			run := func(mapsOnly bool) []string {
				var out []string
				e := New(cfg, func(ev Event) {
					b, err := ev.MarshalJSON()
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, string(b))
				})
				e.mapsOnly = mapsOnly
				for i := range pkts {
					p := pkts[i]
					e.Packet(&p)
				}
				e.Flush(at.Add(time.Hour))
				st := e.Stats()
				out = append(out, fmt.Sprintf("%+v", st))
				return out
			}
			inPlace, maps := run(false), run(true)
			if !slices.Equal(inPlace, maps) {
				for i := range min(len(inPlace), len(maps)) {
					if inPlace[i] != maps[i] {
						t.Fatalf("config %+v seed %d: event %d differs:\n in place %s\n maps     %s", cfg, seed, i, inPlace[i], maps[i])
					}
				}
				t.Fatalf("config %+v seed %d: %d events in place, %d with maps", cfg, seed, len(inPlace), len(maps))
			}
			if len(inPlace) < 5 {
				t.Errorf("config %+v seed %d: only %d events: the traffic detects nothing", cfg, seed, len(inPlace))
			}
		}
	}
}
