package service

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
)

// Databases: MySQL and MariaDB, PostgreSQL, MongoDB, Cassandra, MSSQL.

// mysqlDetector reads the Initial Handshake Packet (protocol version 10)
// MySQL and MariaDB send on connect, or the ERR packet (0xff) of a server
// that refuses the client's host (MySQL client/server protocol,
// "Connection Phase").
var mysqlDetector = &detector{name: "mysql", ports: []uint16{3306}, banner: parseMySQL}

func parseMySQL(b []byte) (Result, bool) {
	if len(b) < 5 {
		return Result{}, false
	}
	n := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
	if b[3] != 0 || n < 2 || n > 1<<16 {
		return Result{}, false
	}
	p := b[4:min(len(b), 4+n)]
	switch p[0] {
	case 10:
		end := bytes.IndexByte(p[1:], 0)
		if end < 1 || end > 100 {
			return Result{}, false
		}
		raw := string(p[1 : 1+end])
		r := Result{Service: "mysql", Confidence: 10, Evidence: "handshake v10, server version " + quote(raw)}
		v := strings.TrimPrefix(raw, "5.5.5-") // MariaDB's prefix for replication clients of old
		if i := strings.Index(v, "-MariaDB"); i >= 0 {
			r.Product, r.Version = "MariaDB", v[:i]
			r.Info = strings.TrimPrefix(v[i+len("-MariaDB"):], "-")
		} else {
			r.Product = "MySQL"
			r.Version, r.Info, _ = strings.Cut(v, "-")
		}
		return r, true
	case 0xff:
		if len(p) < 4 {
			return Result{}, false
		}
		msg := string(p[3:])
		if strings.HasPrefix(msg, "#") && len(msg) >= 6 {
			msg = msg[6:]
		}
		r := Result{Service: "mysql", Confidence: 8, Evidence: "ERR packet " + quote(msg)}
		switch {
		case strings.Contains(msg, "MariaDB"):
			r.Product = "MariaDB"
		case strings.Contains(msg, "MySQL"):
			r.Product = "MySQL"
		default:
			return Result{}, false
		}
		return r, true
	}
	return Result{}, false
}

// postgresDetector sends SSLRequest (PostgreSQL protocol, "Message
// Flow", SSL Session Encryption): 'S' leads to a TLS handshake, 'N' to
// none; then a StartupMessage for a user that need not exist, which any
// PostgreSQL answers with an authentication request or an ErrorResponse.
var postgresDetector = &detector{name: "postgresql", ports: []uint16{5432}, plainOnly: true, probe: func(s *session) (Result, bool) {
	reply := s.exchange([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}, func(b []byte) bool { return len(b) >= 1 })
	if len(reply) != 1 || reply[0] != 'S' && reply[0] != 'N' {
		return Result{}, false
	}
	r := Result{Service: "postgresql", Product: "PostgreSQL", Confidence: 8}
	if reply[0] == 'S' {
		upgrade(s, &r, "postgresql")
		if r.TLS == nil {
			return Result{}, false
		}
	}
	s.reset()
	startup := []byte{0, 0, 0, 0, 0, 3, 0, 0}
	startup = append(startup, "user\x00portkit\x00database\x00portkit\x00application_name\x00portkit\x00\x00"...)
	binary.BigEndian.PutUint32(startup, uint32(len(startup)))
	b := s.exchange(startup, pgMessageDone)
	if len(b) < 5 {
		return Result{}, false
	}
	switch b[0] {
	case 'R':
		r.Confidence, r.Evidence = 10, "SSLRequest answered "+strconv.Quote(string(reply))+", then an authentication request"
	case 'E':
		fields := pgFields(b[5:])
		if fields['S'] == "" || fields['C'] == "" {
			return Result{}, false
		}
		r.Confidence = 10
		r.Evidence = "SSLRequest answered " + strconv.Quote(string(reply)) + ", then ErrorResponse " + fields['C'] + " " + quote(fields['M'])
	default:
		return Result{}, false
	}
	return r, true
}}

func pgMessageDone(b []byte) bool {
	return len(b) >= 5 && len(b) >= 1+int(binary.BigEndian.Uint32(b[1:5]))
}

