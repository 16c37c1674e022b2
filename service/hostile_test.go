package service_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/portkit/portkit/service"
)

// pemPair makes a self-signed ECDSA certificate for CN=cn.
func pemPair(t *testing.T, cn string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     []string{cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(30 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// Hostile peers: each identification ends, with the outcome asserted;
// the test's own timeout bounds the time.
func TestHostilePeers(t *testing.T) {
	cases := []struct {
		name   string
		handle func(net.Conn)
		check  func(t *testing.T, r service.Result)
	}{
		{"tarpit", func(c net.Conn) { io.Copy(io.Discard, c) }, func(t *testing.T, r service.Result) {
			if r.Service != service.Unknown || r.Banner != "" {
				t.Errorf("a peer that never sends: got %+v, want unknown without a banner", r)
			}
		}},
		{"random-stream", func(c net.Conn) {
			buf := make([]byte, 4096)
			for {
				rand.Read(buf)
				buf[0] = 0x01 // nothing any detector accepts as a first byte of its reply
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}, func(t *testing.T, r service.Result) {
			if r.Service != service.Unknown || r.Banner == "" {
				t.Errorf("a peer streaming random bytes: got %+v, want unknown with its first bytes", r)
			}
		}},
		{"close-at-once", func(c net.Conn) {}, func(t *testing.T, r service.Result) {
			if r.Service != service.Unknown {
				t.Errorf("a peer that closes at once: got %+v, want unknown", r)
			}
		}},
		{"tls-garbage", func(c net.Conn) {
			buf := make([]byte, 512)
			n, _ := c.Read(buf)
			if n > 0 && buf[0] == 0x16 { // a TLS handshake record: answer it with nonsense
				c.Write([]byte("\x16\x03\x03\x00\x05garbage and more garbage"))
			}
		}, func(t *testing.T, r service.Result) {
			if r.Service != service.Unknown || r.TLS != nil {
				t.Errorf("a peer answering TLS with garbage: got %+v, want unknown without TLS", r)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			addr := fixture(t, c.handle)
			id := service.Identifier{Options: service.Options{Timeout: 3 * time.Second, MaxBytes: 8 << 10}}
			r := id.TCP(context.Background(), addr)
			t.Logf("%+v", r)
			c.check(t, r)
		})
	}
}

// TestClosedPort: nothing listens; the result says the connection failed.
func TestClosedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := service.Identify(context.Background(), mustAddrPort(t, addr))
	if r.Service != service.Unknown || r.Evidence == "" || r.Evidence == "no reply to any probe" {
		t.Errorf("closed port: got %+v, want unknown saying the connect failed", r)
	}
}

// TestCancelled: an interrupt ends the identification of a silent peer.
func TestCancelled(t *testing.T) {
	addr := fixture(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	id := service.Identifier{Options: service.Options{Timeout: time.Hour}}
	r := id.TCP(ctx, addr)
	if r.Service != service.Unknown {
		t.Errorf("got %+v", r)
	}
}
