package rawnet

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/portkit/portkit/internal/packetring"
)

// OpError is an error of a socket operation, like net.OpError.
type OpError struct {
	Op   string     // "socket", "setsockopt", "bind", "sendmmsg", "recvmmsg", …
	Addr netip.Addr // the destination of the packet that failed, if any
	Err  error
}

func (e *OpError) Error() string {
	if e.Addr.IsValid() {
		return fmt.Sprintf("rawnet: %s %v: %v", e.Op, e.Addr, e.Err)
	}
	return fmt.Sprintf("rawnet: %s: %v", e.Op, e.Err)
}

func (e *OpError) Unwrap() error { return e.Err }

// Sender writes whole IP packets, built by AppendTCP and AppendUDP, to the
// network through raw sockets. It needs root or CAP_NET_RAW. A Sender is
// for one goroutine at a time.
type Sender struct {
	sys senderSys
}

// NewSender opens the raw sockets of a Sender in the calling thread's
// network namespace. Without IPv6 in the kernel, it sends IPv4 only.
func NewSender() (*Sender, error) {
	s := &Sender{}
	if err := s.sys.open(); err != nil {
		return nil, err
	}
	return s, nil
}

// Send writes pkts[i] to dsts[i], which must be the packet's destination,
// in as few system calls as it can, and returns how many were written. On
// an error, pkts[n] is the packet that failed, and the *OpError names its
// destination: the caller may skip it and send the rest.
func (s *Sender) Send(pkts [][]byte, dsts []netip.Addr) (int, error) {
	if len(pkts) != len(dsts) {
		return 0, fmt.Errorf("rawnet: send: %d packets for %d destinations", len(pkts), len(dsts))
	}
	for i, p := range pkts {
		if len(p) == 0 || !dsts[i].IsValid() {
			return 0, fmt.Errorf("rawnet: send: packet %d is empty or has no destination", i)
		}
	}
	return s.sys.send(pkts, dsts)
}

// Close closes the Sender's sockets.
func (s *Sender) Close() error { return s.sys.close() }

// ReceiverConfig configures a Receiver.
type ReceiverConfig struct {
	// Port is portkit's source port: TCP and UDP packets to it, and ICMP
	// errors about packets from it, are read.
	Port uint16
	// Interface is the index of the one interface to read from; zero
	// reads from all of them.
	Interface int
	// Snaplen is how many bytes of each packet are kept; zero means
	// DefaultSnaplen.
	Snaplen int
	// Batch is how many packets one system call reads at most, where
	// the kernel has no receive ring for the Receiver (TPACKET_V3, Linux
	// 3.2); zero means 64.
	Batch int
}

// A Handler receives each reply a Receiver reads, and the time it arrived:
// the kernel's timestamp from the receive ring, or without a ring the time
// it was read (taken once per batch). r and its Payload are only valid
// during the call.
type Handler func(r *Reply, at time.Time)

// Receiver reads replies to portkit's probes. It needs root or
// CAP_NET_RAW.
type Receiver struct {
	ring      *packetring.Ring
	received  atomic.Uint64
	malformed atomic.Uint64
}

// ReceiverStats counts what a Receiver has read.
type ReceiverStats struct {
	Received  uint64 // packets that passed the filter and were read
	Malformed uint64 // of those, packets ParseReply rejected
	Dropped   uint64 // packets that passed the filter but found the socket's buffer full
}

// NewReceiver opens a Receiver in the calling thread's network namespace.
// From its return on, replies are queued, so probes sent after it are
// seen even before Run is called.
func NewReceiver(cfg ReceiverConfig) (*Receiver, error) {
	if cfg.Snaplen <= 0 {
		cfg.Snaplen = DefaultSnaplen
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	prog, err := replyFilter(cfg.Port, uint32(cfg.Snaplen))
	if err != nil {
		return nil, err
	}
	ring, err := packetring.Open(packetring.Config{Filter: prog, Interface: cfg.Interface, Snaplen: cfg.Snaplen, Batch: cfg.Batch})
	if err != nil {
		return nil, err
	}
	return &Receiver{ring: ring}, nil
}

// Run reads replies and calls h for each until ctx is done, when it
// returns nil, or the Receiver is closed, or reading fails. Packets the
// parser rejects are counted and skipped.
func (r *Receiver) Run(ctx context.Context, h Handler) error {
	var rep Reply
	return r.ring.Run(ctx, func(pkt []byte, info packetring.Info) {
		r.received.Add(1)
		if ParseReply(pkt, &rep) != nil {
			r.malformed.Add(1)
			return
		}
		h(&rep, info.At)
	})
}

// Stats returns the Receiver's counts so far. It may be called while Run
// runs.
func (r *Receiver) Stats() (ReceiverStats, error) {
	dropped, err := r.ring.Dropped()
	return ReceiverStats{Received: r.received.Load(), Malformed: r.malformed.Load(), Dropped: dropped}, err
}

// Close closes the Receiver; a Run in progress returns.
func (r *Receiver) Close() error { return r.ring.Close() }

// Reservation holds portkit's source port on the local host; see the
// package documentation for why.
type Reservation struct {
	Port uint16
	sys  reservationSys
}

// ReservePort binds a TCP socket, without listening, and a UDP socket to
// port on every local address of the calling thread's network namespace;
// port zero picks a free port that both protocols have free.
func ReservePort(port uint16) (*Reservation, error) {
	r := &Reservation{}
	p, err := r.sys.reserve(port)
	if err != nil {
		return nil, err
	}
	r.Port = p
	return r, nil
}

// Close releases the port.
func (r *Reservation) Close() error { return r.sys.close() }
