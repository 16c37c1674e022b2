// Package firewall keeps ports closed to the network and opens them for one
// source address for a time, in an nftables table of portkit's own
// ("inet portkit" by default). It talks to the kernel over netlink (no nft,
// no iptables) and touches nothing outside its table.
//
// The table holds five sets and one chain:
//
//	set protected  inet_proto . inet_service                       the ports kept closed
//	set open4      ipv4_addr . inet_proto . inet_service  timeout  openings: source . port
//	set open6      ipv6_addr . inet_proto . inet_service  timeout
//	set blocked4   ipv4_addr                              timeout  sources dropped outright
//	set blocked6   ipv6_addr                              timeout
//	chain input    type filter hook input priority filter - 1; policy accept
//	    ip saddr @blocked4 drop
//	    ip6 saddr @blocked6 drop
//	    ct state established,related accept
//	    iifname "lo" accept
//	    ip saddr . meta l4proto . th dport @open4 accept
//	    ip6 saddr . meta l4proto . th dport @open6 accept
//	    meta l4proto . th dport @protected drop
//
// The protocol is part of each key (inet_proto), so one set per address
// family serves TCP, UDP, SCTP and DCCP alike. Openings and blocks expire
// in the kernel (the sets' timeout flag): nothing polls, and nothing needs
// to run for an opening to close. Protecting, opening and blocking change
// set elements only; the rules are written once, when the table is made.
//
// nftables runs every base chain on a hook: an accept in portkit's table
// ends portkit's chain only, and another table's chain that drops the
// packet still drops it. Status names such chains.
package firewall

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/portkit/portkit/registry"
)

// DefaultTable is the name of portkit's table (family inet) when
// Table.Name is empty.
const DefaultTable = "portkit"

// Table is portkit's nftables table. The zero value is "inet portkit" in
// the process's own network namespace.
type Table struct {
	// Name is the table's name in family inet; "" means DefaultTable.
	Name string
	// NetNS, when not 0, is an open file descriptor of the network
	// namespace to work in (such as /run/netns/NAME); the netlink socket
	// is made there. The caller keeps it open while Table is used.
	NetNS int
}

func (t Table) name() string {
	if t.Name == "" {
		return DefaultTable
	}
	return t.Name
}

// String is the table as nft names it: "inet portkit".
func (t Table) String() string { return "inet " + t.name() }

// Port is a port number with its transport protocol.
type Port struct {
	Number uint16
	Proto  registry.Proto
}

func (p Port) String() string { return strconv.Itoa(int(p.Number)) + "/" + p.Proto.String() }

// Opening is a source allowed to reach a protected port until it expires.
type Opening struct {
	Source netip.Addr
	Port   Port
	// Left is the time until the kernel removes the opening, as the kernel
	// said when it was listed.
	Left time.Duration
	// Timeout is the whole time the opening was made for.
	Timeout time.Duration
}

// Blocked is a source whose packets are dropped until it expires.
type Blocked struct {
	Source netip.Addr
	// Left is the time until the block expires; 0 when it does not.
	Left    time.Duration
	Timeout time.Duration
}

// State is what portkit's table holds.
type State struct {
	// Present is false when the table does not exist: nothing is
	// protected, open or blocked.
	Present   bool
	Protected []Port
	Openings  []Opening
	Blocked   []Blocked
}

// Report is State with the other tables that undo it.
type Report struct {
	State
	// Conflicts are other tables' chains on the input hook that would drop
	// packets to a protected port whatever portkit's table accepts.
	Conflicts []Conflict
}

// Conflict is another table's base chain on the input hook that drops
// (or rejects) packets portkit may open: by its policy, or by a rule.
type Conflict struct {
	Family   string // "ip", "ip6" or "inet": the packets the chain sees
	Table    string
	Chain    string
	Priority int32
	Policy   string // the chain's policy: "accept" or "drop"
	// Rule is the handle of the dropping rule; 0 when it is the policy.
	Rule uint64
	// Reason says how the chain drops: "policy drop", "rule drops tcp
	// dport 22", "rule drops every new packet".
	Reason string
	// Ports are the protected ports it would drop; empty when nothing is
	// protected yet (it would drop any port that is).
	Ports []Port
}

