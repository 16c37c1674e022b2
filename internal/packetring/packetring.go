// Package packetring reads packets off the network through an AF_PACKET
// socket with a classic BPF filter and a memory-mapped TPACKET_V3 ring, in
// pure Go on Linux (no cgo, no libpcap). It is the one packet reader shared
// by the scanner's raw engines, the knock daemon and the scan sensor.
//
// The socket is SOCK_DGRAM, so a packet starts at its IP header. The filter
// is attached before the socket is bound to a protocol, so no unfiltered
// packet is queued in between: the kernel drops everything the filter
// refuses before copying it. What passes is copied into the ring in blocks,
// with its arrival time, and the reader is woken once a block (when it is
// full, or a millisecond or so after its first packet), not once a packet:
// at a hundred thousand packets a second a wake-up per packet cost more CPU
// than all the rest of the reading. Without a ring (a kernel before 3.2)
// it reads with recvmmsg.
//
// Config.Immediate trades that for latency: a TPACKET_V2 ring of fixed
// frames, each handed to the reader as soon as the kernel has filled it.
// A reader that keeps up is woken per packet; one that falls behind finds
// many frames ready and reads them in a row, without a system call each,
// and under a flood it pauses briefly once it has read them all.
package packetring

import (
	"context"
	"fmt"
	"os"
	"time"

	"golang.org/x/net/bpf"
)

// OpError is an error of a socket operation, like net.OpError.
type OpError struct {
	Op  string // "socket", "setsockopt SO_ATTACH_FILTER", "bind", "recvmmsg", …
	Err error
}

func (e *OpError) Error() string { return fmt.Sprintf("packet socket: %s: %v", e.Op, e.Err) }
func (e *OpError) Unwrap() error { return e.Err }

// DefaultSnaplen is how many bytes of a packet are kept when Config says
// nothing: enough for the IP and transport headers of an ICMP error with
// the headers it quotes, and a small payload.
const DefaultSnaplen = 256

// Config configures a Ring.
type Config struct {
	// Filter is the classic BPF program run on each packet, from its IP
	// header (the socket is SOCK_DGRAM); it returns how many bytes to
	// keep, zero to drop the packet. Required.
	Filter []bpf.RawInstruction
	// Interface is the index of the one interface to read from; zero
	// reads from all of them.
	Interface int
	// Snaplen is how many bytes of each packet are kept; zero means
	// DefaultSnaplen.
	Snaplen int
	// Batch is how many packets one recvmmsg reads at most, where the
	// kernel has no ring; zero means 64.
	Batch int
	// Outgoing delivers the packets this host sends too; by default they
	// are skipped.
	Outgoing bool
	// Blocks and BlockSize size the ring: Blocks blocks of BlockSize
	// bytes (a multiple of the page size, room for a packet of Snaplen);
	// zero means DefaultBlocks and DefaultBlockSize. The kernel hands a
	// block over once it is full or a millisecond after its first packet,
	// so under a steady flow the ring holds about Blocks milliseconds
	// when blocks are big for the flow: a reader that may be kept off the
	// CPU longer (a daemon on a busy host) wants more, smaller blocks.
	Blocks    int
	BlockSize int
	// Immediate makes a ring that hands each packet over as soon as it
	// is copied (TPACKET_V2, one fixed frame a packet), not a block at a
	// time: for a reader that must see a lone packet at once rather than
	// up to a millisecond or so later. It costs memory (every frame has
	// room for Snaplen bytes, however short the packet) and, while the
	// reader keeps up, a wake-up per packet; a reader that reads 32,000
	// packets a second or more pauses a quarter of a millisecond (up to
	// about one) whenever it has read them all, so a flood is read a
	// batch per wake-up. Blocks and BlockSize are ignored; Frames sizes
	// the ring. Where the kernel has no TPACKET_V2 ring it reads with
	// recvmmsg, which is per packet too.
	Immediate bool
	// Frames is how many packets an Immediate ring holds; zero means
	// DefaultFrames. Each takes Snaplen bytes and some 80 more, rounded
	// up to 16.
	Frames int
	// Idle, if not nil, is called by Run, in its goroutine, whenever it
	// has read every packet there is, before it waits for more: a reader
	// that holds its output back while packets keep coming writes it
	// here.
	Idle func()
}

// The ring's size by default: DefaultBlocks blocks of DefaultBlockSize
// bytes (4 MiB: some 29,000 replies of a SYN scan).
const (
	DefaultBlocks    = 64
	DefaultBlockSize = 64 << 10
)

// DefaultFrames is how many packets an Immediate ring holds when Config
// says nothing: 5.25 MiB at DefaultSnaplen.
const DefaultFrames = 16384

// Info is what the kernel tells of a packet besides its bytes.
type Info struct {
	At        time.Time // when it arrived: the kernel's timestamp from the ring, else when it was read
	Interface int       // the index of the interface it came or went through
	Outgoing  bool      // sent by this host (only with Config.Outgoing)
}

// A Handler receives each packet a Ring reads. pkt is only valid during
// the call.
type Handler func(pkt []byte, info Info)

// Ring reads the packets that pass its filter. It needs root or
// CAP_NET_RAW. Run is for one goroutine; Dropped and Close may be called
// from others.
type Ring struct{ sys ringSys }

// Open opens a Ring in the calling thread's network namespace. From its
// return on, packets are queued, so packets that arrive before Run is
// called are read too.
func Open(cfg Config) (*Ring, error) {
	if len(cfg.Filter) == 0 {
		return nil, &OpError{Op: "open", Err: fmt.Errorf("no filter")}
	}
	if cfg.Snaplen <= 0 {
		cfg.Snaplen = DefaultSnaplen
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	if cfg.Blocks <= 0 {
		cfg.Blocks = DefaultBlocks
	}
	if cfg.BlockSize <= 0 {
		cfg.BlockSize = DefaultBlockSize
	}
	if cfg.Frames <= 0 {
		cfg.Frames = DefaultFrames
	}
	if page := os.Getpagesize(); !cfg.Immediate && (cfg.BlockSize%page != 0 || cfg.BlockSize < cfg.Snaplen+ringOverhead) {
		return nil, &OpError{Op: "open", Err: fmt.Errorf("block size %d: not a multiple of the page size (%d) holding a packet of %d bytes", cfg.BlockSize, page, cfg.Snaplen)}
	}
	r := &Ring{}
	if err := r.sys.open(cfg); err != nil {
		return nil, err
	}
	return r, nil
}

// ringOverhead bounds what the ring adds to a packet in a block: the
// block's header, the packet's header and its link-layer address.
const ringOverhead = 256

// Run reads packets and calls h for each until ctx is done, when it
// returns nil, or the Ring is closed (nil too), or reading fails.
func (r *Ring) Run(ctx context.Context, h Handler) error { return r.sys.run(ctx, h) }

// Dropped is how many packets passed the filter but found the ring (or the
// socket's buffer) full, since Open.
func (r *Ring) Dropped() (uint64, error) { return r.sys.dropped() }

// Close closes the Ring; a Run in progress returns.
func (r *Ring) Close() error { return r.sys.close() }
