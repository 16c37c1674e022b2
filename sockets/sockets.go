// Package sockets lists the local TCP and UDP sockets and the processes that
// hold them: the table behind `ss -tulpn` and `lsof -i`.
//
// On Linux the kernel is asked over netlink (NETLINK_SOCK_DIAG), so that it
// filters by state and port before anything is copied out; /proc/net is the
// fallback where netlink is not available. Processes are found through
// /proc/PID/fd: every process holding each socket, as `ss -p` lists them.
// Other systems return an error that wraps errors.ErrUnsupported.
package sockets

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Proto is a transport protocol, or in a Query a set of them (TCP|UDP).
type Proto uint8

const (
	TCP Proto = 1 << iota
	UDP
)

var protoNames = []string{"tcp", "udp"}

func (p Proto) String() string               { return flagString(uint32(p), protoNames, "proto") }
func (p Proto) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// Family is an address family, or in a Query a set of them (IPv4|IPv6).
// The constants are bits so that one type serves both; String gives "4" or "6".
type Family uint8

const (
	IPv4 Family = 1 << iota
	IPv6
)

var familyNames = []string{"4", "6"}

func (f Family) String() string               { return flagString(uint32(f), familyNames, "family") }
func (f Family) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// State is a socket state, or in a Query a set of them (Listen|Established).
// Bit n stands for the kernel's TCP state number n, which is also how the
// kernel's own filter (idiag_states) spells a set of states. A UDP socket is
// Close while unconnected ("unconn", like ss says) and Established once
// connected.
type State uint16

const (
	Established State = 1 << (iota + 1)
	SynSent
	SynRecv
	FinWait1
	FinWait2
	TimeWait
	Close
	CloseWait
	LastAck
	Listen
	Closing
	_ // 12, TCP_NEW_SYN_RECV, is listed as SynRecv
	// Bound is a TCP socket bound to its port but neither listening nor
	// connected (TCP_BOUND_INACTIVE): it holds the port all the same.
	// Kernels list them since Linux 6.8, over netlink only.
	Bound

	// AllStates is every state, like ss -a.
	AllStates = Established | SynSent | SynRecv | FinWait1 | FinWait2 | TimeWait |
		Close | CloseWait | LastAck | Listen | Closing | Bound
)

// Bit 0 has no state: TCP states start at 1.
var stateNames = []string{"", "established", "syn-sent", "syn-recv", "fin-wait-1", "fin-wait-2",
	"time-wait", "unconn", "close-wait", "last-ack", "listen", "closing", "", "bound"}

func (s State) String() string               { return flagString(uint32(s), stateNames, "state") }
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// kernelState maps the kernel's TCP state number (inet_diag_msg.idiag_state,
// the st column of /proc/net/tcp) to a State; ok is false for numbers it does
// not know.
func kernelState(n uint8) (s State, ok bool) {
	switch {
	case n == 12: // TCP_NEW_SYN_RECV: a request socket, what users call SYN-RECV
		return SynRecv, true
	case n == 13: // TCP_BOUND_INACTIVE
		return Bound, true
	case n >= 1 && n <= 11:
		return State(1) << n, true
	}
	return 0, false
}

// flagString names the bits of v, joined by "|"; unknown bits show in hex.
func flagString(v uint32, names []string, kind string) string {
	if v == 0 {
		return kind + "(0)"
	}
	var b strings.Builder
	for v != 0 {
		i := bits.TrailingZeros32(v)
		v &^= 1 << i
		if b.Len() > 0 {
			b.WriteByte('|')
		}
		if i < len(names) && names[i] != "" {
			b.WriteString(names[i])
		} else {
			fmt.Fprintf(&b, "%s(%#x)", kind, uint32(1)<<i)
		}
	}
	return b.String()
}

// Socket is one socket as the kernel reports it.
type Socket struct {
	Proto  Proto  // TCP or UDP
	Family Family // IPv4 or IPv6; a dual-stack socket is IPv6, its IPv4 peers ::ffff:a.b.c.d
	Local  netip.AddrPort
	Remote netip.AddrPort // unspecified address and port 0 when not connected
	State  State
	UID    uint32 // the socket's owner: the effective uid of the process that created it
	Inode  uint64 // 0 where no file refers to the socket (TIME_WAIT, request sockets)
	// RxQueue and TxQueue are bytes queued for the application and for the
	// peer. For a listener RxQueue counts connections waiting to be accepted,
	// and TxQueue is the backlog limit (netlink) or 0 (/proc/net).
	RxQueue, TxQueue uint32
}