func (c Conflict) String() string {
	s := fmt.Sprintf("table %s %s chain %s (hook input priority %d, policy %s)", c.Family, c.Table, c.Chain, c.Priority, c.Policy)
	if c.Rule != 0 {
		s += fmt.Sprintf(" rule handle %d", c.Rule)
	}
	return s + ": " + c.Reason
}

// Errors that callers branch on, with errors.Is.
var (
	// ErrPermission: changing or reading nftables needs CAP_NET_ADMIN.
	// It matches fs.ErrPermission too.
	ErrPermission = fmt.Errorf("%w: nftables needs CAP_NET_ADMIN (run as root)", fs.ErrPermission)
	// ErrNotFound: Close, Unprotect or Unblock of what is not there.
	ErrNotFound = errors.New("not there")
	// ErrForeignTable: a table of the name exists and is not portkit's;
	// it is left alone.
	ErrForeignTable = errors.New("a table of this name exists and was not made by portkit; portkit leaves it alone")
	// ErrNoNftables: the kernel has no nftables (nf_tables not built or
	// not loadable).
	ErrNoNftables = errors.New("this kernel has no nftables (nf_tables)")
	// ErrInvalid: an argument no opening, port or block can have.
	ErrInvalid = errors.New("invalid argument")
)

// Error is a failed operation on portkit's table.
type Error struct {
	Op    string // "open", "close", "protect", "unprotect", "block", "unblock", "list", "flush", "status"
	Table string // "inet portkit"
	Input string // what the operation was given: "198.18.0.1 22/tcp"; "" for none
	Err   error
}

