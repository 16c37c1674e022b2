package firewall

import (
	"errors"
	"io/fs"
	"net/netip"
	"testing"
	"time"

	"github.com/portkit/portkit/registry"
)

func TestCheckTimeout(t *testing.T) {
	tests := []struct {
		d      time.Duration
		zeroOK bool
		want   time.Duration
		bad    bool
	}{
		{30 * time.Second, false, 30 * time.Second, false},
		{1500 * time.Microsecond, false, 2 * time.Millisecond, false}, // kernel milliseconds, rounded up
		{time.Nanosecond, false, time.Millisecond, false},             // never 0: that would be no timeout
		{0, false, 0, true},
		{0, true, 0, false},
		{-time.Second, true, 0, true},
		{maxTimeout, false, maxTimeout, false},
		{maxTimeout + time.Millisecond, false, 0, true},
	}
	for _, tt := range tests {
		got, err := checkTimeout(tt.d, tt.zeroOK)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("checkTimeout(%v, %v) = %v, %v; want %v, bad %v", tt.d, tt.zeroOK, got, err, tt.want, tt.bad)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("checkTimeout(%v): %v is not ErrInvalid", tt.d, err)
		}
	}
}

func TestCheckSource(t *testing.T) {
	tests := []struct {
		in   netip.Addr
		want netip.Addr
		bad  bool
	}{
		{netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.1"), false},
		{netip.MustParseAddr("::ffff:198.18.0.1"), netip.MustParseAddr("198.18.0.1"), false}, // an IPv4 packet
		{netip.MustParseAddr("2001:2::1"), netip.MustParseAddr("2001:2::1"), false},
		{netip.MustParseAddr("fe80::1%eth0"), netip.Addr{}, true},
		{netip.Addr{}, netip.Addr{}, true},
	}
	for _, tt := range tests {
		got, err := checkSource(tt.in)
		if (err != nil) != tt.bad || !tt.bad && got != tt.want {
			t.Errorf("checkSource(%v) = %v, %v; want %v, bad %v", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

func TestKeysRoundTrip(t *testing.T) {
	for _, proto := range []registry.Proto{registry.TCP, registry.UDP, registry.SCTP, registry.DCCP} {
		for _, src := range []netip.Addr{netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("2001:2::1")} {
			pk, err := checkPort(65535, proto)
			if err != nil {
				t.Fatal(err)
			}
			a, p, ok := parseOpenKey(openKey(src, pk), src.BitLen()/8)
			if !ok || a != src || p != (Port{65535, proto}) {
				t.Errorf("open key %v %v/%v read back as %v %v %v", src, 65535, proto, a, p, ok)
			}
		}
	}
	// The layout nftables uses: each field padded to 4 bytes, the port
	// in network order.
	want := []byte{198, 18, 0, 1, 6, 0, 0, 0, 0, 22, 0, 0}
	if got := openKey(netip.MustParseAddr("198.18.0.1"), portKey(6, 22)); string(got) != string(want) {
		t.Errorf("openKey = %v, want %v", got, want)
	}
	if _, ok := parsePortKey([]byte{1, 0, 0, 0, 0, 22, 0, 0}); ok {
		t.Error("a key of protocol 1 (icmp) read as a port")
	}
}

func TestCheckPort(t *testing.T) {
	if _, err := checkPort(0, registry.TCP); !errors.Is(err, ErrInvalid) {
		t.Errorf("port 0: %v, want ErrInvalid", err)
	}
	if _, err := checkPort(22, registry.AnyProto); !errors.Is(err, ErrInvalid) {
		t.Errorf("protocol any: %v, want ErrInvalid", err)
	}
}

func TestError(t *testing.T) {
	err := error(&Error{Op: "open", Table: "inet portkit", Input: "198.18.0.1 22/tcp", Err: ErrPermission})
	if !errors.Is(err, ErrPermission) || !errors.Is(err, fs.ErrPermission) {
		t.Errorf("%v: not ErrPermission and fs.ErrPermission", err)
	}
	const want = "firewall open 198.18.0.1 22/tcp: inet portkit: permission denied: nftables needs CAP_NET_ADMIN (run as root)"
	if err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	var bi interface{ BadInput() bool }
	if !errors.As(err, &bi) || bi.BadInput() {
		t.Errorf("a permission error blames the input")
	}
	bad := &Error{Op: "open", Err: ErrInvalid}
	if !bad.BadInput() {
		t.Errorf("ErrInvalid does not blame the input")
	}
}

func TestTableName(t *testing.T) {
	if got := (Table{}).String(); got != "inet portkit" {
		t.Errorf("zero Table is %q", got)
	}
	if got := (Table{Name: "knock"}).String(); got != "inet knock" {
		t.Errorf("Table{Name: knock} is %q", got)
	}
}
