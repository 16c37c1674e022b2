package main

import (
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portkit/portkit/bench/internal/scanplan"
)

func TestParseArgs(t *testing.T) {
	cfg, err := parseArgs(strings.Fields("-seed 7 -host 198.18.0.2 -sweep 198.18.4.0/22 -beacon 198.18.0.1:9 -ready /tmp/x"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := scanplan.Options{Seed: 7, Host: netip.MustParseAddr("198.18.0.2"), MinPorts: 25, MaxPorts: 30,
		Sweep: netip.MustParsePrefix("198.18.4.0/22"), SweepTop: 100}
	if cfg.plan != want || cfg.beacon != netip.MustParseAddrPort("198.18.0.1:9") || cfg.beaconEvery != 100*time.Millisecond {
		t.Errorf("cfg = %+v", cfg)
	}
	for _, bad := range []string{
		"-seed 7 -host 198.18.0.2",                          // no -ready
		"-seed 7 -host nowhere -ready f",                    // bad host
		"-seed 7 -host 198.18.0.2 -ready f -sweep 1.2.3",    // bad prefix
		"-seed 7 -host 198.18.0.2 -ready f -beacon 1.2.3.4", // no port
		"-seed 7 -host 198.18.0.2 -ready f extra",
	} {
		if _, err := parseArgs(strings.Fields(bad), io.Discard); err == nil {
			t.Errorf("parseArgs(%q): no error", bad)
		}
	}
	if code := run([]string{"-host", "198.18.0.2", "-ready", "f", "-max-ports", "0"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("an impossible plan: exit %d, want 2", code)
	}
}

func TestDescribe(t *testing.T) {
	p := &scanplan.Plan{Seed: 3, Host: netip.MustParseAddr("198.18.0.2"), Ports: []uint16{22, 80}}
	if got, want := describe(p), "scanfixture: seed 3: 198.18.0.2 listens on 2 TCP ports: 22 80\n"; got != want {
		t.Errorf("describe = %q, want %q", got, want)
	}
}
