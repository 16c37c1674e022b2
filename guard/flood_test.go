package guard

import (
	"io"
	"net/netip"
	"runtime"
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
	g := NewGuard(Options{Sinks: []func(Event) error{JSONLines(io.Discard, nil)}})
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
		g := NewGuard(Options{Config: Config{MaxSources: 1 << 17}, Sinks: []func(Event) error{JSONLines(io.Discard, nil)}})
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
