package main

import (
	"strings"
	"testing"
)

func TestUDPRowTruth(t *testing.T) {
	rows := udpRows("198.18.0.16/28")
	for _, tc := range []struct {
		row                     int
		size                    int
		p7, p161, p162, wantRow string
	}{
		{0, 1000, "open", "open|filtered", "closed", "ICMP limit lifted"},
		{1, 1000, "open", "closed", "closed", "the same without the silent port 161"},
		{3, 1000, "open|filtered", "open|filtered", "open|filtered", "every UDP packet dropped by nftables"},
	} {
		r := rows[tc.row]
		truth, err := r.truth()
		if err != nil || r.name != tc.wantRow {
			t.Fatalf("row %d (%s): %v", tc.row, r.name, err)
		}
		if len(truth) != tc.size || truth[7] != tc.p7 || truth[161] != tc.p161 || truth[162] != tc.p162 {
			t.Errorf("row %d: %d ports, 7 %s, 161 %s, 162 %s; want %d, %s, %s, %s",
				tc.row, len(truth), truth[7], truth[161], truth[162], tc.size, tc.p7, tc.p161, tc.p162)
		}
	}
	if alone, _ := rows[2].truth(); len(alone) != 1 || alone[161] != "open|filtered" {
		t.Errorf("port 161 alone: %v", alone)
	}
	if r := rows[5]; r.sources != "198.18.0.16/28" || r.vsRow != 4 || r.nmap {
		t.Errorf("the spreading row: %+v", r)
	}
}

// nmap folds closed UDP ports into <extraports>, with a list of them.
func TestParseNmapUDP(t *testing.T) {
	const xml = `<?xml version="1.0"?>
<nmaprun><host><address addr="198.18.0.2" addrtype="ipv4"/>
<ports><extraports state="closed" count="3"><extrareasons reason="port-unreach" count="3" proto="udp" ports="1-2,4"/></extraports>
<port protocol="udp" portid="3"><state state="open|filtered"/></port>
<port protocol="tcp" portid="3"><state state="open"/></port>
</ports></host><runstats><finished exit="success"/></runstats></nmaprun>`
	r, err := nmapParser("udp")(strings.NewReader(xml))
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint16]string{}
	for k, st := range r.states {
		got[k.port] = st
	}
	if len(got) != 4 || got[1] != "closed" || got[4] != "closed" || got[3] != "open|filtered" {
		t.Errorf("states %v", got)
	}
}