// Network names the socket's protocol and family as package net does:
// "tcp4", "tcp6", "udp4" or "udp6".
func (s Socket) Network() string { return s.Proto.String() + s.Family.String() }

// Process is a process that holds a socket open.
type Process struct {
	PID     int
	PPID    int      // the parent's pid; 0 for init and kernel threads
	Name    string   // the kernel's name for it (comm): at most 15 bytes, possibly truncated
	Cmdline []string // empty for kernel threads and zombies
	UID     uint32   // effective uid
	User    string   // the name of UID, or UID in decimal where it has none
	// StartTime is when the process started, to the kernel clock tick (1/100 s).
	StartTime time.Time
	// StartTicks is the start time in clock ticks since boot, as the kernel
	// reports it: with PID, it names a process even after the PID is reused.
	StartTicks uint64
	// NamespaceInit is set for the init of its own PID namespace (PID 1
	// there: a container's init), seen from outside it.
	NamespaceInit bool
	// Container is the 64-hex-digit id of the container the process runs in
	// (docker, containerd/CRI, CRI-O, podman, Kubernetes), from its cgroup;
	// empty outside containers.
	Container string
}

// Manager reports whether p starts and supervises services rather than
// being one: PID 1, the init of a PID namespace, or a systemd (a user's
// manager). With socket activation it holds the listener of the service it
// started; signalling it would stop far more than the service.
func (p Process) Manager() bool {
	return p.PID == 1 || p.NamespaceInit || p.Name == "systemd"
}

// Entry is a socket and what is known of the processes holding it.
type Entry struct {
	Socket
	// Processes hold the socket open: with Query.WithProcesses every one
	// that can be seen, as `ss -p` lists them (a pre-forking server's master
	// and each of its workers). A holder comes before the holders it forked
	// (the master before its workers, a parent before a child caught
	// between fork and exec), then by PID; service managers (Process.Manager)
	// that hold a socket they passed on come last.
	Processes []Process
	// Hidden is set when no holder was found while some processes could not
	// be looked into for want of permission: the holder is probably one of
	// them. Socket.UID says whose the socket is; root can usually see it.
	Hidden bool
}

// Query says which sockets to list. The zero value lists the sockets that
// hold a port, of both families, without processes: listening TCP sockets
// and every UDP socket, connected or not (a connected one holds its port
// as much).
type Query struct {
	Protos   Proto  // TCP, UDP or both; 0 means both
	Families Family // IPv4, IPv6 or both; 0 means both
	// States lists sockets in these states; 0 means Listen|Bound for TCP
	// and every state for UDP. Listen|Close is what `ss -tuln` shows, AllStates what
	// `ss -a` shows. Close asks nothing of TCP: the kernel lists no TCP
	// socket in that state, and asking would only make it walk every
	// connection.
	States State
	Port   uint16 // local port; 0 means any
	// PortEnd, with Port, asks for the local ports Port to PortEnd
	// inclusive; 0 means Port alone. The kernel filters on the range.
	PortEnd uint16

	// WithProcesses finds every process holding each socket, looking into
	// every process's descriptors as `ss -p` does: a socket is shared by
	// fork (a pre-forking server's workers) and by passing descriptors, so
	// no holder tells where the others are.
	WithProcesses bool
}

// request is one of the tables a Query reads: one protocol and family, with
// the states and port that the kernel (or the /proc parser) filters on.
type request struct {
	proto  Proto
	family Family
	states State
	port   uint16 // 0: any
	last   uint16 // the range's last port, >= port when port is set
}

func (r request) String() string { return r.proto.String() + r.family.String() }

func (r request) match(s *Socket) bool {
	p := s.Local.Port()
	return s.State&r.states != 0 && (r.port == 0 || p >= r.port && p <= r.last)
}

// udpStates are the only states a UDP socket is ever in.
const udpStates = Established | Close

