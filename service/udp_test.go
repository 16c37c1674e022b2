package service

import "testing"

// TestSNMPOnlyWhenAsked: the community "public" is not sent unless the
// caller opted in, on 161 or any other port.
func TestSNMPOnlyWhenAsked(t *testing.T) {
	for _, snmp := range []bool{false, true} {
		for _, port := range []uint16{161, 53, 40000} {
			id := Identifier{Options: Options{SNMP: snmp}}
			found := false
			for _, p := range id.udpProbes(port) {
				found = found || p.name == "snmp"
			}
			if found != snmp {
				t.Errorf("SNMP %v, port %d: snmp probe sent %v", snmp, port, found)
			}
		}
	}
	id := Identifier{Options: Options{SNMP: true}}
	if first := id.udpProbes(161)[0].name; first != "snmp" {
		t.Errorf("port 161 asks %s first, want snmp", first)
	}
	if first := id.udpProbes(123)[0].name; first != "ntp" {
		t.Errorf("port 123 asks %s first, want ntp", first)
	}
}

func TestCPE(t *testing.T) {
	for _, c := range []struct{ product, version, want string }{
		{"OpenSSH", "9.2p1", "cpe:2.3:a:openbsd:openssh:9.2p1:*:*:*:*:*:*:*"},
		{"MariaDB", "", "cpe:2.3:a:mariadb:mariadb:*:*:*:*:*:*:*:*"},
		{"Exim", "4.96+fix:1", `cpe:2.3:a:exim:exim:4.96\+fix\:1:*:*:*:*:*:*:*`},
		{"Some Appliance", "1.0", ""},
	} {
		if got := cpeFor(c.product, c.version); got != c.want {
			t.Errorf("cpeFor(%q, %q) = %q, want %q", c.product, c.version, got, c.want)
		}
	}
}
