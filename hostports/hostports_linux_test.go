package hostports

import (
	"errors"
	"os"
	"testing"
)

func TestReadFixtures(t *testing.T) {
	tests := []struct {
		root string
		want Policy
		err  bool
	}{
		{"testdata", Policy{32768, 60999, 1024}, false},
		{"testdata/old", Policy{40000, 50000, 1024}, false}, // no unprivileged_port_start
		{"testdata/bad", Policy{}, true},
		{"testdata/none", Policy{}, true},
	}
	for _, tt := range tests {
		got, err := Reader{Root: tt.root}.Read()
		if (err != nil) != tt.err || !tt.err && got != tt.want {
			t.Errorf("%s: %+v, %v; want %+v (error %v)", tt.root, got, err, tt.want, tt.err)
		}
	}
	_, err := Reader{Root: "testdata/bad"}.Read()
	var e *Error
	if !errors.As(err, &e) || e.Path == "" {
		t.Errorf("bad fixture: %v, want an *Error naming the file", err)
	}
}

func TestPolicy(t *testing.T) {
	p := Policy{32768, 60999, 1024}
	for port, want := range map[uint16][2]bool{80: {false, true}, 1024: {false, false}, 32768: {true, false}, 60999: {true, false}, 61000: {false, false}} {
		if p.Ephemeral(port) != want[0] || p.Privileged(port) != want[1] {
			t.Errorf("port %d: ephemeral %v privileged %v, want %v", port, p.Ephemeral(port), p.Privileged(port), want)
		}
	}
}

func TestReadLive(t *testing.T) {
	if _, err := os.Stat("/proc/sys/net/ipv4/ip_local_port_range"); err != nil {
		t.Skip("no /proc/sys/net/ipv4 here:", err)
	}
	p, err := Read()
	if err != nil || p.EphemeralLow == 0 || p.EphemeralHigh < p.EphemeralLow {
		t.Fatalf("Read() = %+v, %v", p, err)
	}
}
