package service_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portkit/portkit/service"
)

// Servers written from the protocols' specifications, for protocols
// without a practical Debian server here. Each answers only a well-formed
// request of its own protocol, as real servers do, and closes on anything
// else: the pipeline must find the right probe, not be told.

// fixture serves on 127.0.0.1:0 until the test ends, one goroutine per
// connection, all waited for.
func fixture(t *testing.T, handle func(c net.Conn)) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return netip.MustParseAddrPort(ln.Addr().String())
}

// reply answers each request answer recognises; it closes on the first
// it does not (nil).
func reply(answer func(req []byte) []byte) func(net.Conn) {
	return func(c net.Conn) {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			out := answer(buf[:n])
			if out == nil {
				return
			}
			c.Write(out)
		}
	}
}

// greet sends banner first, then answers like reply.
func greet(banner string, answer func(req []byte) []byte) func(net.Conn) {
	return func(c net.Conn) {
		c.Write([]byte(banner))
		if answer != nil {
			reply(answer)(c)
		} else {
			io.Copy(io.Discard, c)
		}
	}
}

type want struct{ service, product, version, info string }

func check(t *testing.T, r service.Result, w want) {
	t.Helper()
	if r.Service != w.service || r.Product != w.product || r.Version != w.version || w.info != "" && !strings.Contains(r.Info, w.info) {
		t.Errorf("got %q %q %q (%s), want %q %q %q (%s); evidence %s; banner %q",
			r.Service, r.Product, r.Version, r.Info, w.service, w.product, w.version, w.info, r.Evidence, r.Banner)
	}
	if r.Known() && (r.Evidence == "" || r.Confidence == 0) {
		t.Errorf("%s without evidence or confidence: %+v", r.Service, r)
	}
}

func identify(t *testing.T, addr netip.AddrPort) service.Result {
	t.Helper()
	id := service.Identifier{Options: service.Options{Timeout: 20 * time.Second}}
	return id.TCP(context.Background(), addr)
}

func be32(n int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(n)) }