func (e *Error) Error() string {
	s := "firewall " + e.Op
	if e.Input != "" {
		s += " " + e.Input
	}
	return s + ": " + e.Table + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// BadInput tells that the caller's input is wrong, not the system.
func (e *Error) BadInput() bool { return errors.Is(e.Err, ErrInvalid) }

// maxTimeout bounds openings and blocks: the kernel keeps element
// timeouts in jiffies and refuses ones that overflow them; a year is far
// inside that on every HZ.
const maxTimeout = 365 * 24 * time.Hour

// checkTimeout validates d for an opening (zeroOK false) or a block
// (zeroOK true: 0 means no expiry), rounded up to the kernel's
// milliseconds: a timeout below 1ms would be sent as none at all.
func checkTimeout(d time.Duration, zeroOK bool) (time.Duration, error) {
	switch {
	case d == 0 && zeroOK:
		return 0, nil
	case d <= 0:
		return 0, fmt.Errorf("%w: duration %v is not positive", ErrInvalid, d)
	case d > maxTimeout:
		return 0, fmt.Errorf("%w: duration %v is longer than a year", ErrInvalid, d)
	}
	return (d + time.Millisecond - 1).Truncate(time.Millisecond), nil
}

// checkSource returns a as the kernel sees it: IPv4-mapped IPv6 addresses
// are IPv4 packets.
func checkSource(a netip.Addr) (netip.Addr, error) {
	if !a.IsValid() {
		return a, fmt.Errorf("%w: no source address", ErrInvalid)
	}
	if a.Zone() != "" {
		return a, fmt.Errorf("%w: source %s has a zone; nftables matches addresses without one", ErrInvalid, a)
	}
	return a.Unmap(), nil
}

// ipProto is the IP protocol number of a transport protocol.
func ipProto(p registry.Proto) (byte, error) {
	switch p {
	case registry.TCP:
		return 6, nil
	case registry.UDP:
		return 17, nil
	case registry.SCTP:
		return 132, nil
	case registry.DCCP:
		return 33, nil
	}
	return 0, fmt.Errorf("%w: protocol %v (want tcp, udp, sctp or dccp)", ErrInvalid, p)
}

func protoOf(n byte) (registry.Proto, bool) {
	switch n {
	case 6:
		return registry.TCP, true
	case 17:
		return registry.UDP, true
	case 132:
		return registry.SCTP, true
	case 33:
		return registry.DCCP, true
	}
	return 0, false
}

func checkPort(port uint16, proto registry.Proto) ([]byte, error) {
	if port == 0 {
		return nil, fmt.Errorf("%w: port 0", ErrInvalid)
	}
	n, err := ipProto(proto)
	if err != nil {
		return nil, err
	}
	return portKey(n, port), nil
}

// Set keys. nftables pads each field of a concatenation to 4 bytes; ports
// are in network byte order.

// portKey is the protected set's key: inet_proto . inet_service.
func portKey(proto byte, port uint16) []byte {
	k := make([]byte, 8)
	k[0] = proto
	binary.BigEndian.PutUint16(k[4:], port)
	return k
}

// openKey is an opening's key: ipv4_addr or ipv6_addr . inet_proto . inet_service.
func openKey(src netip.Addr, pk []byte) []byte {
	return append(src.AsSlice(), pk...)
}

// parsePortKey reads a portKey back; ok is false for a key of another shape.
func parsePortKey(k []byte) (Port, bool) {
	if len(k) != 8 {
		return Port{}, false
	}
	proto, ok := protoOf(k[0])
	if !ok {
		return Port{}, false
	}
	return Port{Number: binary.BigEndian.Uint16(k[4:6]), Proto: proto}, true
}

// parseOpenKey reads an openKey of an address of n bytes (4 or 16).
func parseOpenKey(k []byte, n int) (netip.Addr, Port, bool) {
	if len(k) != n+8 {
		return netip.Addr{}, Port{}, false
	}
	a, ok := netip.AddrFromSlice(k[:n])
	if !ok {
		return netip.Addr{}, Port{}, false
	}
	p, ok := parsePortKey(k[n:])
	return a, p, ok
}

// Convenience functions on the default table, Table{}.

// Open lets src reach port/proto on the default table for d; see Table.Open.
func Open(ctx context.Context, src netip.Addr, port uint16, proto registry.Proto, d time.Duration) error {
	return Table{}.Open(ctx, src, port, proto, d)
}

// Close ends src's opening of port/proto on the default table.
func Close(ctx context.Context, src netip.Addr, port uint16, proto registry.Proto) error {
	return Table{}.Close(ctx, src, port, proto)
}

// Protect keeps port/proto closed on the default table.
func Protect(ctx context.Context, port uint16, proto registry.Proto) error {
	return Table{}.Protect(ctx, port, proto)
}

// Unprotect stops keeping port/proto closed on the default table.
func Unprotect(ctx context.Context, port uint16, proto registry.Proto) error {
	return Table{}.Unprotect(ctx, port, proto)
}

// Block drops src's packets on the default table for d (0: until
// unblocked).
func Block(ctx context.Context, src netip.Addr, d time.Duration) error {
	return Table{}.Block(ctx, src, d)
}

// Unblock ends src's block on the default table.
func Unblock(ctx context.Context, src netip.Addr) error { return Table{}.Unblock(ctx, src) }

// List says what the default table holds.
func List(ctx context.Context) (State, error) { return Table{}.List(ctx) }

// Flush removes the default table.
func Flush(ctx context.Context) (bool, error) { return Table{}.Flush(ctx) }

// Status says what the default table holds and what undoes it.
func Status(ctx context.Context) (Report, error) { return Table{}.Status(ctx) }

// sortState orders what the kernel listed (in hash order) for people and
// tests: ports by protocol and number, openings and blocks by source.
func sortState(st *State) {
	slices.SortFunc(st.Protected, comparePort)
	slices.SortFunc(st.Openings, func(a, b Opening) int {
		if c := a.Source.Compare(b.Source); c != 0 {
			return c
		}
		return comparePort(a.Port, b.Port)
	})
	slices.SortFunc(st.Blocked, func(a, b Blocked) int { return a.Source.Compare(b.Source) })
}

func comparePort(a, b Port) int {
	if c := cmp.Compare(a.Proto, b.Proto); c != 0 {
		return c
	}
	return cmp.Compare(a.Number, b.Number)
}
