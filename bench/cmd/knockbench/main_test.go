package main

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"
)

// verify checks a packet's IPv4 header checksum and its transport
// checksum (over the pseudo-header), as a receiver would.
func verify(t *testing.T, b []byte) {
	t.Helper()
	if b[0] != 0x45 || int(binary.BigEndian.Uint16(b[2:])) != len(b) {
		t.Fatalf("IPv4 header: version/IHL %#x, length %d of %d", b[0], binary.BigEndian.Uint16(b[2:]), len(b))
	}
	if fold(sum16(0, b[:ipHeaderLen])) != 0 {
		t.Errorf("IPv4 header checksum does not verify")
	}
	var src, dst [4]byte
	copy(src[:], b[12:16])
	copy(dst[:], b[16:20])
	seg := b[ipHeaderLen:]
	if fold(sum16(pseudoSum(b[9], src, dst, len(seg)), seg)) != 0 {
		t.Errorf("transport checksum (protocol %d) does not verify", b[9])
	}
}

func TestPackets(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	payloads, sums := junkPayloads(r, 8)
	buf := make([]byte, 2048)
	for i, p := range payloads {
		if len(p) < 150 || len(p) > 600 || strings.Trim(string(p), base64Alphabet) != "" {
			t.Fatalf("payload %d: %d bytes, %q...", i, len(p), p[:10])
		}
		src := junkSource(r)
		if src[0] != 198 || src[1] != 19 || src[2] < 128 {
			t.Errorf("junk source %v is outside 198.19.128.0/17", src)
		}
		pkt := udpPacket(buf, src, [4]byte{198, 18, 1, 2}, 40000+uint16(i), spaPort, uint16(i), p, sums[i])
		verify(t, pkt)
		if got := binary.BigEndian.Uint16(pkt[22:]); got != spaPort {
			t.Errorf("UDP destination port %d", got)
		}
		if string(pkt[28:]) != string(p) {
			t.Errorf("payload not carried")
		}
		// An odd length exercises the padding of the sum.
		odd := p
		if len(odd)%2 == 0 {
			odd = odd[:len(odd)-1]
		}
		verify(t, udpPacket(buf, src, [4]byte{198, 18, 2, 2}, 1, 2, 3, odd, sum16(0, odd)))
	}
	syn := synPacket(buf, [4]byte{198, 19, 200, 1}, [4]byte{198, 18, 3, 2}, 12345, 7000, 9, 0xdeadbeef)
	verify(t, syn)
	if syn[9] != protoTCP || syn[ipHeaderLen+13] != 0x02 || binary.BigEndian.Uint16(syn[ipHeaderLen+2:]) != 7000 {
		t.Errorf("not a SYN to 7000: % x", syn)
	}
}

func TestParseArgs(t *testing.T) {
	var out, errb strings.Builder
	ns := []string{"-ns-portkit", "a", "-ns-fwknopd", "b", "-ns-knockd", "c"}
	c, err := parseArgs(append([]string{"open", "-trials", "30"}, ns...), &out, &errb)
	if err != nil || c.trials != 30 || c.limit != 2*time.Second || c.nsKnockd != "c" {
		t.Fatalf("parseArgs open: %+v, %v", c, err)
	}
	for _, mode := range []string{"about", "replay"} {
		if _, err := parseArgs([]string{mode}, &out, &errb); err != nil {
			t.Errorf("%s needs no namespaces: %v", mode, err)
		}
	}
	for _, bad := range [][]string{{}, {"nope"}, {"open"}, append([]string{"flood", "-valid", "300"}, ns...),
		append([]string{"open", "-md", "x"}, ns...), append([]string{"open", "extra"}, ns...), append([]string{"flood", "-seconds", "0"}, ns...)} {
		if _, err := parseArgs(bad, &out, &errb); err == nil {
			t.Errorf("parseArgs(%q) succeeded", bad)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	m := parseMetrics("# HELP x\n# TYPE x counter\nportkit_knockd_accepted_total{kind=\"spa\"} 93\nportkit_knockd_dropped_packets_total 27691\nbad line\n")
	if m[`portkit_knockd_accepted_total{kind="spa"}`] != 93 || m["portkit_knockd_dropped_packets_total"] != 27691 || len(m) != 2 {
		t.Errorf("parseMetrics = %v", m)
	}
	if got := portkitCounters(m); !strings.Contains(got, "SPA packets accepted 93") || !strings.Contains(got, "27,691") {
		t.Errorf("portkitCounters = %q", got)
	}
}

func TestStatsAndCount(t *testing.T) {
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	st := statsOf(lat)
	if st.n != 100 || st.min != time.Millisecond || st.max != 100*time.Millisecond || st.p50 != 50500*time.Microsecond || st.p99 != 99010*time.Microsecond {
		t.Errorf("statsOf = %+v", st)
	}
	if lat[0] != 100*time.Millisecond {
		t.Error("statsOf sorted its input")
	}
	if statsOf(nil).n != 0 {
		t.Error("statsOf(nil)")
	}
	if got := countIn([]string{"198.19.0.1", "198.19.0.3", "198.18.1.1"}, []string{"198.19.0.1", "198.19.0.2", "198.19.0.3"}); got != 2 {
		t.Errorf("countIn = %d", got)
	}
}

// TestReplayMode loads a small cache file as the benchmark loads a big
// one.
func TestReplayMode(t *testing.T) {
	c := &config{mode: "replay", tmp: t.TempDir(), digests: 1000}
	s, err := replayMode(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	md := s.Markdown("")
	if !strings.Contains(md, "| 1,000 | ") || !s.Pass {
		t.Errorf("section:\n%s", md)
	}
}

func TestRSSFigures(t *testing.T) {
	s := []rssSample{{rss: 10, anon: 1}, {rss: 30, anon: 3}, {rss: 20, anon: 2}}
	if a, b, c := rssFigures(s, vmRSS); a != 10 || b != 30 || c != 20 {
		t.Errorf("rssFigures = %d %d %d", a, b, c)
	}
	if a, b, c := rssFigures(nil, rssAnon); a != 0 || b != 0 || c != 0 {
		t.Errorf("rssFigures(nil) = %d %d %d", a, b, c)
	}
}

// TestPoll: on loopback, a listening port is found; a port nothing
// listens on is not (a refused connect is not an opening), and the poll
// gives up at its limit.
func TestPoll(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	d, tries, err := poll(context.Background(), ln.Addr().String(), time.Now(), 10*time.Second)
	if err != nil || d <= 0 || tries < 1 {
		t.Fatalf("poll of a listening port: %v, %d tries, %v", d, tries, err)
	}
	closed := ln.Addr().String()
	ln.Close()
	_, tries, err = poll(context.Background(), closed, time.Now(), 200*time.Millisecond)
	if !errors.Is(err, errNotOpened) || tries < 1 {
		t.Fatalf("poll of a closed port: %d tries, %v", tries, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := poll(ctx, closed, time.Now(), time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("poll with its context ended: %v", err)
	}
}
