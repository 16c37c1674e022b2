package main

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestDNSAnswer(t *testing.T) {
	query := []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'f', 'o', 'o', 0, 0, 1, 0, 1}
	for _, tc := range []struct {
		name  string
		q     []byte
		flags uint16 // of the answer; 0: no answer
	}{
		{"standard query, RD", query, 0x8183},         // QR, RD, RA, NXDOMAIN
		{"status query", setOpcode(query, 2), 0x9084}, // QR, opcode 2, RA, NOTIMP
		{"shorter than a header", query[:11], 0},
	} {
		got := dnsAnswer(tc.q)
		if tc.flags == 0 {
			if got != nil {
				t.Errorf("%s: answered %x, want no answer", tc.name, got)
			}
			continue
		}
		if f := binary.BigEndian.Uint16(got[2:]); f != tc.flags || !bytes.Equal(got[:2], tc.q[:2]) || !bytes.Equal(got[4:], tc.q[4:]) {
			t.Errorf("%s: %x, want flags %04x and the query's id and body", tc.name, got, tc.flags)
		}
	}
}

func setOpcode(q []byte, op uint16) []byte {
	q = bytes.Clone(q)
	f := binary.BigEndian.Uint16(q[2:])&^(0xf<<11) | op<<11
	f &^= 1 << 8 // no RD
	binary.BigEndian.PutUint16(q[2:], f)
	return q
}

func TestParseArgs(t *testing.T) {
	var stderr bytes.Buffer
	c, err := parseArgs([]string{"-host", "198.18.0.2", "-silent", "", "-ready", "f"}, &stderr)
	if err != nil || len(c.silent) != 0 || len(c.echo) != 2 || c.dns != 53 {
		t.Fatalf("defaults with -silent '': %+v, %v", c, err)
	}
	for _, args := range [][]string{
		{"-host", "nope", "-ready", "f"},
		{"-host", "198.18.0.2"},
		{"-host", "198.18.0.2", "-ready", "f", "-echo", "7,x"},
		{"-host", "198.18.0.2", "-ready", "f", "-silent", "0"},
	} {
		if _, err := parseArgs(args, &stderr); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}
