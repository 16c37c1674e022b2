package rawnet

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

var testKey = [16]byte{0: 0x70, 1: 0x6b, 15: 0x01}

// probe and the replies to it, as the target would send them.
type testProbe struct {
	local, remote netip.AddrPort
}

func (p testProbe) cookie() uint32 {
	return Cookie(testKey, p.local.Addr(), p.remote.Addr(), p.local.Port(), p.remote.Port())
}

func (p testProbe) syn(t testing.TB) []byte {
	b, err := AppendTCP(nil, TCP{Src: p.local, Dst: p.remote, Seq: p.cookie(), Flags: FlagSYN, Window: 1024, MSS: 1460})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (p testProbe) udp(t testing.TB, payload string) []byte {
	b, err := AppendUDP(nil, UDP{Src: p.local, Dst: p.remote, Payload: []byte(payload)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// answer is the target's TCP answer with flags, acknowledging ack.
func (p testProbe) answer(t testing.TB, flags TCPFlags, ack uint32) []byte {
	b, err := AppendTCP(nil, TCP{Src: p.remote, Dst: p.local, Seq: 777, Ack: ack, Flags: flags, Window: 65535, MSS: 1400, TTL: 61})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (p testProbe) udpAnswer(t testing.TB, payload string) []byte {
	b, err := AppendUDP(nil, UDP{Src: p.remote, Dst: p.local, Payload: []byte(payload), TTL: 63})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// icmpError builds an ICMP (or ICMPv6) error from `from` to the probe's
// source quoting quoted, the way RFC 792 and RFC 4443 lay it out. Its
// checksum is left zero: ParseReply does not read it.
func icmpError(from netip.Addr, typ, code uint8, quoted []byte) []byte {
	src, _, _, _ := parseIP(quoted)
	body := append([]byte{typ, code, 0, 0, 0, 0, 0, 0}, quoted...)
	var b []byte
	if from.Is4() {
		b = append(b, 0x45, 0, 0, 0, 0, 0, 0, 0, 64, ProtoICMP, 0, 0)
		binary.BigEndian.PutUint16(b[2:], uint16(IPv4HeaderLen+len(body)))
		f, d := from.As4(), src.src.As4()
		b = append(append(b, f[:]...), d[:]...)
	} else {
		b = append(b, 0x60, 0, 0, 0, 0, 0, ProtoICMPv6, 64)
		binary.BigEndian.PutUint16(b[4:], uint16(len(body)))
		f, d := from.As16(), src.src.As16()
		b = append(append(b, f[:]...), d[:]...)
	}
	return append(b, body...)
}

var (
	probe4 = testProbe{ap("198.18.0.1:40000"), ap("198.18.0.2:22")}
	probe6 = testProbe{ap("[2001:db8::1]:40000"), ap("[2001:db8::2]:443")}
	router = netip.MustParseAddr("198.18.0.254")
)

func TestParseReply(t *testing.T) {
	tcp4 := Flow{ProtoTCP, probe4.local, probe4.remote}
	udp4 := Flow{ProtoUDP, probe4.local, probe4.remote}
	tcp6 := Flow{ProtoTCP, probe6.local, probe6.remote}
	udp6 := Flow{ProtoUDP, probe6.local, probe6.remote}
	padded := append(probe4.answer(t, FlagRST|FlagACK, probe4.cookie()+1), 0, 0, 0, 0, 0, 0)
	udpLong := probe4.udpAnswer(t, string(make([]byte, 100)))
	quotedOptions := probe4.syn(t)
	// The quoted packet with 4 bytes of IP options (a no-op option and
	// end of options), which move its ports.
	quotedOptions = append(append([]byte{0x46}, quotedOptions[1:20]...), append([]byte{1, 0, 0, 0}, quotedOptions[20:]...)...)

	tests := []struct {
		name       string
		pkt        []byte
		kind       Kind
		reason     string
		flow       Flow
		valid      bool
		ttl        uint8
		payload    string
		payloadLen int
	}{
		{"IPv4 SYN-ACK", probe4.answer(t, FlagSYN|FlagACK, probe4.cookie()+1), KindSynAck, "syn-ack", tcp4, true, 61, "", 0},
		{"IPv4 RST-ACK", probe4.answer(t, FlagRST|FlagACK, probe4.cookie()+1), KindReset, "reset", tcp4, true, 61, "", 0},
		{"IPv4 SYN-ACK, wrong ack", probe4.answer(t, FlagSYN|FlagACK, probe4.cookie()), KindSynAck, "syn-ack", tcp4, false, 61, "", 0},
		{"IPv4 RST without ACK", probe4.answer(t, FlagRST, probe4.cookie()+1), KindReset, "reset", tcp4, false, 61, "", 0},
		{"bare ACK", probe4.answer(t, FlagACK, probe4.cookie()+1), KindOther, "", tcp4, true, 61, "", 0},
		{"IPv6 SYN-ACK", probe6.answer(t, FlagSYN|FlagACK, probe6.cookie()+1), KindSynAck, "syn-ack", tcp6, true, 61, "", 0},
		{"IPv4 RST with Ethernet padding", padded, KindReset, "reset", tcp4, true, 61, "", 0},
		{"IPv4 UDP reply", probe4.udpAnswer(t, "pong"), KindUDP, "udp-response", udp4, true, 63, "pong", 4},
		{"IPv6 UDP reply", probe6.udpAnswer(t, "pong6"), KindUDP, "udp-response", udp6, true, 63, "pong6", 5},
		{"UDP reply cut short by the capture", udpLong[:IPv4HeaderLen+UDPHeaderLen+10], KindUDP, "udp-response", udp4, true, 63, string(make([]byte, 10)), 100},
		{"port unreachable for UDP", icmpError(probe4.remote.Addr(), 3, 3, probe4.udp(t, "")), KindPortUnreachable, "port-unreach", udp4, true, 64, "", 0},
		{"host unreachable for a SYN", icmpError(router, 3, 1, probe4.syn(t)), KindUnreachable, "host-unreach", tcp4, true, 64, "", 0},
		{"net unreachable", icmpError(router, 3, 0, probe4.syn(t)), KindUnreachable, "net-unreach", tcp4, true, 64, "", 0},
		{"protocol unreachable", icmpError(router, 3, 2, probe4.udp(t, "x")), KindUnreachable, "proto-unreach", udp4, true, 64, "", 0},
		{"administratively prohibited", icmpError(router, 3, 13, probe4.syn(t)), KindUnreachable, "admin-prohibited", tcp4, true, 64, "", 0},
		{"time exceeded", icmpError(router, 11, 0, probe4.syn(t)), KindTimeExceeded, "time-exceeded", tcp4, true, 64, "", 0},
		{"quoted header with IP options", icmpError(router, 3, 10, quotedOptions), KindUnreachable, "admin-prohibited", tcp4, true, 64, "", 0},
		{"quoting the least it may: 8 bytes of TCP", icmpError(router, 3, 1, testProbe{probe4.local, ap("198.18.0.3:22")}.syn(t)[:28]), KindUnreachable, "host-unreach", Flow{ProtoTCP, probe4.local, ap("198.18.0.3:22")}, true, 64, "", 0},
		{"quoting a SYN without our cookie", icmpError(router, 3, 1, set(probe4.syn(t), 27, 0)), KindUnreachable, "host-unreach", tcp4, false, 64, "", 0},
		{"ICMPv6 port unreachable", icmpError(probe6.remote.Addr(), 1, 4, probe6.udp(t, "")), KindPortUnreachable, "port-unreach", udp6, true, 64, "", 0},
		{"ICMPv6 administratively prohibited", icmpError(probe6.remote.Addr(), 1, 1, probe6.syn(t)), KindUnreachable, "admin-prohibited", tcp6, true, 64, "", 0},
		{"ICMPv6 address unreachable", icmpError(probe6.remote.Addr(), 1, 3, probe6.syn(t)), KindUnreachable, "host-unreach", tcp6, true, 64, "", 0},
		{"ICMPv6 no route", icmpError(probe6.remote.Addr(), 1, 0, probe6.syn(t)), KindUnreachable, "net-unreach", tcp6, true, 64, "", 0},
		{"ICMPv6 packet too big", icmpError(probe6.remote.Addr(), 2, 0, probe6.syn(t)), KindICMPError, "icmp-error", tcp6, true, 64, "", 0},
		{"ICMPv6 hop limit exceeded", icmpError(probe6.remote.Addr(), 3, 0, probe6.syn(t)), KindTimeExceeded, "time-exceeded", tcp6, true, 64, "", 0},
	}
	for _, tt := range tests {
		var r Reply
		if err := ParseReply(tt.pkt, &r); err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if k := r.Kind(); k != tt.kind {
			t.Errorf("%s: Kind = %d, want %d", tt.name, k, tt.kind)
		}
		if got := r.Reason(); got != tt.reason {
			t.Errorf("%s: Reason = %q, want %q", tt.name, got, tt.reason)
		}
		if f := r.Flow(); f != tt.flow {
			t.Errorf("%s: Flow = %+v, want %+v", tt.name, f, tt.flow)
		}
		if v := ValidCookie(testKey, &r); v != tt.valid {
			t.Errorf("%s: ValidCookie = %v, want %v", tt.name, v, tt.valid)
		}
		if r.TTL != tt.ttl {
			t.Errorf("%s: TTL = %d, want %d", tt.name, r.TTL, tt.ttl)
		}
		if string(r.Payload) != tt.payload || r.PayloadLen != tt.payloadLen {
			t.Errorf("%s: payload %q of %d, want %q of %d", tt.name, r.Payload, r.PayloadLen, tt.payload, tt.payloadLen)
		}
	}
}

func TestParseReplyTCPFields(t *testing.T) {
	var r Reply
	if err := ParseReply(probe4.answer(t, FlagSYN|FlagACK, 12345), &r); err != nil {
		t.Fatal(err)
	}
	want := Reply{
		Src: probe4.remote.Addr(), Dst: probe4.local.Addr(), TTL: 61, Proto: ProtoTCP,
		SrcPort: 22, DstPort: 40000, Seq: 777, Ack: 12345, Flags: FlagSYN | FlagACK, Window: 65535,
		Payload: r.Payload,
	}
	if r.Src != want.Src || r.Dst != want.Dst || r.TTL != want.TTL || r.Proto != want.Proto ||
		r.SrcPort != want.SrcPort || r.DstPort != want.DstPort || r.Seq != want.Seq || r.Ack != want.Ack ||
		r.Flags != want.Flags || r.Window != want.Window || len(r.Payload) != 0 {
		t.Errorf("got %+v\nwant %+v", r, want)
	}
}

func TestParseReplyErrors(t *testing.T) {
	syn := probe4.syn(t)
	echoReply := icmpError(router, 0, 0, syn)
	icmpAboutICMP := icmpError(router, 3, 1, echoReply)
	tests := []struct {
		name string
		pkt  []byte
		want error
	}{
		{"empty", nil, errShort},
		{"version 5", set(syn, 0, 0x55), errVersion},
		{"IPv4 header cut", syn[:12], errShort},
		{"IPv4 header length 16", set(syn, 0, 0x44), errIPv4Header},
		{"IPv4 header longer than the packet", set(syn, 0, 0x4f)[:40], errIPv4Header},
		{"total length below the header", set(set(syn, 2, 0), 3, 10), errIPv4Header},
		{"later fragment", set(syn, 7, 1), errFragment},
		{"IPv6 header cut", probe6.syn(t)[:39], errShort},
		{"GRE", set(syn, 9, 47), errProto},
		{"TCP header cut", syn[:30], errShort},
		{"TCP data offset 4", set(syn, 32, 0x40), errTCPHeader},
		{"TCP data offset past the packet", set(syn, 32, 0xf0), errTCPHeader},
		{"UDP header cut", probe4.udp(t, "")[:25], errShort},
		{"UDP length below its header", set(probe4.udp(t, ""), 25, 4), errShort},
		{"ICMP header cut", icmpError(router, 3, 3, syn)[:26], errShort},
		{"echo reply", echoReply, errNotICMPErr},
		{"ICMP error quoting 4 bytes of TCP", icmpError(router, 3, 1, syn[:24]), errQuoted},
		{"ICMP error quoting an ICMP packet", icmpAboutICMP, errQuotedProto},
	}
	// An ICMPv4 error quoting an IPv6 packet, built by hand.
	v4about6 := icmpError(router, 3, 1, probe4.syn(t))
	v4about6 = append(v4about6[:28], probe6.syn(t)...)
	binary.BigEndian.PutUint16(v4about6[2:], uint16(len(v4about6)))
	tests = append(tests, struct {
		name string
		pkt  []byte
		want error
	}{"ICMPv4 error quoting IPv6", v4about6, errQuoted})

	for _, tt := range tests {
		var r Reply
		err := ParseReply(tt.pkt, &r)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
}

// FuzzParseReply feeds the parser anything: it must not panic, and what it
// accepts must hold together.
func FuzzParseReply(f *testing.F) {
	for _, p := range []testProbe{probe4, probe6} {
		f.Add(p.answer(f, FlagSYN|FlagACK, p.cookie()+1))
		f.Add(p.answer(f, FlagRST|FlagACK, p.cookie()+1))
		f.Add(p.udpAnswer(f, "pong"))
		f.Add(icmpError(p.remote.Addr(), 3, 3, p.udp(f, "")))
		f.Add(icmpError(p.remote.Addr(), 1, 4, p.udp(f, "")))
		f.Add(icmpError(p.remote.Addr(), 3, 13, p.syn(f)))
	}
	f.Add([]byte{0x45})
	f.Add([]byte{0x60})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		var r Reply
		if err := ParseReply(pkt, &r); err != nil {
			var pe ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a ParseError", err)
			}
			return
		}
		switch r.Proto {
		case ProtoTCP, ProtoUDP:
			if r.PayloadLen < 0 || len(r.Payload) > r.PayloadLen {
				t.Fatalf("payload of %d bytes, PayloadLen %d", len(r.Payload), r.PayloadLen)
			}
		case ProtoICMP, ProtoICMPv6:
			if o := r.Orig; o.Proto != ProtoTCP && o.Proto != ProtoUDP || o.Src.Is4() != (r.Proto == ProtoICMP) {
				t.Fatalf("ICMP error quoting %+v", o)
			}
			if r.Kind() == KindOther || r.Reason() == "" {
				t.Fatalf("ICMP error of kind %d, reason %q", r.Kind(), r.Reason())
			}
		default:
			t.Fatalf("protocol %d accepted", r.Proto)
		}
		if r.Src.Is4() != r.Dst.Is4() || !r.Src.IsValid() {
			t.Fatalf("addresses %v, %v", r.Src, r.Dst)
		}
		ValidCookie(testKey, &r)
		r.Flow()
	})
}

// set returns a copy of b with b[i] = v.
func set(b []byte, i int, v byte) []byte {
	b = append([]byte(nil), b...)
	b[i] = v
	return b
}