func TestFixtures(t *testing.T) {
	cases := []struct {
		name   string
		handle func(net.Conn)
		want   want
	}{
		{"vnc", greet("RFB 003.008\n", nil), want{"vnc", "VNC", "", "protocol 3.8"}},
		{"nats", greet(`INFO {"server_id":"NAB","server_name":"n1","version":"2.10.7","proto":1,"max_payload":1048576}`+"\r\n", nil),
			want{"nats", "NATS Server", "2.10.7", ""}},
		{"irc", greet(":irc.example.net NOTICE * :*** Looking up your hostname...\r\n", nil), want{"irc", "", "", ""}},
		{"telnet", greet("\xff\xfd\x18\xff\xfd\x20\xff\xfd\x23", nil), want{"telnet", "", "", ""}},
		{"mysql", greet(mysqlHandshake("8.0.36-0ubuntu0.22.04.1"), nil), want{"mysql", "MySQL", "8.0.36", "0ubuntu0.22.04.1"}},
		{"mariadb", greet(mysqlHandshake("5.5.5-10.11.6-MariaDB-0+deb12u1"), nil), want{"mysql", "MariaDB", "10.11.6", "0+deb12u1"}},
		{"redis-noauth", reply(func(req []byte) []byte {
			if bytes.HasPrefix(req, []byte("INFO")) {
				return []byte("-NOAUTH Authentication required.\r\n")
			}
			return nil
		}), want{"redis", "Redis", "", ""}},
		{"zookeeper", reply(func(req []byte) []byte {
			if string(req) == "srvr" {
				return []byte("Zookeeper version: 3.8.3-6ad6d364c7c0bcf0de452d54ebefa3058098ab56, built on 2023-10-05 10:34 UTC\nLatency min/avg/max: 0/0.0/0\n")
			}
			return nil
		}), want{"zookeeper", "Apache ZooKeeper", "3.8.3", ""}},
		{"mongodb", reply(mongoServer), want{"mongodb", "MongoDB", "7.0.5", ""}},
		{"cassandra", reply(func(req []byte) []byte {
			if len(req) == 9 && req[0] == 4 && req[4] == 5 {
				body := []byte{0, 1, 0, 11}
				body = append(body, "CQL_VERSION"...)
				body = append(body, 0, 1, 0, 5)
				body = append(body, "3.4.7"...)
				return append(append([]byte{0x84, 0, req[2], req[3], 6}, be32(len(body))...), body...)
			}
			return nil
		}), want{"cassandra", "Apache Cassandra", "", ""}},
		{"mssql", reply(func(req []byte) []byte {
			if len(req) > 8 && req[0] == 0x12 {
				opts := []byte{0, 0, 11, 0, 6, 1, 0, 17, 0, 1, 0xff, 16, 0, 0x10, 0x7b, 0, 0, 0}
				return append([]byte{4, 1, 0, byte(8 + len(opts)), 0, 0, 1, 0}, opts...)
			}
			return nil
		}), want{"mssql", "Microsoft SQL Server", "16.0.4219", ""}},
		{"rdp", reply(func(req []byte) []byte {
			if len(req) >= 11 && req[0] == 3 && req[5] == 0xe0 {
				return []byte{3, 0, 0, 0x13, 0x0e, 0xd0, 0, 0, 0x12, 0x34, 0, 0x02, 0, 0x08, 0, 0, 0, 0, 0}
			}
			return nil
		}), want{"rdp", "", "", "standard RDP"}},
		{"smb2", reply(smbServer), want{"smb", "", "", "dialect 3.0.2"}},
		{"kafka", reply(func(req []byte) []byte {
			if len(req) >= 12 && binary.BigEndian.Uint16(req[4:]) == 18 {
				body := append(append([]byte{}, req[8:12]...), 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 9)
				return append(be32(len(body)), body...)
			}
			return nil
		}), want{"kafka", "Apache Kafka", "", ""}},
		{"amqp", reply(amqpServer), want{"amqp", "RabbitMQ", "3.12.1", ""}},
		{"rtsp", reply(func(req []byte) []byte {
			if bytes.HasPrefix(req, []byte("OPTIONS * RTSP/1.0")) {
				return []byte("RTSP/1.0 200 OK\r\nCSeq: 1\r\nServer: GStreamer RTSP server\r\nPublic: OPTIONS, DESCRIBE\r\n\r\n")
			}
			return nil
		}), want{"rtsp", "GStreamer RTSP server", "", ""}},
		{"sip", reply(func(req []byte) []byte {
			if bytes.HasPrefix(req, []byte("OPTIONS sip:")) {
				return []byte("SIP/2.0 200 OK\r\nCSeq: 1 OPTIONS\r\nUser-Agent: Asterisk PBX 20.5.0\r\nContent-Length: 0\r\n\r\n")
			}
			return nil
		}), want{"sip", "Asterisk PBX", "20.5.0", ""}},
		{"stun", reply(func(req []byte) []byte {
			if len(req) == 20 && req[1] == 1 && bytes.Equal(req[4:8], []byte{0x21, 0x12, 0xa4, 0x42}) {
				attr := []byte{0x80, 0x22, 0, 20}
				attr = append(attr, "Coturn-4.6.1 'Gorst'"...)
				out := []byte{1, 1, 0, byte(len(attr))}
				return append(append(out, req[4:20]...), attr...)
			}
			return nil
		}), want{"stun", "Coturn", "4.6.1", ""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			check(t, identify(t, fixture(t, c.handle)), c.want)
		})
	}
}

func mysqlHandshake(version string) string {
	p := []byte{10}
	p = append(p, version...)
	p = append(p, 0, 1, 0, 0, 0)
	p = append(p, "abcdefgh"...)
	p = append(p, 0, 0xff, 0xf7, 8, 2, 0)
	return string(append([]byte{byte(len(p)), byte(len(p) >> 8), 0, 0}, p...))
}

