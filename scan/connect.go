package scan

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/netip"
)

// Connect is the connect engine: a full TCP connect per probe, through the
// operating system, so it needs no privileges and works everywhere. Many
// connects are in flight at once, each holding one socket, so the number in
// flight is bounded by the open-file limit: Start raises the soft limit to
// the hard one (Unix) and the engine reports the bound (Bounded), which the
// Scanner keeps to and names in Stats when it is the bottleneck.
//
// A connect that completes is open ("syn-ack"), one refused is closed
// ("conn-refused"), a host or network unreachable is filtered
// ("host-unreach"), and one that does not finish before the Scanner's
// timeout is silence, for the Scanner to retransmit or give up. Sockets are
// closed with SO_LINGER 0: an open port gets a reset rather than a FIN, and
// the scanner leaves no TIME_WAIT behind.
//
// On Linux it drives non-blocking sockets with epoll from one goroutine;
// elsewhere it uses net.Dialer, a goroutine per connect in flight.
//
// The zero value is ready. A Connect serves one scan at a time.
type Connect struct {
	// Limit bounds the connects in flight; 0 means as many as the
	// open-file limit allows, less Reserve.
	Limit int
	// Reserve is the file descriptors left to the rest of the process;
	// 0 means 128.
	Reserve int

	limit int
	why   string
	impl  connectImpl
}

// connectImpl is the per-OS engine.
type connectImpl interface {
	start(ctx context.Context, replies chan<- Reply) error
	send(p Probe, attempt int) error
	done(p Probe)
	close() error
}

// Name is "connect".
func (c *Connect) Name() string { return "connect" }

// Proto is TCP.
func (c *Connect) Proto() Proto { return TCP }

// MaxInFlight is the bound on connects in flight, known after Start.
func (c *Connect) MaxInFlight() (int, string) { return c.limit, c.why }

// Start raises the open-file limit, sets the bound, and starts the engine.
func (c *Connect) Start(ctx context.Context, replies chan<- Reply) error {
	var err error
	// The workers' spare sockets (Linux) come out of the reserve's share,
	// not the probes'.
	if c.limit, c.why, err = socketBound("connect", cmp.Or(c.Reserve, 128)+heldSpares(), c.Limit); err != nil {
		return err
	}
	c.impl = newConnectImpl(c.limit)
	return c.impl.start(ctx, replies)
}

// socketBound is the bound on the probes in flight of an engine that holds
// a socket for each (the connect engine, the UDP engine's socket mode), and
// what sets it: as many as the open-file limit allows, raised to its hard
// limit, less reserve file descriptors (0 means 128) and those open; or
// limit, if it is set and lower. It fails when the limit leaves none. name
// is the engine's, for its errors.
func socketBound(name string, reserve, limit int) (n int, why string, err error) {
	if reserve <= 0 {
		reserve = 128
	}
	n, why, err = fileLimit(reserve)
	if err != nil {
		return 0, "", fmt.Errorf("%s engine: %w", name, err)
	}
	if n < 1 {
		return 0, "", fmt.Errorf("%s engine: %s leaves no sockets for probes", name, why)
	}
	if limit > 0 && limit < n {
		n, why = limit, fmt.Sprintf("limit %d", limit)
	}
	return n, why, nil
}

// Send starts a connect to p.
func (c *Connect) Send(p Probe, attempt int) error {
	if p.Proto != TCP {
		return fmt.Errorf("connect engine: %v probe", p.Proto)
	}
	return c.impl.send(p, attempt)
}

// Done abandons the connect in flight to p, if any.
func (c *Connect) Done(p Probe) { c.impl.done(p) }

// Close abandons every connect in flight and stops the engine.
func (c *Connect) Close() error {
	if c.impl == nil {
		return nil
	}
	return c.impl.close()
}

// connectReply is the reply for a connect's outcome.
func connectReply(p Probe, attempt int, st State, reason string) Reply {
	return Reply{Probe: p, State: st, Reason: reason, Attempt: attempt}
}

// zoneIndex is the interface index of an IPv6 zone, or 0.
func zoneIndex(a netip.Addr) int {
	z := a.Zone()
	if z == "" {
		return 0
	}
	if ifi, err := net.InterfaceByName(z); err == nil {
		return ifi.Index
	}
	var i int
	fmt.Sscan(z, &i)
	return i
}
