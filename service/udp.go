package service

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portkit/portkit/scan"
)

// UDP: the scanner's own probe payloads (scan.UDPPayload), with the
// replies parsed into service and version where the protocol tells; DNS
// is asked version.bind, NTP is asked its variables in a mode 6 query.

// udpProbe is one request and the parser of its reply.
type udpProbe struct {
	name  string
	data  []byte
	parse func(b []byte) (Result, bool)
	// then is a second request on the same socket once parse matched.
	then func(c net.Conn, wait time.Duration, r *Result)
}

func (id *Identifier) udpProbes(port uint16) []udpProbe {
	all := []udpProbe{
		{"dns", dnsVersionQuery, parseDNSVersion, nil},
		{"ntp", scan.UDPPayload(123), parseNTP, ntpVersion},
		{"memcached", scan.UDPPayload(11211), parseMemcachedUDP, nil},
		{"stun", scan.UDPPayload(3478), parseSTUN, nil},
		{"sip", scan.UDPPayload(5060), func(b []byte) (Result, bool) { return textReply(b, "SIP/2.0 ", "sip") }, nil},
	}
	if id.SNMP {
		all = append(all, udpProbe{"snmp", scan.UDPPayload(161), parseSNMP, nil})
	}
	own := map[uint16]string{53: "dns", 123: "ntp", 11211: "memcached", 3478: "stun", 5060: "sip", 161: "snmp"}[port]
	// The port's own protocol first, then the others in order.
	slices.SortStableFunc(all, func(a, b udpProbe) int {
		switch {
		case a.name == own && b.name != own:
			return -1
		case b.name == own && a.name != own:
			return 1
		}
		return 0
	})
	return all
}

// UDP identifies the service on the UDP port addr.
func (id *Identifier) UDP(ctx context.Context, addr netip.AddrPort) Result {
	ctx, cancel := context.WithTimeout(ctx, id.timeout())
	defer cancel()
	r := id.udp(ctx, addr)
	finish(&r)
	return r
}

func (id *Identifier) udp(ctx context.Context, addr netip.AddrPort) Result {
	var first []byte
	for _, p := range id.udpProbes(addr.Port()) {
		if ctx.Err() != nil {
			break
		}
		c, err := id.dialUDP(ctx, addr)
		if err != nil {
			return Result{Service: Unknown, Evidence: "connect failed: " + plainErr(err)}
		}
		stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
		wait := clampDur(0, minReplyWait, maxReplyWait)
		reply := udpExchange(c, p.data, wait, id.maxBytes())
		if len(reply) > 0 {
			if r, ok := p.parse(reply); ok {
				if p.then != nil {
					p.then(c, wait, &r)
				}
				stop()
				c.Close()
				return r
			}
			if first == nil {
				first = reply
			}
		}
		stop()
		c.Close()
	}
	if first != nil {
		return Result{Service: Unknown, Banner: escape(first, 96), Evidence: "replied with bytes no detector recognised"}
	}
	return Result{Service: Unknown, Evidence: "no reply to any probe"}
}

func (id *Identifier) dialUDP(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	if id.Dial != nil {
		return id.Dial(ctx, "udp", addr.String())
	}
	var d net.Dialer
	return d.DialContext(ctx, "udp", addr.String())
}

// udpExchange sends data and returns the first datagram back.
func udpExchange(c net.Conn, data []byte, wait time.Duration, limit int) []byte {
	c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write(data); err != nil {
		return nil
	}
	buf := make([]byte, min(limit, 65535))
	n, err := c.Read(buf)
	if err != nil && n == 0 {
		return nil
	}
	return buf[:n]
}

// parseNTP recognises a server's reply (mode 4) to the client request of
// RFC 5905 §7.3: it copies our transmit timestamp into its origin
// timestamp.
func parseNTP(b []byte) (Result, bool) {
	if len(b) < 48 || b[0]&7 != 4 || !bytes.Equal(b[24:32], []byte("portkit!")) {
		return Result{}, false
	}
	vn, stratum := b[0]>>3&7, b[1]
	r := Result{Service: "ntp", Confidence: 10, Info: "NTPv" + strconv.Itoa(int(vn)) + ", stratum " + strconv.Itoa(int(stratum)),
		Evidence: "mode 4 reply with our transmit timestamp as its origin"}
	return r, true
}

// ntpReadVars is an NTP control message (RFC 9327, mode 6) READVAR for
// the system variables, which ntpd and ntpsec answer with their version.
var ntpReadVars = []byte{0x16, 0x02, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}

func ntpVersion(c net.Conn, wait time.Duration, r *Result) {
	b := udpExchange(c, ntpReadVars, wait, 4096)
	if len(b) < 12 || b[0]&7 != 6 || b[1]&0x80 == 0 {
		return
	}
	text := string(b[12:])
	i := strings.Index(text, `version="`)
	if i < 0 {
		return
	}
	v, _, _ := strings.Cut(text[i+len(`version="`):], `"`)
	r.Evidence = "mode 6 READVAR version=" + quote(v)
	switch f := strings.Fields(v); {
	case len(f) >= 2 && strings.HasPrefix(f[1], "ntpsec-"):
		r.Product, r.Version = "ntpsec", strings.TrimPrefix(f[1], "ntpsec-")
	case len(f) >= 2 && f[0] == "ntpd":
		r.Product, r.Version = "ntpd", f[1]
	}
}

// parseMemcachedUDP reads the reply to the UDP version command: the
// 8-byte frame header (request id echoed), then "VERSION x".
func parseMemcachedUDP(b []byte) (Result, bool) {
	if len(b) < 8 || b[0] != 0x70 || b[1] != 0x6b {
		return Result{}, false
	}
	line := firstLine(b[8:])
	v, ok := strings.CutPrefix(line, "VERSION ")
	if !ok {
		return Result{}, false
	}
	return Result{Service: "memcached", Product: "memcached", Version: v, Confidence: 10, Evidence: quote(line)}, true
}

// parseSNMP reads the sysDescr.0 value from a GetResponse (RFC 3416
// §3): the last OCTET STRING of the message.
func parseSNMP(b []byte) (Result, bool) {
	msgs := berSplit(b)
	if len(msgs) == 0 {
		return Result{}, false
	}
	m := msgs[0]
	// The response PDU is [2] (0xa2); the varbind's value is the last
	// OCTET STRING in the message.
	if !bytes.Contains(m, []byte{0x2b, 6, 1, 2, 1, 1, 1, 0}) {
		return Result{}, false
	}
	var descr string
	for i := 0; i+2 <= len(m); i++ {
		if m[i] == 0x04 {
			n, hl, ok := berLen(m[i+1:])
			if ok && i+1+hl+n == len(m) {
				descr = string(m[i+1+hl:])
			}
		}
	}
	r := Result{Service: "snmp", Confidence: 8, Evidence: "GetResponse for sysDescr.0"}
	if descr != "" {
		r.Confidence, r.Info = 10, truncate(strings.TrimSpace(descr), 120)
		r.Evidence += ": " + quote(r.Info)
	}
	return r, true
}
