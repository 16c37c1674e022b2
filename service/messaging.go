package service

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
)

// Messaging and media: MQTT, AMQP, Kafka, XMPP, RTSP, SIP, STUN.

// mqttDetector sends CONNECT (MQTT 3.1.1 §3.1) and reads CONNACK
// (§3.2); a broker that lets the client in is asked the retained
// $SYS/broker/version topic, which Mosquitto and others publish.
var mqttDetector = &detector{name: "mqtt", ports: []uint16{1883, 8883}, probe: func(s *session) (Result, bool) {
	connect := []byte{0x10, 19, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 30, 0, 7, 'p', 'o', 'r', 't', 'k', 'i', 't'}
	b := s.exchange(connect, func(b []byte) bool { return len(b) >= 4 })
	if len(b) < 4 || b[0] != 0x20 || b[1] != 2 {
		return Result{}, false
	}
	rc := b[3]
	r := Result{Service: "mqtt", Confidence: 8, Evidence: "CONNECT answered CONNACK, return code " + strconv.Itoa(int(rc))}
	if rc != 0 {
		return r, true
	}
	s.reset()
	topic := "$SYS/broker/version"
	sub := []byte{0x82, byte(2 + 2 + len(topic) + 1), 0, 1, 0, byte(len(topic))}
	sub = append(sub, topic...)
	sub = append(sub, 0)
	pub := s.exchange(sub, func(b []byte) bool { return mqttPublish(b) != nil })
	if v := mqttPublish(pub); v != nil {
		text := string(v)
		if p, ver, ok := strings.Cut(text, " version "); ok {
			r.Product, r.Version = mqttProduct(p), ver
			r.Confidence, r.Evidence = 10, topic+": "+quote(text)
		}
	}
	s.send([]byte{0xe0, 0}) // DISCONNECT
	return r, true
}}

func mqttProduct(p string) string {
	if strings.EqualFold(p, "mosquitto") {
		return "Mosquitto"
	}
	return p
}

// mqttPublish finds a PUBLISH packet after the SUBACK and returns its
// payload.
func mqttPublish(b []byte) []byte {
	for len(b) >= 2 {
		n, used := 0, 0
		for i, mul := 1, 1; i < len(b) && i <= 4; i, mul = i+1, mul*128 {
			n += int(b[i]&0x7f) * mul
			used = i
			if b[i]&0x80 == 0 {
				break
			}
		}
		start := used + 1
		if used == 0 || start+n > len(b) {
			return nil
		}
		body := b[start : start+n]
		if b[0]&0xf0 == 0x30 && len(body) >= 2 {
			tl := int(binary.BigEndian.Uint16(body))
			off := 2 + tl
			if b[0]&0x06 != 0 {
				off += 2 // packet identifier for QoS 1 and 2
			}
			if off <= len(body) {
				return body[off:]
			}
			return nil
		}
		b = b[start+n:]
	}
	return nil
}

// amqpDetector sends the AMQP 0-9-1 protocol header (§4.2.2); the broker
// answers Connection.Start, whose server-properties table names the
// product and version, or its own protocol header when it speaks another
// version (AMQP 1.0).
var amqpDetector = &detector{name: "amqp", ports: []uint16{5672, 5671}, probe: func(s *session) (Result, bool) {
	b := s.exchange([]byte("AMQP\x00\x00\x09\x01"), func(b []byte) bool {
		if bytes.HasPrefix(b, []byte("AMQP")) {
			return len(b) >= 8
		}
		return len(b) >= 7 && len(b) >= 8+int(binary.BigEndian.Uint32(b[3:7]))
	})
	if len(b) >= 8 && bytes.HasPrefix(b, []byte("AMQP")) {
		return Result{Service: "amqp", Confidence: 8, Info: "AMQP " + strconv.Itoa(int(b[5])) + "." + strconv.Itoa(int(b[6])),
			Evidence: "replied with its protocol header " + escape(b[:8], 8)}, true
	}
	if len(b) < 12 || b[0] != 1 || binary.BigEndian.Uint16(b[7:]) != 10 || binary.BigEndian.Uint16(b[9:]) != 10 {
		return Result{}, false
	}
	r := Result{Service: "amqp", Confidence: 8, Evidence: "Connection.Start", Info: "AMQP 0-9-1"}
	if len(b) >= 17 {
		props := amqpTable(b[13:])
		r.Product, r.Version = props["product"], props["version"]
		if r.Product != "" {
			r.Confidence = 10
			r.Evidence = "Connection.Start server-properties: product " + quote(r.Product)
		}
	}
	return r, true
}}