// pgFields reads an ErrorResponse's fields: a type byte and a
// NUL-terminated string each, ended by a NUL.
func pgFields(b []byte) map[byte]string {
	f := map[byte]string{}
	for len(b) > 1 && b[0] != 0 {
		end := bytes.IndexByte(b[1:], 0)
		if end < 0 {
			break
		}
		f[b[0]] = string(b[1 : 1+end])
		b = b[2+end:]
	}
	return f
}

// mongoDetector sends "hello" then "buildInfo" in OP_MSG (MongoDB Wire
// Protocol, opcode 2013), both answered without authentication.
var mongoDetector = &detector{name: "mongodb", ports: []uint16{27017, 27018}, probe: func(s *session) (Result, bool) {
	doc := mongoCommand(s, "hello", 1)
	if doc == nil {
		return Result{}, false
	}
	if _, ok := doc["maxWireVersion"]; !ok {
		return Result{}, false
	}
	r := Result{Service: "mongodb", Product: "MongoDB", Confidence: 8, Evidence: "OP_MSG hello answered with maxWireVersion"}
	s.reset()
	if bi := mongoCommand(s, "buildInfo", 2); bi != nil {
		if v, ok := bi["version"].(string); ok {
			r.Version, r.Confidence = v, 10
			r.Evidence = "OP_MSG buildInfo version " + quote(v)
		}
	}
	return r, true
}}

func mongoCommand(s *session, cmd string, id uint32) map[string]any {
	var doc []byte
	doc = append(doc, 0, 0, 0, 0)
	doc = append(doc, 0x10)
	doc = append(doc, cmd+"\x00"...)
	doc = binary.LittleEndian.AppendUint32(doc, 1)
	doc = append(doc, 0x02)
	doc = append(doc, "$db\x00"...)
	doc = binary.LittleEndian.AppendUint32(doc, 6)
	doc = append(doc, "admin\x00"...)
	doc = append(doc, 0)
	binary.LittleEndian.PutUint32(doc, uint32(len(doc)))
	msg := make([]byte, 16, 16+5+len(doc))
	binary.LittleEndian.PutUint32(msg[4:], id)
	binary.LittleEndian.PutUint32(msg[12:], 2013)
	msg = append(msg, 0, 0, 0, 0, 0) // flagBits, section kind 0
	msg = append(msg, doc...)
	binary.LittleEndian.PutUint32(msg, uint32(len(msg)))
	b := s.exchange(msg, func(b []byte) bool {
		return len(b) >= 4 && len(b) >= int(binary.LittleEndian.Uint32(b))
	})
	if len(b) < 21 || binary.LittleEndian.Uint32(b[12:]) != 2013 || binary.LittleEndian.Uint32(b[8:]) != id || b[20] != 0 {
		return nil
	}
	return parseBSON(b[21:])
}

