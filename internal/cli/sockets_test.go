package cli

import (
	"reflect"
	"testing"

	"github.com/portkit/portkit/registry"
	"github.com/portkit/portkit/sockets"
)

func TestParsePortArg(t *testing.T) {
	reg := registry.New()
	for _, tt := range []struct {
		in   string
		name string
		want []portSpan
	}{
		{"3000", "", []portSpan{{3000, 3000, 0}}},
		{":3000", "", []portSpan{{3000, 3000, 0}}},
		{" :3000/udp ", "", []portSpan{{3000, 3000, sockets.UDP}}},
		{"8000-8005/tcp", "", []portSpan{{8000, 8005, sockets.TCP}}},
		{":8000-8005", "", []portSpan{{8000, 8005, 0}}},
		{"postgresql", "postgresql", []portSpan{{5432, 5432, 0}}},
		{"PostgreSQL/udp", "PostgreSQL", []portSpan{{5432, 5432, sockets.UDP}}},
		{"x11", "x11", []portSpan{{6000, 6063, 0}}},
	} {
		got, err := parsePortArg(tt.in, reg)
		if err != nil || got.name != tt.name || !reflect.DeepEqual(got.spans, tt.want) {
			t.Errorf("parsePortArg(%q) = %+v, %v; want name %q, spans %v", tt.in, got, err, tt.name, tt.want)
		}
	}
	for _, in := range []string{"", ":", "0", "0-5", "5-0", "70000", "1-70000", "localhost:80", "[::1]:80",
		"80/sctp", "80/", "nosuchservicexyz", "%", "3000-3001-3002"} {
		if _, err := parsePortArg(in, reg); err == nil || ExitCode(err) != ExitUsage {
			t.Errorf("parsePortArg(%q): %v, want a usage error", in, err)
		}
	}
}
