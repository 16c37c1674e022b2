//go:build linux

package main

import (
	"testing"
	"time"
)

func TestParseScanlogd(t *testing.T) {
	for _, c := range []struct {
		line, src, flags string
		ok               bool
	}{
		{"<33>Dec  7 15:55:39 scanlogd: 198.18.0.10:60055 to 198.18.0.2 ports 20070, 30134, 20062, ..., f??pauxy, TOS 00 @15:55:39", "198.18.0.10", "f??pauxy", true},
		{"<33>Dec  7 15:55:47 scanlogd: 198.18.0.11 to 198.18.0.2 ports 20088, 16845, ..., f??p?uxy, TOS 00, TTL 64 @15:55:47", "198.18.0.11", "f??p?uxy", true},
		{"<33>Dec  7 15:55:52 scanlogd: 198.18.0.12:64900 to 198.18.0.2 ports 20074, 20012, ..., Fsrpauxy, TOS 00 @15:55:52", "198.18.0.12", "Fsrpauxy", true},
		{"<30>Dec  7 15:55:30 scanlogd: started", "", "", false},
		{"<30>Dec  7 15:55:30 other: 198.18.0.1 to 198.18.0.2", "", "", false},
	} {
		a, ok := parseScanlogd(time.Time{}, c.line)
		if ok != c.ok || a.src != c.src || a.kind != c.flags {
			t.Errorf("parseScanlogd(%q) = %q %q %v, want %q %q %v", c.line, a.src, a.kind, ok, c.src, c.flags, c.ok)
		}
	}
}

func TestParsePsad(t *testing.T) {
	for _, c := range []struct {
		line, src, kind string
		ok              bool
	}{
		{"<190>Dec  7 15:55:42 psad: scan detected (Nmap -sT or -sS scan): 198.18.0.10 -> 198.18.0.2 tcp: [20000-20099] flags: SYN tcp pkts: 100 DL: 2 total scan dsts: 1",
			"198.18.0.10", "Nmap -sT or -sS scan, flags SYN", true},
		{"<190>Dec  7 15:56:02 psad: scan detected (Nmap -sX scan): 198.18.0.14 -> 198.18.0.2 tcp: [20000-20099] flags: URG PSH FIN tcp pkts: 100 DL: 2 total scan dsts: 1",
			"198.18.0.14", "Nmap -sX scan, flags URG PSH FIN", true},
		{"<190>Dec  7 15:56:30 psad: scan detected (-sU scan): 198.18.0.18 -> 198.18.0.2 udp: [20000-20099] udp pkts: 100 DL: 2 total scan dsts: 1",
			"198.18.0.18", "-sU scan, udp", true},
		{"<190>Dec  7 15:56:30 psad: scan detected: 198.18.0.9 -> 198.18.0.2 tcp: [1-5] flags: SYN tcp pkts: 5 DL: 1",
			"198.18.0.9", "flags SYN", true},
		{"<190>Dec  7 15:55:30 psad: imported auto-dl file", "", "", false},
	} {
		a, ok := parsePsad(time.Time{}, c.line)
		if ok != c.ok || a.src != c.src || a.kind != c.kind {
			t.Errorf("parsePsad(%q) = %q %q %v, want %q %q %v", c.line, a.src, a.kind, ok, c.src, c.kind, c.ok)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{3, 1, 2}, 2},
		{[]time.Duration{4, 1, 3, 2}, 2}, // (2+3)/2 in integer nanoseconds
	} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
