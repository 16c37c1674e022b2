package scanplan

import (
	"net/netip"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/portkit/portkit/portspec"
	"github.com/portkit/portkit/registry"
)

func opts(seed uint64) Options {
	return Options{Seed: seed, Host: netip.MustParseAddr("198.18.0.2"), MinPorts: 25, MaxPorts: 30,
		Sweep: netip.MustParsePrefix("198.18.4.0/22"), SweepTop: 100}
}

func TestNewIsSeeded(t *testing.T) {
	a, err := New(opts(42))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New(opts(42))
	c, _ := New(opts(43))
	if !reflect.DeepEqual(a, b) {
		t.Error("the same seed drew two plans")
	}
	if reflect.DeepEqual(a.Ports, c.Ports) {
		t.Error("seeds 42 and 43 drew the same ports")
	}
	if n := len(a.Ports); n < 25 || n > 30 {
		t.Errorf("%d ports, want 25 to 30", n)
	}
	top := map[uint16]bool{}
	for _, p := range portspec.Top(100, registry.TCP) {
		top[p] = true
	}
	for addr, ports := range a.Sweep.Open {
		if !a.Sweep.Prefix.Contains(addr) || len(ports) < 1 || len(ports) > 3 {
			t.Errorf("%v: %v", addr, ports)
		}
		for _, p := range ports {
			if !top[p] {
				t.Errorf("%v: port %d is not in the top 100", addr, p)
			}
		}
	}
	if n := len(a.Sweep.Open); n < 400 || n > 624 {
		t.Errorf("%d of 1024 sweep addresses have open ports, want about half", n)
	}
}

func TestNewRejects(t *testing.T) {
	for name, o := range map[string]Options{
		"no host":     {MinPorts: 1, MaxPorts: 2},
		"no ports":    {Host: netip.MustParseAddr("198.18.0.2"), MinPorts: 0, MaxPorts: 2},
		"host inside": {Host: netip.MustParseAddr("198.18.4.9"), MinPorts: 1, MaxPorts: 2, Sweep: netip.MustParsePrefix("198.18.4.0/22"), SweepTop: 100},
		"huge sweep":  {Host: netip.MustParseAddr("198.18.0.2"), MinPorts: 1, MaxPorts: 2, Sweep: netip.MustParsePrefix("10.0.0.0/8"), SweepTop: 100},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestWriteRead(t *testing.T) {
	p, err := New(opts(7))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "plan.json")
	if err := p.Write(file); err != nil {
		t.Fatal(err)
	}
	q, err := Read(file)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, q) {
		t.Errorf("read back %+v, wrote %+v", q, p)
	}
	if got, want := len(p.Listeners()), len(p.Ports)+countOpen(p.Sweep); got != want {
		t.Errorf("%d listeners, want %d", got, want)
	}
}

func countOpen(s *Sweep) int {
	n := 0
	for _, ports := range s.Open {
		n += len(ports)
	}
	return n
}
