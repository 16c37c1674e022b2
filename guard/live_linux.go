//go:build linux

package guard

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portkit/portkit/internal/packetring"
)

// Open opens the live sensor in the calling thread's network namespace:
// one packet ring over every interface, of which only those in ifaces
// (indexes; empty: all but loopback, and loopback too with includeLo)
// are read. From its return on, packets are queued.
func (g *Guard) Open(ifaces []int, includeLo bool) (*Sensor, error) {
	filter, err := Filter(guardSnaplen)
	if err != nil {
		return nil, err
	}
	// A ring that hands each packet over as it lands: a scan's first
	// packets are seen at once, where a ring of blocks held them until a
	// block was full or its timer fired (about 0.8 ms later for a lone
	// packet, measured); a flood is still read many frames at a time.
	// Once every packet there is has been read, the sinks write the
	// lines they held back meanwhile.
	ring, err := packetring.Open(packetring.Config{Filter: filter, Snaplen: guardSnaplen, Outgoing: true, Immediate: true, Frames: guardRingFrames, Idle: g.Idle})
	if err != nil {
		return nil, err
	}
	s := &Sensor{g: g, ring: ring}
	s.SetInterfaces(ifaces, includeLo)
	g.mu.Lock()
	g.dropped = func() uint64 { n, _ := ring.Dropped(); return n }
	g.mu.Unlock()
	return s, nil
}

// The live capture keeps guardSnaplen bytes of a packet: the headers
// Parse reads, IP options and TCP options at their longest (120 bytes),
// an ICMP error's quoted headers, and room for IPv6 extension headers.
// Its ring holds guardRingFrames packets, about a second of a flood of
// 100,000 packets a second while guard is off the CPU of a busy host
// (240 bytes a frame: 23 MiB).
const (
	guardSnaplen    = 160
	guardRingFrames = 100_000
)

// Sensor is a live capture feeding a Guard.
type Sensor struct {
	g     *Guard
	ring  *packetring.Ring
	ifset atomic.Pointer[ifaceSet]
}

// ifaceSet is which interfaces the sensor reads.
type ifaceSet struct {
	want   map[int]bool // empty: all
	lo     []int
	skipLo bool
}

// SetInterfaces changes the interfaces read (a reload).
func (s *Sensor) SetInterfaces(ifaces []int, includeLo bool) {
	set := &ifaceSet{want: map[int]bool{}, skipLo: !includeLo}
	for _, i := range ifaces {
		set.want[i] = true
	}
	if ifs, err := net.Interfaces(); err == nil {
		for _, i := range ifs {
			if i.Flags&net.FlagLoopback != 0 {
				set.lo = append(set.lo, i.Index)
			}
		}
	}
	s.ifset.Store(set)
}

func (s *Sensor) reads(ifindex int) bool {
	set := s.ifset.Load()
	if len(set.want) > 0 {
		return set.want[ifindex]
	}
	if set.skipLo {
		for _, l := range set.lo {
			if l == ifindex {
				return false
			}
		}
	}
	return true
}

// Run reads packets until ctx is done (nil) or reading or a sink fails.
func (s *Sensor) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // time moves on without packets too
		defer wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				s.g.Tick(now)
				if s.g.Err() != nil {
					cancel()
				}
			}
		}
	}()
	var p Packet
	err := s.ring.Run(ctx, func(pkt []byte, info packetring.Info) {
		if !s.reads(info.Interface) {
			return
		}
		p.At, p.Outgoing = info.At, info.Outgoing
		if Parse(pkt, &p) != nil {
			return
		}
		s.g.Packet(&p)
	})
	cancel()
	wg.Wait()
	s.g.Idle()
	if e := s.g.Err(); e != nil {
		return e
	}
	return err
}

// Close closes the capture.
func (s *Sensor) Close() error { return s.ring.Close() }
