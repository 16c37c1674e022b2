//go:build linux

package service_test

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/portkit/portkit/internal/netnstest"
	"github.com/portkit/portkit/internal/servicefixture"
	"github.com/portkit/portkit/internal/testtool"
	"github.com/portkit/portkit/service"
)

// odd is the port each server is moved to: one nothing would suggest.
const odd = 47123

// TestRealServers starts each real server of internal/servicefixture in the
// target namespace and identifies it from the scanner namespace, on its
// default port and on odd. The truth, product and version, comes from dpkg.
func TestRealServers(t *testing.T) {
	pair := netnstest.New(t, "svc")
	certs, err := servicefixture.MakeCert(t.TempDir(), netnstest.Target4)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range servicefixture.Servers() {
		t.Run(s.Name, func(t *testing.T) {
			testtool.NeedFile(t, s.Binary, s.Pkg)
			want := ""
			if s.Version {
				var err error
				if want, err = servicefixture.Upstream(s.Pkg); err != nil {
					t.Fatal(err)
				}
			}
			for _, port := range []uint16{s.Port, odd} {
				t.Run(strconv.Itoa(int(port)), func(t *testing.T) {
					dir := t.TempDir()
					cmd, err := s.Start(dir, netnstest.Target4, port, certs)
					if err != nil {
						t.Fatal(err)
					}
					runIn(t, pair.Target, cmd, dir)
					addr := netip.AddrPortFrom(netnstest.Target4, port)
					var r service.Result
					netnstest.Run(t, pair.Scanner, func() error {
						if !s.UDP {
							waitOpen(t, addr)
						}
						id := service.Identifier{Options: service.Options{Timeout: 10 * time.Second, SNMP: true, ServerName: s.Name,
							Dial: nsDialer(t, pair.Scanner)}}
						if s.UDP {
							// A UDP server has no handshake to wait for: it is
							// asked until it answers.
							for range 20 {
								if r = id.UDP(context.Background(), addr); r.Known() {
									break
								}
								time.Sleep(100 * time.Millisecond)
							}
						} else {
							r = id.TCP(context.Background(), addr)
						}
						return nil
					})
					t.Logf("%s: %+v", addr, r)
					if r.Service != s.Service || r.Product != s.Product || r.Version != want {
						t.Errorf("identified %q %q %q, want %q %q %q (evidence: %s; banner %q)",
							r.Service, r.Product, r.Version, s.Service, s.Product, want, r.Evidence, r.Banner)
					}
					if s.TLS {
						if r.TLS == nil || r.TLS.Cert == nil || r.TLS.Cert.Subject != "CN="+servicefixture.CertCN {
							t.Errorf("TLS %+v, want the test's certificate CN=%s", r.TLS, servicefixture.CertCN)
						} else if !r.TLS.Cert.SelfSigned || r.TLS.Cert.KeyType != "ECDSA" || r.TLS.Cert.KeyBits != 256 {
							t.Errorf("certificate %+v: want self-signed ECDSA P-256", r.TLS.Cert)
						}
					}
				})
			}
		})
	}
}

// nsDialer dials from namespace ns whichever goroutine asks: the
// identification runs probes on goroutines of its own, whose threads are
// in the test binary's namespace, from which the test's addresses must
// never be dialled.
func nsDialer(t *testing.T, ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var (
			c   net.Conn
			err error
		)
		netnstest.Run(t, ns, func() error {
			var d net.Dialer
			c, err = d.DialContext(ctx, network, addr)
			return nil
		})
		return c, err
	}
}

// runIn starts cmd in namespace ns and stops it when the test ends.
func runIn(t *testing.T, ns string, cmd *exec.Cmd, dir string) {
	t.Helper()
	log, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	full := servicefixture.InNetns(ns, cmd, dir, log)
	if err := full.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	t.Cleanup(func() {
		syscall.Kill(-full.Process.Pid, syscall.SIGKILL)
		full.Wait()
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("server log:\n%s", b)
		}
	})
}

// waitOpen waits until addr accepts a connection, for at most ten seconds.
func waitOpen(t *testing.T, addr netip.AddrPort) {
	for range 200 {
		c, err := net.DialTimeout("tcp", addr.String(), time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%v never opened", addr)
}