// mongoServer answers OP_MSG hello and buildInfo.
func mongoServer(req []byte) []byte {
	if len(req) < 21 || binary.LittleEndian.Uint32(req[12:]) != 2013 {
		return nil
	}
	doc := []byte{0, 0, 0, 0}
	if bytes.Contains(req, []byte("buildInfo")) {
		doc = append(doc, 2)
		doc = append(doc, "version\x00"...)
		doc = binary.LittleEndian.AppendUint32(doc, 6)
		doc = append(doc, "7.0.5\x00"...)
	} else {
		doc = append(doc, 0x10)
		doc = append(doc, "maxWireVersion\x00"...)
		doc = binary.LittleEndian.AppendUint32(doc, 21)
	}
	doc = append(doc, 1)
	doc = append(doc, "ok\x00"...)
	doc = binary.LittleEndian.AppendUint64(doc, 0x3ff0000000000000)
	doc = append(doc, 0)
	binary.LittleEndian.PutUint32(doc, uint32(len(doc)))
	msg := make([]byte, 16)
	binary.LittleEndian.PutUint32(msg[8:], binary.LittleEndian.Uint32(req[4:]))
	binary.LittleEndian.PutUint32(msg[12:], 2013)
	msg = append(msg, 0, 0, 0, 0, 0)
	msg = append(msg, doc...)
	binary.LittleEndian.PutUint32(msg, uint32(len(msg)))
	return msg
}

// smbServer answers an SMB2 NEGOTIATE with dialect 3.0.2.
func smbServer(req []byte) []byte {
	if len(req) < 4+64 || !bytes.Equal(req[4:8], []byte("\xfeSMB")) {
		return nil
	}
	hdr := make([]byte, 64)
	copy(hdr, "\xfeSMB")
	hdr[4] = 64
	hdr[16] = 1 // response flag
	body := make([]byte, 65)
	body[0] = 65
	binary.LittleEndian.PutUint16(body[4:], 0x0302)
	m := append(hdr, body...)
	return append([]byte{0, 0, byte(len(m) >> 8), byte(len(m))}, m...)
}

// amqpServer answers the 0-9-1 protocol header with Connection.Start.
func amqpServer(req []byte) []byte {
	if string(req) != "AMQP\x00\x00\x09\x01" {
		return nil
	}
	var table []byte
	for _, kv := range [][2]string{{"product", "RabbitMQ"}, {"version", "3.12.1"}} {
		table = append(table, byte(len(kv[0])))
		table = append(table, kv[0]...)
		table = append(table, 'S')
		table = append(table, be32(len(kv[1]))...)
		table = append(table, kv[1]...)
	}
	payload := []byte{0, 10, 0, 10, 0, 9}
	payload = append(payload, be32(len(table))...)
	payload = append(payload, table...)
	payload = append(payload, be32(5)...)
	payload = append(payload, "PLAIN"...)
	payload = append(payload, be32(5)...)
	payload = append(payload, "en_US"...)
	frame := append([]byte{1, 0, 0}, be32(len(payload))...)
	frame = append(frame, payload...)
	return append(frame, 0xce)
}

