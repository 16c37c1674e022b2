//go:build linux

package packetring

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/bpf"
)

// udpToPort is a filter that keeps IPv4 UDP datagrams to port whole (up
// to snaplen bytes) and drops everything else.
func udpToPort(t *testing.T, port uint16, snaplen uint32) []bpf.RawInstruction {
	t.Helper()
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 0, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x45, SkipFalse: 5}, // IPv4, no options
		bpf.LoadAbsolute{Off: 9, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 17, SkipFalse: 3}, // UDP
		bpf.LoadAbsolute{Off: 22, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(port), SkipFalse: 1},
		bpf.RetConstant{Val: snaplen},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	return prog
}

type seen struct {
	payload  string
	info     Info
	received time.Time
}

// collect runs r until ctx ends and returns what it read.
func collect(ctx context.Context, t *testing.T, r *Ring) func() []seen {
	var (
		mu   sync.Mutex
		got  []seen
		done = make(chan error, 1)
	)
	go func() {
		done <- r.Run(ctx, func(pkt []byte, info Info) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, seen{string(pkt[28:]), info, time.Now()})
		})
	}()
	return func() []seen {
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		return got
	}
}

// TestRingLoopback sends datagrams over lo and checks that the ring reads
// exactly those its filter passes, with lo's index, and the outgoing copy
// only when asked for.
func TestRingLoopback(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: opens a packet socket")
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skip("no lo interface:", err)
	}
	dst, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	other, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	port := uint16(dst.LocalAddr().(*net.UDPAddr).Port)

	for _, outgoing := range []bool{false, true} {
		r, err := Open(Config{Filter: udpToPort(t, port, 256), Interface: lo.Index, Outgoing: outgoing})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		wait := collect(ctx, t, r)
		c, err := net.DialUDP("udp4", nil, dst.LocalAddr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("one"))
		c.WriteTo([]byte("elsewhere"), other.LocalAddr())
		c.Write([]byte("two"))
		c.Close()
		// Both datagrams were delivered to dst, so they passed lo.
		buf := make([]byte, 16)
		dst.SetReadDeadline(time.Now().Add(5 * time.Second))
		for range 2 {
			if _, _, err := dst.ReadFrom(buf); err != nil {
				t.Fatal(err)
			}
		}
		// The ring hands a block over a millisecond or so after its
		// first packet.
		time.Sleep(50 * time.Millisecond)
		cancel()
		got := wait()
		r.Close()

		want := []string{"one", "two"}
		if outgoing {
			want = []string{"one", "one", "two", "two"}
		}
		var payloads []string
		outs := 0
		for _, s := range got {
			payloads = append(payloads, s.payload)
			if s.info.Interface != lo.Index {
				t.Errorf("outgoing=%v: %q on interface %d, want lo (%d)", outgoing, s.payload, s.info.Interface, lo.Index)
			}
			if s.info.At.IsZero() || s.info.At.After(s.received) {
				t.Errorf("outgoing=%v: %q arrived at %v, read at %v", outgoing, s.payload, s.info.At, s.received)
			}
			if s.info.Outgoing {
				outs++
			}
		}
		if len(payloads) != len(want) {
			t.Fatalf("outgoing=%v: read %q, want %q", outgoing, payloads, want)
		}
		for i := range want {
			if payloads[i] != want[i] {
				t.Fatalf("outgoing=%v: read %q, want %q", outgoing, payloads, want)
			}
		}
		if wantOuts := len(want) / 2; outgoing && outs != wantOuts {
			t.Errorf("outgoing=%v: %d packets marked outgoing, want %d", outgoing, outs, wantOuts)
		}
		if !outgoing && outs != 0 {
			t.Errorf("outgoing=false: %d outgoing packets delivered", outs)
		}
		if d, err := r.Dropped(); err == nil && d != 0 {
			t.Errorf("Dropped = %d", d)
		}
	}
}

func TestOpenNeedsFilter(t *testing.T) {
	_, err := Open(Config{})
	var op *OpError
	if !errors.As(err, &op) {
		t.Fatalf("Open without a filter: %v, want an *OpError", err)
	}
}

// The filter's port test reads the destination port where an IPv4 header
// without options puts it.
func TestFilterOffsets(t *testing.T) {
	var h [28]byte
	h[0], h[9] = 0x45, 17
	binary.BigEndian.PutUint16(h[22:], 4242)
	vm, err := bpf.NewVM(disassemble(t, udpToPort(t, 4242, 99)))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := vm.Run(h[:]); n != 99 {
		t.Errorf("filter kept %d bytes of a matching datagram, want its snaplen, 99", n)
	}
	binary.BigEndian.PutUint16(h[22:], 4243)
	if n, _ := vm.Run(h[:]); n != 0 {
		t.Errorf("filter kept %d bytes of another port's datagram", n)
	}
}

func disassemble(t *testing.T, raw []bpf.RawInstruction) []bpf.Instruction {
	t.Helper()
	ins, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("cannot disassemble the filter")
	}
	return ins
}

// TestRingBlocks reads through a ring of many one-page blocks, sized by
// Config, round it several times: each datagram is read in order, or
// counted as dropped.
func TestRingBlocks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: opens a packet socket")
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skip("no lo interface:", err)
	}
	dst, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	port := uint16(dst.LocalAddr().(*net.UDPAddr).Port)
	const blocks, sent = 8, 64
	r, err := Open(Config{Filter: udpToPort(t, port, 256), Interface: lo.Index, Blocks: blocks, BlockSize: os.Getpagesize()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wait := collect(ctx, t, r)
	c, err := net.DialUDP("udp4", nil, dst.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	dst.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := range sent {
		fmt.Fprintf(c, "%03d", i)
		if _, _, err := dst.ReadFrom(buf); err != nil {
			t.Fatal(err)
		}
		// Blocks are handed over a millisecond or so after their first
		// packet: spaced so, the datagrams go round the ring.
		time.Sleep(2 * time.Millisecond)
	}
	c.Close()
	time.Sleep(50 * time.Millisecond)
	cancel()
	got := wait()
	dropped, err := r.Dropped()
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(got))+dropped != sent || len(got) <= blocks {
		t.Fatalf("read %d and dropped %d of %d datagrams through %d blocks; want all counted, and more read than blocks", len(got), dropped, sent, blocks)
	}
	last := -1
	for _, s := range got {
		var n int
		if _, err := fmt.Sscanf(s.payload, "%d", &n); err != nil || n <= last {
			t.Fatalf("read %q after %d: out of order or garbled", s.payload, last)
		}
		last = n
	}
}

// TestOpenBlockSize: a block size that is not whole pages, or too small
// for a packet of the snap length, is refused before any socket is made.
func TestOpenBlockSize(t *testing.T) {
	filter := []bpf.RawInstruction{{Op: 0x06, K: 0}} // ret #0
	for _, cfg := range []Config{
		{Filter: filter, BlockSize: os.Getpagesize() + 1},
		{Filter: filter, BlockSize: os.Getpagesize(), Snaplen: os.Getpagesize()},
	} {
		var op *OpError
		if _, err := Open(cfg); !errors.As(err, &op) || !strings.Contains(err.Error(), "block size") {
			t.Errorf("Open with block size %d, snap length %d: %v, want an *OpError on the block size", cfg.BlockSize, cfg.Snaplen, err)
		}
	}
}
