//go:build linux

package packetring

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/portkit/portkit/internal/netnstest"
)

// udpListen listens on UDP port (zero: any) of addr in namespace ns.
func udpListen(t *testing.T, ns string, addr net.IP, port int) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	netnstest.Run(t, ns, func() (err error) {
		c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: addr, Port: port})
		return err
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// openIn opens a Ring in namespace ns.
func openIn(t *testing.T, ns string, cfg Config) *Ring {
	t.Helper()
	var r *Ring
	netnstest.Run(t, ns, func() (err error) {
		r, err = Open(cfg)
		return err
	})
	t.Cleanup(func() { r.Close() })
	return r
}

// ifindex is the index of the interface named as namespace ns, in ns.
func ifindex(t *testing.T, ns string) int {
	t.Helper()
	var i int
	netnstest.Run(t, ns, func() error {
		ifi, err := net.InterfaceByName(ns)
		if err == nil {
			i = ifi.Index
		}
		return err
	})
	return i
}

// receiveEach reads one datagram from c per payload, so each has passed
// the interface (and any ring on it) before the next is sent.
func receiveEach(t *testing.T, c *net.UDPConn, n int) {
	t.Helper()
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range n {
		if _, _, err := c.ReadFrom(buf); err != nil {
			t.Fatal(err)
		}
	}
}