// TestHTTPApps: applications recognised from their own HTTP responses.
func TestHTTPApps(t *testing.T) {
	cases := []struct {
		name    string
		handler http.HandlerFunc
		want    want
	}{
		{"elasticsearch", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"name":"n","cluster_name":"c","version":{"number":"8.11.3","build_flavor":"default"},"tagline":"You Know, for Search"}`)
		}, want{"elasticsearch", "Elasticsearch", "8.11.3", ""}},
		{"opensearch", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"name":"n","version":{"distribution":"opensearch","number":"2.11.1"},"tagline":"You Know, for Search"}`)
		}, want{"elasticsearch", "OpenSearch", "2.11.1", ""}},
		{"docker", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Server", "Docker/24.0.7 (linux)")
			w.Header().Set("Api-Version", "1.43")
			w.WriteHeader(404)
			fmt.Fprint(w, `{"message":"page not found"}`)
		}, want{"docker", "Docker Engine API", "24.0.7", "API 1.43"}},
		{"kubernetes", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/version" {
				fmt.Fprint(w, `{"major":"1","minor":"29","gitVersion":"v1.29.0"}`)
				return
			}
			w.WriteHeader(403)
			fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403}`)
		}, want{"kubernetes", "Kubernetes API server", "1.29.0", ""}},
		{"prometheus-exporter", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/metrics" {
				fmt.Fprint(w, "# HELP go_info x\n# TYPE go_info gauge\ngo_info{version=\"go1.21\"} 1\n# TYPE node_exporter_build_info gauge\nnode_exporter_build_info{branch=\"\",goversion=\"go1.21\",revision=\"\",version=\"1.7.0\"} 1\n")
				return
			}
			fmt.Fprint(w, `<html><head><title>Node Exporter</title></head><body><a href="/metrics">Metrics</a></body></html>`)
		}, want{"prometheus", "node_exporter", "1.7.0", ""}},
		{"etcd", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/version" {
				fmt.Fprint(w, `{"etcdserver":"3.5.11","etcdcluster":"3.5.0"}`)
				return
			}
			http.NotFound(w, r)
		}, want{"etcd", "etcd", "3.5.11", ""}},
		{"consul", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/agent/self" {
				fmt.Fprint(w, `{"Config":{"Datacenter":"dc1","Version":"1.17.1"}}`)
				return
			}
			http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
		}, want{"consul", "Consul", "1.17.1", ""}},
		{"websocket", func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") == "websocket" && r.Header.Get("Sec-Websocket-Key") == "dGhlIHNhbXBsZSBub25jZQ==" {
				w.Header().Set("Upgrade", "websocket")
				w.Header().Set("Connection", "Upgrade")
				w.Header().Set("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
				w.WriteHeader(http.StatusSwitchingProtocols)
				return
			}
			w.WriteHeader(http.StatusUpgradeRequired)
		}, want{"websocket", "", "", ""}},
		{"slow-page", func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(800 * time.Millisecond) // longer than other protocols' replies are waited for
			w.Header().Set("Server", "lighttpd/1.4.69")
			fmt.Fprint(w, "<title>slow</title>")
		}, want{"http", "lighttpd", "1.4.69", `title "slow"`}},
		{"title-redirect", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Server", "Apache/2.4.57 (Debian)")
			w.Header().Set("Location", "/login")
			w.WriteHeader(302)
			fmt.Fprint(w, "<html><title>Moved &amp; gone</title></html>")
		}, want{"http", "Apache httpd", "2.4.57", `title "Moved & gone", redirect to /login`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(c.handler)
			defer srv.Close()
			check(t, identify(t, netip.MustParseAddrPort(srv.Listener.Addr().String())), c.want)
		})
	}
}

// TestXMPPStartTLS: XMPP's STARTTLS is followed and the certificate read.
func TestXMPPStartTLS(t *testing.T) {
	cert := selfSigned(t)
	addr := fixture(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		n, _ := c.Read(buf)
		if !bytes.Contains(buf[:n], []byte("jabber:client")) {
			return
		}
		c.Write([]byte("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='1' from='x' version='1.0'>" +
			"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"))
		n, _ = c.Read(buf)
		if !bytes.Contains(buf[:n], []byte("<starttls")) {
			return
		}
		c.Write([]byte("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"))
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		tc.Handshake()
		io.Copy(io.Discard, tc)
	})
	r := identify(t, addr)
	check(t, r, want{"xmpp", "", "", ""})
	if r.TLS == nil || r.TLS.StartTLS != "xmpp" || r.TLS.Cert == nil || r.TLS.Cert.Subject != "CN=fixture" {
		t.Errorf("TLS %+v: want the fixture's certificate through STARTTLS", r.TLS)
	}
}

// TestUnknownBanner: bytes nothing knows are reported, escaped.
func TestUnknownBanner(t *testing.T) {
	r := identify(t, fixture(t, greet("\x00\x01HELLO?\r\n", nil)))
	if r.Service != service.Unknown || r.Banner != `\x00\x01HELLO?\r\n` {
		t.Errorf("got %+v, want unknown with the banner escaped", r)
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	certPEM, keyPEM := pemPair(t, "fixture")
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func mustAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	a, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
