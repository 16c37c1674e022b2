package sockets

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"runtime"
	"syscall"
	"testing"
)

func TestKernelState(t *testing.T) {
	// include/net/tcp_states.h
	tests := []struct {
		n    uint8
		want State
		name string
	}{
		{1, Established, "established"},
		{2, SynSent, "syn-sent"},
		{3, SynRecv, "syn-recv"},
		{4, FinWait1, "fin-wait-1"},
		{5, FinWait2, "fin-wait-2"},
		{6, TimeWait, "time-wait"},
		{7, Close, "unconn"},
		{8, CloseWait, "close-wait"},
		{9, LastAck, "last-ack"},
		{10, Listen, "listen"},
		{11, Closing, "closing"},
		{12, SynRecv, "syn-recv"}, // TCP_NEW_SYN_RECV
	}
	for _, tt := range tests {
		got, ok := kernelState(tt.n)
		if !ok || got != tt.want || got.String() != tt.name {
			t.Errorf("kernelState(%d) = %v (%q), %v; want %v (%q)", tt.n, got, got.String(), ok, tt.want, tt.name)
		}
		// The kernel's idiag_states uses the same bits.
		if tt.n <= 11 && uint32(got) != 1<<tt.n {
			t.Errorf("state %d is bit %#x, want %#x", tt.n, uint32(got), 1<<tt.n)
		}
	}
	if s, ok := kernelState(13); !ok || s != Bound || s.String() != "bound" {
		t.Errorf("kernelState(13) = %v, %v; want bound", s, ok)
	}
	for _, n := range []uint8{0, 14, 255} {
		if s, ok := kernelState(n); ok {
			t.Errorf("kernelState(%d) = %v, want unknown", n, s)
		}
	}
}

func TestStrings(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{TCP.String(), "tcp"},
		{(TCP | UDP).String(), "tcp|udp"},
		{Proto(0).String(), "proto(0)"},
		{Proto(4).String(), "proto(0x4)"},
		{IPv6.String(), "6"},
		{(IPv4 | IPv6).String(), "4|6"},
		{(Listen | Established).String(), "established|listen"},
		{State(1).String(), "state(0x1)"},
		{Socket{Proto: UDP, Family: IPv6}.Network(), "udp6"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%q, want %q", tt.got, tt.want)
		}
	}
	if b, err := Listen.MarshalText(); err != nil || string(b) != "listen" {
		t.Errorf("Listen.MarshalText() = %q, %v", b, err)
	}
}

func TestQueryRequests(t *testing.T) {
	all4 := func(p Proto, st State, port uint16) []request {
		return []request{{p, IPv4, st, port, port}, {p, IPv6, st, port, port}}
	}
	tests := []struct {
		name string
		q    Query
		want []request
	}{
		{"zero: listening or bound TCP, all UDP", Query{},
			append(all4(TCP, Listen|Bound, 0), all4(UDP, udpStates, 0)...)},
		{"tcp4 port", Query{Protos: TCP, Families: IPv4, Port: 80},
			[]request{{TCP, IPv4, Listen | Bound, 80, 80}}},
		{"all states", Query{States: AllStates},
			append(all4(TCP, AllStates&^Close, 0), all4(UDP, udpStates, 0)...)},
		{"listen: UDP has none", Query{States: Listen}, all4(TCP, Listen, 0)},
		{"unconn: TCP has none to show", Query{Protos: UDP, States: Close, Port: 53}, all4(UDP, Close, 53)},
		{"ss -tuln: TCP not asked for Close", Query{States: Listen | Close},
			append(all4(TCP, Listen, 0), all4(UDP, Close, 0)...)},
		{"a range of ports", Query{Protos: TCP, Families: IPv6, Port: 8000, PortEnd: 8005},
			[]request{{TCP, IPv6, Listen | Bound, 8000, 8005}}},
		{"a range of one port", Query{Protos: UDP, Families: IPv4, Port: 53, PortEnd: 53},
			[]request{{UDP, IPv4, udpStates, 53, 53}}},
	}
	for _, tt := range tests {
		got, err := tt.q.requests()
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	for _, q := range []Query{{Protos: 4}, {Families: 4}, {States: 1}, {States: 1 << 12},
		{PortEnd: 80}, {Port: 81, PortEnd: 80}} {
		if _, err := q.requests(); err == nil {
			t.Errorf("%+v: no error", q)
		}
	}
}

func TestSortEntries(t *testing.T) {
	ap := netip.MustParseAddrPort
	e := func(p Proto, f Family, local, remote string) Entry {
		return Entry{Socket: Socket{Proto: p, Family: f, Local: ap(local), Remote: ap(remote)}}
	}
	want := []Entry{
		e(TCP, IPv4, "0.0.0.0:22", "0.0.0.0:0"),
		e(TCP, IPv4, "10.0.0.1:22", "10.0.0.9:4000"),
		e(TCP, IPv4, "10.0.0.1:22", "10.0.0.9:5000"),
		e(TCP, IPv6, "[::]:22", "[::]:0"),
		e(TCP, IPv4, "127.0.0.1:80", "0.0.0.0:0"),
		e(UDP, IPv4, "0.0.0.0:53", "0.0.0.0:0"),
	}
	got := []Entry{want[5], want[3], want[2], want[0], want[4], want[1]}
	sortEntries(got)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sorted:\n%v\nwant\n%v", got, want)
	}
}

func TestOpError(t *testing.T) {
	err := error(&OpError{Op: "dump", Proto: "tcp6", Err: syscall.EPERM})
	if got, want := err.Error(), "dump tcp6: operation not permitted"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	if !errors.Is(err, syscall.EPERM) {
		t.Errorf("%v does not unwrap to EPERM", err)
	}
	err = &OpError{Op: "parse", Path: "/proc/net/tcp", Err: errors.New("line 3: bad")}
	if got, want := err.Error(), "parse /proc/net/tcp: line 3: bad"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	var oe *OpError
	if _, err := List(context.Background(), Query{Protos: 8}); !errors.As(err, &oe) || oe.Op != "list" {
		t.Errorf("bad query: %v, want an *OpError", err)
	}
}

func TestUnsupported(t *testing.T) {
	if runtime.GOOS == "linux" {
		t.Skip("listing is supported on linux")
	}
	_, err := List(context.Background(), Query{})
	if !errors.Is(err, errors.ErrUnsupported) || err.Error() != "listing sockets is not supported on "+runtime.GOOS {
		t.Errorf("List: %v, want errors.ErrUnsupported saying so", err)
	}
}

func TestCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := List(ctx, Query{}); !errors.Is(err, context.Canceled) {
		t.Errorf("List with a canceled context: %v", err)
	}
}
