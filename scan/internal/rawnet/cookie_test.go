package rawnet

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// TestSipHashVectors checks sipHash24 against the 64 published test
// vectors of SipHash-2-4: key 00 01 … 0f, message 00 01 … i-1.
func TestSipHashVectors(t *testing.T) {
	f, err := os.Open("testdata/siphash24.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var key [16]byte
	for i := range key {
		key[i] = byte(i)
	}
	msg := make([]byte, 0, 64)
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		want, err := hex.DecodeString(line)
		if err != nil || len(want) != 8 {
			t.Fatalf("vector %d: %q", n, line)
		}
		if got := sipHash24(key, msg); got != binary.LittleEndian.Uint64(want) {
			t.Errorf("SipHash-2-4 of %d bytes = %016x, want %s (little-endian)", n, got, line)
		}
		msg = append(msg, byte(n))
		n++
	}
	if n != 64 {
		t.Errorf("read %d vectors, want 64", n)
	}
	// The worked example of the paper's appendix A: 15 bytes.
	if got := sipHash24(key, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}); got != 0xa129ca6149be45e5 {
		t.Errorf("appendix A example = %016x, want a129ca6149be45e5", got)
	}
}

func TestCookie(t *testing.T) {
	a, b := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	c := Cookie(testKey, a, b, 40000, 80)
	if c != Cookie(testKey, a, b, 40000, 80) {
		t.Fatal("Cookie is not deterministic")
	}
	other := testKey
	other[3] ^= 1
	for name, d := range map[string]uint32{
		"another key":         Cookie(other, a, b, 40000, 80),
		"another source":      Cookie(testKey, netip.MustParseAddr("198.18.0.3"), b, 40000, 80),
		"another destination": Cookie(testKey, a, netip.MustParseAddr("198.18.0.3"), 40000, 80),
		"another source port": Cookie(testKey, a, b, 40001, 80),
		"another port":        Cookie(testKey, a, b, 40000, 81),
		"ends swapped":        Cookie(testKey, b, a, 80, 40000),
	} {
		if d == c {
			t.Errorf("%s gives the same cookie %#x", name, c)
		}
	}
	// IPv4 and its IPv4-mapped IPv6 form are one address to the cookie.
	if Cookie(testKey, netip.AddrFrom16(a.As16()), b, 40000, 80) != c {
		t.Error("an IPv4-mapped source changes the cookie")
	}
}

// TestCookieSpread is a coarse check that the low bits of cookies over
// consecutive ports are not biased: each of the 16 values of the low 4
// bits appears about 1/16 of the time.
func TestCookieSpread(t *testing.T) {
	a, b := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	var count [16]int
	const n = 1 << 16
	for p := range n {
		count[Cookie(testKey, a, b, 40000, uint16(p))&15]++
	}
	for v, c := range count {
		if c < n/16*9/10 || c > n/16*11/10 {
			t.Errorf("low bits %d appear %d times in %d, want about %d", v, c, n, n/16)
		}
	}
}

func TestValidCookieUDPAndOther(t *testing.T) {
	var r Reply
	if err := ParseReply(probe4.udpAnswer(t, "x"), &r); err != nil {
		t.Fatal(err)
	}
	if !ValidCookie(testKey, &r) {
		t.Error("a UDP reply is not valid")
	}
	if ValidCookie(testKey, &Reply{Proto: 47}) {
		t.Error("a GRE packet is valid")
	}
}

func BenchmarkCookie(b *testing.B) {
	b.ReportAllocs()
	a, d := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	var port uint16
	for b.Loop() {
		port++
		Cookie(testKey, a, d, 40000, port)
	}
}