// amqpTable reads the long-string fields of an AMQP 0-9-1 field table
// (§4.2.5.5): its length, then entries of short-string name, type octet
// and value. It stops at the first type it cannot size.
func amqpTable(b []byte) map[string]string {
	out := map[string]string{}
	if len(b) < 4 {
		return out
	}
	n := int(binary.BigEndian.Uint32(b))
	b = b[4:]
	if n < len(b) {
		b = b[:n]
	}
	for len(b) > 2 {
		nl := int(b[0])
		if 1+nl+1 > len(b) {
			break
		}
		name, typ := string(b[1:1+nl]), b[1+nl]
		b = b[2+nl:]
		size := 0
		switch typ {
		case 'S', 'F', 'A', 'x':
			if len(b) < 4 {
				return out
			}
			size = 4 + int(binary.BigEndian.Uint32(b))
			if typ == 'S' && size <= len(b) {
				out[name] = string(b[4:size])
			}
		case 't', 'b', 'B':
			size = 1
		case 'U', 'u', 's':
			size = 2
		case 'I', 'i', 'f':
			size = 4
		case 'L', 'l', 'd', 'T':
			size = 8
		case 'D':
			size = 5
		case 'V':
		default:
			return out
		}
		if size > len(b) {
			return out
		}
		b = b[size:]
	}
	return out
}

// kafkaDetector sends ApiVersions v0 (Kafka protocol, api key 18); the
// reply echoes the correlation id and lists the API ranges.
var kafkaDetector = &detector{name: "kafka", ports: []uint16{9092}, probe: func(s *session) (Result, bool) {
	req := []byte{0, 0, 0, 0, 0, 18, 0, 0, 0x70, 0x6b, 0x69, 0x74, 0, 7}
	req = append(req, "portkit"...)
	binary.BigEndian.PutUint32(req, uint32(len(req)-4))
	b := s.exchange(req, func(b []byte) bool { return len(b) >= 4 && len(b) >= 4+int(binary.BigEndian.Uint32(b)) })
	if len(b) < 14 || !bytes.Equal(b[4:8], []byte{0x70, 0x6b, 0x69, 0x74}) {
		return Result{}, false
	}
	errCode := binary.BigEndian.Uint16(b[8:])
	n := binary.BigEndian.Uint32(b[10:])
	if errCode != 0 && errCode != 35 || n > 1000 {
		return Result{}, false
	}
	return Result{Service: "kafka", Product: "Apache Kafka", Confidence: 10,
		Evidence: "ApiVersions answered with " + strconv.Itoa(int(n)) + " API ranges"}, true
}}

// xmppDetector opens a client stream (RFC 6120 §4.2) and reads the
// server's stream header and features; STARTTLS (§5) is followed where
// offered.
var xmppDetector = &detector{name: "xmpp", ports: []uint16{5222, 5269}, probe: func(s *session) (Result, bool) {
	open := "<?xml version='1.0'?><stream:stream to='" + s.t.host + "' xmlns='jabber:client' " +
		"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
	b := s.exchange([]byte(open), func(b []byte) bool {
		return bytes.Contains(b, []byte("</stream:features>")) || bytes.Contains(b, []byte("</stream:stream>"))
	})
	if !bytes.Contains(b, []byte("http://etherx.jabber.org/streams")) {
		return Result{}, false
	}
	r := Result{Service: "xmpp", Confidence: 10, Evidence: "stream header in the jabber streams namespace"}
	if bytes.Contains(b, []byte("urn:ietf:params:xml:ns:xmpp-tls")) {
		s.reset()
		reply := s.exchange([]byte("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"), func(b []byte) bool { return bytes.Contains(b, []byte(">")) })
		if bytes.Contains(reply, []byte("<proceed")) {
			upgrade(s, &r, "xmpp")
		}
	}
	return r, true
}}

// rtspDetector sends OPTIONS (RFC 2326 §10.1).
var rtspDetector = &detector{name: "rtsp", ports: []uint16{554, 8554}, probe: func(s *session) (Result, bool) {
	b := s.exchange([]byte("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: portkit\r\n\r\n"), func(b []byte) bool { return bytes.Contains(b, []byte("\r\n\r\n")) })
	return textReply(b, "RTSP/1.0 ", "rtsp")
}}