// parseBSON reads the top-level strings, numbers and booleans of a BSON
// document (bsonspec.org); nested documents are skipped. nil when b is
// not a document.
func parseBSON(b []byte) map[string]any {
	if len(b) < 5 {
		return nil
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n < 5 || n > len(b) {
		return nil
	}
	b = b[4 : n-1]
	out := map[string]any{}
	for len(b) > 0 {
		typ := b[0]
		end := bytes.IndexByte(b[1:], 0)
		if end < 0 {
			return out
		}
		name := string(b[1 : 1+end])
		b = b[2+end:]
		size := 0
		switch typ {
		case 0x01, 0x09, 0x11, 0x12:
			size = 8
		case 0x02, 0x0d, 0x0e:
			if len(b) < 4 {
				return out
			}
			l := int(binary.LittleEndian.Uint32(b))
			if l < 1 || 4+l > len(b) {
				return out
			}
			if typ == 0x02 {
				out[name] = string(b[4 : 4+l-1])
			}
			size = 4 + l
		case 0x03, 0x04:
			if len(b) < 4 {
				return out
			}
			size = int(binary.LittleEndian.Uint32(b))
		case 0x05:
			if len(b) < 4 {
				return out
			}
			size = 5 + int(binary.LittleEndian.Uint32(b))
		case 0x07:
			size = 12
		case 0x08:
			size = 1
			if len(b) >= 1 {
				out[name] = b[0] == 1
			}
		case 0x0a, 0xff, 0x7f:
		case 0x10:
			size = 4
			if len(b) >= 4 {
				out[name] = int64(int32(binary.LittleEndian.Uint32(b)))
			}
		case 0x13:
			size = 16
		default:
			return out
		}
		if typ == 0x12 && len(b) >= 8 {
			out[name] = int64(binary.LittleEndian.Uint64(b))
		}
		if size < 0 || size > len(b) {
			return out
		}
		b = b[size:]
	}
	return out
}

// cassandraDetector sends OPTIONS in the CQL native protocol v4 (§2
// frame header, §4.1.3); the server answers SUPPORTED with its CQL
// versions, or ERROR naming the protocol versions it speaks.
var cassandraDetector = &detector{name: "cassandra", ports: []uint16{9042}, probe: func(s *session) (Result, bool) {
	b := s.exchange([]byte{0x04, 0, 0, 1, 0x05, 0, 0, 0, 0}, func(b []byte) bool {
		return len(b) >= 9 && len(b) >= 9+int(binary.BigEndian.Uint32(b[5:9]))
	})
	if len(b) < 9 || b[0]&0x80 == 0 || b[0]&0x7f < 1 || b[0]&0x7f > 6 {
		return Result{}, false
	}
	r := Result{Service: "cassandra", Product: "Apache Cassandra", Confidence: 8}
	switch b[4] {
	case 0x06: // SUPPORTED
		body := string(b[9:])
		if !strings.Contains(body, "CQL_VERSION") {
			return Result{}, false
		}
		if strings.Contains(body, "SCYLLA") {
			r.Product = "ScyllaDB"
		}
		r.Confidence, r.Evidence = 10, "OPTIONS answered SUPPORTED with CQL_VERSION"
	case 0x00: // ERROR
		if !strings.Contains(string(b[9:]), "protocol version") {
			return Result{}, false
		}
		r.Evidence = "OPTIONS answered ERROR on the protocol version"
	default:
		return Result{}, false
	}
	return r, true
}}

// mssqlDetector sends a TDS PRELOGIN ([MS-TDS] §2.2.6.5); the reply's
// VERSION option is the server's version.
var mssqlDetector = &detector{name: "mssql", ports: []uint16{1433}, plainOnly: true, probe: func(s *session) (Result, bool) {
	options := []byte{
		0x00, 0, 26, 0, 6, // VERSION at 26, 6 bytes
		0x01, 0, 32, 0, 1, // ENCRYPTION
		0x02, 0, 33, 0, 1, // INSTOPT
		0x03, 0, 34, 0, 4, // THREADID
		0x04, 0, 38, 0, 1, // MARS
		0xff,
		0, 0, 0, 0, 0, 0, // version 0
		0x02,       // ENCRYPT_NOT_SUP
		0,          // instance: default
		0, 0, 0, 0, // thread id
		0, // MARS off
	}
	pkt := append([]byte{0x12, 0x01, 0, byte(8 + len(options)), 0, 0, 0, 0}, options...)
	b := s.exchange(pkt, func(b []byte) bool { return len(b) >= 4 && len(b) >= int(binary.BigEndian.Uint16(b[2:4])) })
	if len(b) < 8+6 || b[0] != 0x04 {
		return Result{}, false
	}
	p := b[8:]
	for len(p) >= 5 && p[0] != 0xff {
		if p[0] == 0x00 {
			off, n := int(binary.BigEndian.Uint16(p[1:])), int(binary.BigEndian.Uint16(p[3:]))
			if n < 4 || off+n > len(b)-8 {
				return Result{}, false
			}
			v := b[8+off:]
			ver := strconv.Itoa(int(v[0])) + "." + strconv.Itoa(int(v[1])) + "." + strconv.Itoa(int(binary.BigEndian.Uint16(v[2:])))
			return Result{Service: "mssql", Product: "Microsoft SQL Server", Version: ver, Confidence: 10,
				Evidence: "TDS PRELOGIN reply, VERSION " + ver}, true
		}
		p = p[5:]
	}
	return Result{}, false
}}
