//go:build linux

package main

import (
	"testing"

	"github.com/portkit/portkit/internal/servicefixture"
)

func TestHasToken(t *testing.T) {
	for _, c := range []struct {
		v, tok string
		want   bool
	}{
		{"9.2p1", "9.2p1", true},
		{"9.2p1 Debian 2+deb12u10", "9.2p1", true},
		{"5.5.5-10.11.19-MariaDB-0+deb12u1", "10.11.19", true},
		{"9.2p12", "9.2p1", false},
		{"1.22.10", "1.22.1", false},
		{"11.22.1", "1.22.1", false},
		{"", "1.0", false},
	} {
		if got := hasToken(c.v, c.tok); got != c.want {
			t.Errorf("hasToken(%q, %q) = %v, want %v", c.v, c.tok, got, c.want)
		}
	}
}

func TestJudge(t *testing.T) {
	dns := truthPort{server: servicefixture.Server{Service: "dns", Product: "dnsmasq"}, proto: "udp", port: 47109, version: "2.90"}
	ntp := truthPort{server: servicefixture.Server{Service: "ntp"}, proto: "udp", port: 47117}
	for _, c := range []struct {
		name                      string
		t                         truthPort
		f                         finding
		ok                        bool
		service, product, version bool
	}{
		{"nmap's names", dns, finding{State: "open", Service: "domain", Product: "dnsmasq", Version: "2.90"}, true, true, true, true},
		{"identified, scan state kept", dns, finding{State: "open|filtered", Service: "dns", Product: "dnsmasq", Version: "2.90"}, true, true, true, true},
		{"silent", dns, finding{State: "open|filtered"}, true, false, false, false},
		{"not reported", dns, finding{}, false, false, false, false},
		{"wrong version", dns, finding{State: "open", Service: "dns", Product: "dnsmasq", Version: "2.89"}, true, true, true, false},
		{"product in another case", dns, finding{State: "open", Service: "dns", Product: "Dnsmasq DNS", Version: "2.90"}, true, true, true, true},
		{"nothing to reveal", ntp, finding{State: "open", Service: "ntp"}, true, true, true, true},
		{"closed", ntp, finding{State: "closed", Service: "ntp"}, true, false, false, false},
	} {
		m := judge(c.t, c.f, c.ok)
		if m.service != c.service || m.product != c.product || m.version != c.version {
			t.Errorf("%s: judged %+v, want service %v product %v version %v", c.name, m, c.service, c.product, c.version)
		}
	}
}