// requests lists the tables q reads, in the order results are wanted.
func (q Query) requests() ([]request, error) {
	protos, families, states := q.Protos, q.Families, q.States
	switch {
	case protos&^(TCP|UDP) != 0:
		return nil, fmt.Errorf("unknown protocol in query: %v", protos)
	case families&^(IPv4|IPv6) != 0:
		return nil, fmt.Errorf("unknown address family in query: %v", families)
	case states&^AllStates != 0:
		return nil, fmt.Errorf("unknown state in query: %v", states)
	case q.PortEnd != 0 && q.Port == 0:
		return nil, fmt.Errorf("port range 0-%d in query: ranges start at port 1", q.PortEnd)
	case q.PortEnd != 0 && q.PortEnd < q.Port:
		return nil, fmt.Errorf("port range %d-%d in query ends before it starts", q.Port, q.PortEnd)
	}
	last := q.Port
	if q.PortEnd != 0 {
		last = q.PortEnd
	}
	if protos == 0 {
		protos = TCP | UDP
	}
	if families == 0 {
		families = IPv4 | IPv6
	}
	var reqs []request
	for _, p := range []Proto{TCP, UDP} {
		st := states
		switch {
		case st == 0 && p == TCP:
			st = Listen | Bound
		case st == 0:
			st = AllStates
		}
		if p == UDP {
			st &= udpStates
		} else {
			st &^= Close
		}
		if protos&p == 0 || st == 0 {
			continue
		}
		for _, f := range []Family{IPv4, IPv6} {
			if families&f != 0 {
				reqs = append(reqs, request{p, f, st, q.Port, last})
			}
		}
	}
	return reqs, nil
}

// Table reads the socket table of the running system. Its zero value is
// ready to use, and it may be used by several goroutines at once.
type Table struct {
	// ProcRoot is where procfs is mounted, "/proc" when empty. Tests point
	// it at a fixture tree.
	ProcRoot string
	// NoNetlink reads /proc/net instead of asking the kernel over netlink:
	// slower, as the whole table is formatted as text and filtered here.
	// It is the fallback where netlink is unavailable anyway; tests set it
	// to check that path.
	NoNetlink bool
	// NoBPF finds the processes holding sockets through /proc only. As
	// root on Linux 5.8+ with BTF, they are found with a BPF iterator
	// over every process's descriptors instead, in one pass in the
	// kernel; /proc is the fallback when it fails, and tests set NoBPF to
	// check that path.
	NoBPF bool
	// Logger, when set, is told at debug level why the BPF iterator was
	// not used (see NoBPF).
	Logger *slog.Logger
}

// lister is what each platform provides behind Table.
type lister interface {
	list(ctx context.Context, reqs []request, q Query) ([]Entry, error)
}

// List returns the sockets that q asks for, ordered by protocol, local
// port, family, local address and remote address.
func (t *Table) List(ctx context.Context, q Query) ([]Entry, error) {
	reqs, err := q.requests()
	if err != nil {
		return nil, &OpError{Op: "list", Err: err}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	entries, err := newLister(t).list(ctx, reqs, q)
	if err != nil {
		return nil, err
	}
	sortEntries(entries)
	return entries, nil
}

// List returns the sockets of the running system that q asks for; see
// Table.List.
func List(ctx context.Context, q Query) ([]Entry, error) {
	return new(Table).List(ctx, q)
}

func sortEntries(entries []Entry) {
	slices.SortFunc(entries, func(a, b Entry) int {
		return cmp.Or(
			cmp.Compare(a.Proto, b.Proto),
			cmp.Compare(a.Local.Port(), b.Local.Port()),
			cmp.Compare(a.Family, b.Family),
			a.Local.Addr().Compare(b.Local.Addr()),
			a.Remote.Compare(b.Remote),
			cmp.Compare(a.Inode, b.Inode),
		)
	})
}

// OpError is an operation on the socket table that failed, with its input:
// the table (Proto, as "tcp6") or the file (Path) it was reading.
type OpError struct {
	Op    string // what failed: "dump", "read", "parse", …
	Proto string // the table, as "tcp6"; empty when Path names the input
	Path  string // the file; empty when Proto names the input
	Err   error
}

func (e *OpError) Error() string {
	s := e.Op
	if e.Proto != "" {
		s += " " + e.Proto
	}
	if e.Path != "" {
		s += " " + e.Path
	}
	return s + ": " + e.Err.Error()
}

func (e *OpError) Unwrap() error { return e.Err }