// collectUntil runs r until it has read want packets or 10 s have passed,
// then stops it and returns what it read.
func collectUntil(t *testing.T, r *Ring, want int) []seen {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []seen
	err := r.Run(ctx, func(pkt []byte, info Info) {
		got = append(got, seen{string(pkt[28:]), info, time.Now()})
		if len(got) == want {
			cancel()
		}
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return got
}

// TestImmediateNamespace: an Immediate ring in the target namespace reads
// the datagrams its filter passes, in both directions, with the veth's
// index, the kernel's arrival time, and the outgoing mark; the outgoing
// ones only when asked for.
func TestImmediateNamespace(t *testing.T) {
	p := netnstest.New(t, "pri")
	scanner, target := net.IP(netnstest.Scanner4.AsSlice()), net.IP(netnstest.Target4.AsSlice())
	dst := udpListen(t, p.Target, target, 0)
	port := dst.LocalAddr().(*net.UDPAddr).Port
	// The same port at the scanner: the filter passes the target's
	// datagrams to it as well, outgoing.
	back := udpListen(t, p.Scanner, scanner, port)
	other := udpListen(t, p.Target, target, 0)
	src := udpListen(t, p.Scanner, scanner, 0)
	veth := ifindex(t, p.Target)

	for _, outgoing := range []bool{false, true} {
		r := openIn(t, p.Target, Config{Filter: udpToPort(t, uint16(port), 256), Immediate: true, Outgoing: outgoing})
		start := time.Now()
		src.WriteTo([]byte("one"), dst.LocalAddr())
		src.WriteTo([]byte("elsewhere"), other.LocalAddr())
		receiveEach(t, other, 1)
		receiveEach(t, dst, 1)
		dst.WriteTo([]byte("back"), back.LocalAddr())
		receiveEach(t, back, 1)
		src.WriteTo([]byte("two"), dst.LocalAddr())
		receiveEach(t, dst, 1)

		want := []string{"one", "two"}
		wantOut := []bool{false, false}
		if outgoing {
			want = []string{"one", "back", "two"}
			wantOut = []bool{false, true, false}
		}
		got := collectUntil(t, r, len(want))
		if len(got) != len(want) {
			t.Fatalf("outgoing=%v: read %d packets, want %q", outgoing, len(got), want)
		}
		for i, s := range got {
			if s.payload != want[i] || s.info.Outgoing != wantOut[i] {
				t.Errorf("outgoing=%v: packet %d: %q outgoing=%v, want %q outgoing=%v", outgoing, i, s.payload, s.info.Outgoing, want[i], wantOut[i])
			}
			if s.info.Interface != veth {
				t.Errorf("outgoing=%v: %q on interface %d, want the veth (%d)", outgoing, s.payload, s.info.Interface, veth)
			}
			// The kernel's clock and time.Now's are the same wall clock,
			// read at microsecond precision or better.
			if s.info.At.Before(start.Add(-time.Millisecond)) || s.info.At.After(s.received) {
				t.Errorf("outgoing=%v: %q arrived at %v, before the test (%v) or after it was read (%v)", outgoing, s.payload, s.info.At, start, s.received)
			}
		}
		if d, err := r.Dropped(); err != nil || d != 0 {
			t.Errorf("outgoing=%v: Dropped = %d, %v", outgoing, d, err)
		}
		r.Close()
	}
}

// TestImmediateDrops: datagrams that find every frame of an Immediate ring
// taken, while nothing reads it, are counted as dropped; the frames are
// then read in order, and once they are handed back the ring reads on.
func TestImmediateDrops(t *testing.T) {
	p := netnstest.New(t, "prd")
	scanner, target := net.IP(netnstest.Scanner4.AsSlice()), net.IP(netnstest.Target4.AsSlice())
	dst := udpListen(t, p.Target, target, 0)
	src := udpListen(t, p.Scanner, scanner, 0)
	port := dst.LocalAddr().(*net.UDPAddr).Port
	r := openIn(t, p.Target, Config{Filter: udpToPort(t, uint16(port), 256), Immediate: true, Frames: 8})
	frames := r.sys.frames
	if frames < 8 || frames > 64 {
		t.Fatalf("a ring of 8 frames has %d", frames)
	}
	sent := frames + 20
	for i := range sent {
		fmt.Fprintf(writerTo{src, dst.LocalAddr()}, "%03d", i)
		receiveEach(t, dst, 1)
	}
	got := collectUntil(t, r, frames)
	dropped, err := r.Dropped()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != frames || dropped != uint64(sent-frames) {
		t.Fatalf("read %d and dropped %d of %d datagrams through %d frames; want the ring full and the rest dropped", len(got), dropped, sent, frames)
	}
	for i, s := range got {
		if want := fmt.Sprintf("%03d", i); s.payload != want {
			t.Fatalf("read %q as packet %d, want %q: out of order or garbled", s.payload, i, want)
		}
	}
	// Round the ring twice more, read as they come.
	var mu sync.Mutex
	var again []string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- r.Run(ctx, func(pkt []byte, _ Info) {
			mu.Lock()
			defer mu.Unlock()
			again = append(again, string(pkt[28:]))
		})
	}()
	for i := range 2 * frames {
		fmt.Fprintf(writerTo{src, dst.LocalAddr()}, "x%03d", i)
		receiveEach(t, dst, 1)
		// Let the reader keep up: the frames are not to fill again.
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			mu.Lock()
			n := len(again)
			mu.Unlock()
			if n > i {
				break
			}
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(again) != 2*frames {
		t.Fatalf("read %d of %d datagrams after the drops", len(again), 2*frames)
	}
	for i, s := range again {
		if want := fmt.Sprintf("x%03d", i); s != want {
			t.Fatalf("read %q as packet %d after the drops, want %q", s, i, want)
		}
	}
	if d, _ := r.Dropped(); d != dropped {
		t.Errorf("Dropped went from %d to %d with the reader keeping up", dropped, d)
	}
}

type writerTo struct {
	c  *net.UDPConn
	to net.Addr
}

func (w writerTo) Write(b []byte) (int, error) { return w.c.WriteTo(b, w.to) }

// TestCloseWhileReading: Close from another goroutine makes a Run in
// progress return nil, whether it waits for a packet or is reading a
// stream of them, or has not begun yet, in every mode (run with -race: close must not unmap the
// ring under the reader).
func TestCloseWhileReading(t *testing.T) {
	p := netnstest.New(t, "prc")
	scanner, target := net.IP(netnstest.Scanner4.AsSlice()), net.IP(netnstest.Target4.AsSlice())
	dst := udpListen(t, p.Target, target, 0)
	src := udpListen(t, p.Scanner, scanner, 0)
	port := dst.LocalAddr().(*net.UDPAddr).Port
	for _, c := range []struct {
		name   string
		cfg    Config
		stream bool
	}{
		{"blocks, idle", Config{}, false},
		{"blocks, stream", Config{}, true},
		{"immediate, idle", Config{Immediate: true}, false},
		{"immediate, stream", Config{Immediate: true}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Filter = udpToPort(t, uint16(port), 256)
			r := openIn(t, p.Target, c.cfg)
			stop := make(chan struct{})
			var senders sync.WaitGroup
			if c.stream {
				senders.Add(1)
				go func() {
					defer senders.Done()
					for i := 0; i < 200000; i++ {
						select {
						case <-stop:
							return
						default:
						}
						src.WriteTo([]byte("stream"), dst.LocalAddr())
					}
				}()
			}
			read := make(chan struct{}, 1)
			done := make(chan error, 1)
			go func() {
				done <- r.Run(context.Background(), func([]byte, Info) {
					select {
					case read <- struct{}{}:
					default:
					}
				})
			}()
			if c.stream {
				select {
				case <-read:
				case <-time.After(10 * time.Second):
					t.Fatal("nothing read from the stream in 10 s")
				}
			} else {
				// Most likely waiting in the poller by now; if not, Run
				// on a closed Ring must return nil as well.
				time.Sleep(20 * time.Millisecond)
			}
			if err := r.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run after Close: %v, want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run still running 10 s after Close")
			}
			close(stop)
			senders.Wait()
		})
	}
}