// sipDetector sends OPTIONS over TCP (RFC 3261 §11, §18).
var sipDetector = &detector{name: "sip", ports: []uint16{5060, 5061}, probe: func(s *session) (Result, bool) {
	b := s.exchange(sipOptions(s.t.host, portOf(s.t.addr), "TCP"), func(b []byte) bool { return bytes.Contains(b, []byte("\r\n\r\n")) })
	return textReply(b, "SIP/2.0 ", "sip")
}}

func sipOptions(host, port, transport string) []byte {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return []byte("OPTIONS sip:" + host + ":" + port + " SIP/2.0\r\n" +
		"Via: SIP/2.0/" + transport + " portkit.invalid;branch=z9hG4bKportkit\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:portkit@portkit.invalid>;tag=portkit\r\nTo: <sip:" + host + ">\r\n" +
		"Call-ID: portkit@portkit.invalid\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
}

// textReply recognises an HTTP-like reply of prefix and reads its Server
// or User-Agent header.
func textReply(b []byte, prefix, service string) (Result, bool) {
	line := firstLine(b)
	if !strings.HasPrefix(line, prefix) {
		return Result{}, false
	}
	r := Result{Service: service, Confidence: 8, Evidence: quote(line)}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimRight(l, "\r"), ":")
		if ok && (strings.EqualFold(k, "Server") || strings.EqualFold(k, "User-Agent")) {
			r.Product, r.Version = splitProduct(strings.TrimSpace(v))
			r.Confidence = 10
			r.Evidence += "; " + k + ": " + quote(strings.TrimSpace(v))
			break
		}
	}
	return r, true
}

// stunBinding is a Binding request (RFC 8489 §5, §6).
var stunBinding = []byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 'p', 'o', 'r', 't', 'k', 'i', 't', '-', 's', 't', 'u', 'n'}

// stunDetector sends a Binding request over TCP.
var stunDetector = &detector{name: "stun", ports: []uint16{3478}, probe: func(s *session) (Result, bool) {
	return parseSTUN(s.exchange(stunBinding, func(b []byte) bool {
		return len(b) >= 20 && len(b) >= 20+int(binary.BigEndian.Uint16(b[2:]))
	}))
}}

// parseSTUN recognises a Binding success or error response with our
// transaction id, and its SOFTWARE attribute (RFC 8489 §14.14).
func parseSTUN(b []byte) (Result, bool) {
	if len(b) < 20 || b[0] != 1 || (b[1] != 1 && b[1] != 0x11) || !bytes.Equal(b[4:20], stunBinding[4:20]) {
		return Result{}, false
	}
	r := Result{Service: "stun", Confidence: 10, Evidence: "Binding response with our transaction id"}
	attrs := b[20:min(len(b), 20+int(binary.BigEndian.Uint16(b[2:])))]
	for len(attrs) >= 4 {
		typ, n := binary.BigEndian.Uint16(attrs), int(binary.BigEndian.Uint16(attrs[2:]))
		if 4+n > len(attrs) {
			break
		}
		if typ == 0x8022 {
			sw := strings.TrimRight(string(attrs[4:4+n]), "\x00")
			r.Product, r.Version = splitProduct(sw)
			r.Evidence += "; SOFTWARE " + quote(sw)
		}
		attrs = attrs[min(len(attrs), 4+(n+3)&^3):]
	}
	return r, true
}

// splitProduct reads a product and its version from a software string:
// "name/1.2 (comment)", "Name Words 1.2", "name-1.2 extra".
func splitProduct(s string) (product, version string) {
	if p, v, ok := strings.Cut(s, "/"); ok {
		return p, firstField(v)
	}
	f := strings.Fields(s)
	if len(f) > 1 && startsDigit(f[len(f)-1]) {
		return strings.Join(f[:len(f)-1], " "), f[len(f)-1]
	}
	if len(f) > 0 {
		if i := strings.LastIndex(f[0], "-"); i > 0 && startsDigit(f[0][i+1:]) {
			return f[0][:i], f[0][i+1:]
		}
	}
	return s, ""
}

func startsDigit(s string) bool { return s != "" && s[0] >= '0' && s[0] <= '9' }

// firstField is s's first space-separated word, or "".
func firstField(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