// TestRunAfterClose: Run on a Ring closed before it began returns nil, as
// Run does when the Ring is closed under it.
func TestRunAfterClose(t *testing.T) {
	p := netnstest.New(t, "pra")
	for _, cfg := range []Config{{}, {Immediate: true}} {
		cfg.Filter = udpToPort(t, 9, 256)
		r := openIn(t, p.Target, cfg)
		if err := r.Close(); err != nil {
			t.Fatalf("Immediate=%v: Close: %v", cfg.Immediate, err)
		}
		if err := r.Run(context.Background(), func([]byte, Info) {}); err != nil {
			t.Errorf("Immediate=%v: Run after Close: %v, want nil", cfg.Immediate, err)
		}
	}
}

// TestBusy: an Immediate ring's reader counts as busy, and pauses, from
// paceBusyFrames frames within paceWindow on, and no longer once a window
// has gone by at a lower rate.
func TestBusy(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(f float64) time.Time { return t0.Add(time.Duration(f * float64(time.Millisecond))) }
	type read struct {
		n    int
		at   time.Time
		busy bool
	}
	for _, c := range []struct {
		name  string
		reads []read
	}{
		{"a packet now and then", []read{{1, ms(0), false}, {1, ms(2), false}, {1, ms(2.5), false}, {1, ms(9), false}}},
		{"a scan's burst below the rate", []read{{1, ms(0), false}, {10, ms(0.2), false}, {20, ms(0.9), false}, {2, ms(1.1), false}}},
		{"a flood", []read{{1, ms(0), false}, {20, ms(0.3), false}, {20, ms(0.6), true}, {40, ms(1.2), true}, {40, ms(2.4), true}}},
		{"a flood that ends", []read{{40, ms(0.5), true}, {40, ms(1.0), true}, {1, ms(30), false}, {1, ms(30.1), false}}},
		{"the rate over a long window", []read{{1, ms(0), false}, {33, ms(1), true}, {40, ms(3), false}}},
	} {
		var r ringSys
		r.paceFrom = t0
		for i, rd := range c.reads {
			if got := r.busy(rd.n, rd.at); got != rd.busy {
				t.Errorf("%s: read %d (%d frames at %v): busy %v, want %v", c.name, i, rd.n, rd.at.Sub(t0), got, rd.busy)
			}
		}
	}
}

// TestIdle: Config.Idle is called once every packet queued has been read,
// not between packets that were already waiting, and again after a lone
// packet; in both kinds of ring.
func TestIdle(t *testing.T) {
	p := netnstest.New(t, "pid")
	target := net.IP(netnstest.Target4.AsSlice())
	dst := udpListen(t, p.Target, target, 0)
	port := dst.LocalAddr().(*net.UDPAddr).Port
	src := udpListen(t, p.Scanner, net.IP(netnstest.Scanner4.AsSlice()), 0)
	for _, immediate := range []bool{true, false} {
		var events []string // of Run's goroutine only
		cfg := Config{Filter: udpToPort(t, uint16(port), 256), Immediate: immediate, Idle: func() { events = append(events, "idle") }}
		r := openIn(t, p.Target, cfg)
		const burst = 50
		for i := range burst {
			src.WriteTo(fmt.Appendf(nil, "b%02d", i), dst.LocalAddr())
		}
		receiveEach(t, dst, burst)
		time.Sleep(20 * time.Millisecond) // a block ring's last block handed over
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		done := make(chan error, 1)
		var mu sync.Mutex
		read := 0
		go func() {
			done <- r.Run(ctx, func(pkt []byte, info Info) {
				events = append(events, string(pkt[28:]))
				mu.Lock()
				read++
				mu.Unlock()
			})
		}()
		waitRead := func(n int) {
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				mu.Lock()
				got := read
				mu.Unlock()
				if got >= n {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("immediate=%v: read %d packets, want %d", immediate, got, n)
				}
			}
		}
		waitRead(burst)
		src.WriteTo([]byte("one"), dst.LocalAddr())
		receiveEach(t, dst, 1)
		waitRead(burst + 1)
		time.Sleep(20 * time.Millisecond)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		r.Close()
		var want []string
		for i := range burst {
			want = append(want, fmt.Sprintf("b%02d", i))
		}
		want = append(want, "idle", "one", "idle")
		// A block ring may hand the burst over in more than one block,
		// each read as it comes: the idle calls between them are allowed.
		got := events
		if !immediate {
			got = nil
			for i, e := range events {
				if e != "idle" || i+1 == len(events) || events[i+1] == "one" {
					got = append(got, e)
				}
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("immediate=%v: Run's calls %q, want %q", immediate, events, want)
		}
	}
}
