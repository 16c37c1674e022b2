//go:build linux

package service_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portkit/portkit/internal/netnstest"
	"github.com/portkit/portkit/internal/testtool"
	"github.com/portkit/portkit/service"
)

// A real server from a Debian package, started by the test in the target
// namespace with the test's own configuration, identified from the
// scanner namespace: on its default port and on a port nothing would
// suggest. The truth, product and version, comes from dpkg.
type realServer struct {
	name    string
	binary  string // the program the test starts
	pkg     string // the Debian package that installs it, whose version is the truth
	port    uint16 // its default port
	service string
	product string
	// version says the protocol reveals the version; the expected one is
	// the package's upstream version.
	version bool
	// tls wants a certificate read: the test's own, whose CN is the
	// server's name.
	tls bool
	udp bool
	// start returns the command that runs the server in the foreground
	// on port, its files in dir.
	start func(t *testing.T, dir string, port uint16, certs certFiles) *exec.Cmd
}

// odd is the port each server is moved to.
const odd = 47123

func TestRealServers(t *testing.T) {
	pair := netnstest.New(t, "svc")
	certs := makeCert(t, t.TempDir())
	for _, s := range append(realServers(), moreServers()...) {
		t.Run(s.name, func(t *testing.T) {
			testtool.NeedFile(t, s.binary, s.pkg)
			want := ""
			if s.version {
				want = upstream(t, s.pkg)
			}
			for _, port := range []uint16{s.port, odd} {
				t.Run(strconv.Itoa(int(port)), func(t *testing.T) {
					dir := t.TempDir()
					cmd := s.start(t, dir, port, certs)
					runIn(t, pair.Target, cmd, dir)
					addr := netip.AddrPortFrom(netnstest.Target4, port)
					var r service.Result
					netnstest.Run(t, pair.Scanner, func() error {
						if !s.udp {
							waitOpen(t, addr)
						}
						id := service.Identifier{Options: service.Options{Timeout: 10 * time.Second, SNMP: true, ServerName: s.name,
							Dial: nsDialer(t, pair.Scanner)}}
						if s.udp {
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
					if r.Service != s.service || r.Product != s.product || r.Version != want {
						t.Errorf("identified %q %q %q, want %q %q %q (evidence: %s; banner %q)",
							r.Service, r.Product, r.Version, s.service, s.product, want, r.Evidence, r.Banner)
					}
					if s.tls {
						if r.TLS == nil || r.TLS.Cert == nil || r.TLS.Cert.Subject != "CN="+certCN {
							t.Errorf("TLS %+v, want the test's certificate CN=%s", r.TLS, certCN)
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

// upstream is the upstream part of pkg's installed version: without the
// epoch and the Debian revision.
func upstream(t *testing.T, pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", pkg).Output()
	if err != nil {
		t.Fatalf("dpkg-query %s: %v", pkg, err)
	}
	v := string(out)
	if _, after, ok := strings.Cut(v, ":"); ok {
		v = after
	}
	if i := strings.LastIndex(v, "-"); i > 0 {
		v = v[:i]
	}
	return v
}

// runIn starts cmd in namespace ns and stops it when the test ends.
func runIn(t *testing.T, ns string, cmd *exec.Cmd, dir string) {
	t.Helper()
	full := exec.Command("ip", append([]string{"netns", "exec", ns, cmd.Path}, cmd.Args[1:]...)...)
	full.Dir = dir
	log, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	full.Stdout, full.Stderr = log, log
	// A group of its own: the server may run under a wrapper (runuser)
	// that forks it, and the whole group is killed at the end.
	full.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
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

const certCN = "portkit-test"

type certFiles struct{ cert, key, both string }

// makeCert writes a self-signed ECDSA certificate for CN=portkit-test.
func makeCert(t *testing.T, dir string) certFiles {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(4711),
		Subject:      pkix.Name{CommonName: certCN},
		DNSNames:     []string{certCN, "localhost"},
		IPAddresses:  []net.IP{netnstest.Target4.AsSlice()},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(90 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f := certFiles{cert: filepath.Join(dir, "cert.pem"), key: filepath.Join(dir, "key.pem"), both: filepath.Join(dir, "both.pem")}
	c := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	k := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	for name, b := range map[string][]byte{f.cert: c, f.key: k, f.both: append(append([]byte{}, c...), k...)} {
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(dir, 0o755)
	return f
}

func write(t *testing.T, name, text string) string {
	t.Helper()
	if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

func command(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }

func realServers() []realServer {
	target := netnstest.Target4.String()
	return []realServer{
		{name: "openssh", binary: "/usr/sbin/sshd", pkg: "openssh-server", port: 22, service: "ssh", product: "OpenSSH", version: true,
			start: func(t *testing.T, dir string, port uint16, _ certFiles) *exec.Cmd {
				key := filepath.Join(dir, "host_ed25519")
				if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
					t.Fatalf("ssh-keygen: %v %s", err, out)
				}
				os.MkdirAll("/run/sshd", 0o755) // sshd's privilege separation directory
				cfg := write(t, filepath.Join(dir, "sshd_config"), "PidFile "+dir+"/sshd.pid\nUsePAM no\nListenAddress "+target+"\n")
				return command("/usr/sbin/sshd", "-D", "-e", "-f", cfg, "-h", key, "-p", strconv.Itoa(int(port)))
			}},
		{name: "nginx-http", binary: "/usr/sbin/nginx", pkg: "nginx-light", port: 80, service: "http", product: "nginx", version: true,
			start: func(t *testing.T, dir string, port uint16, c certFiles) *exec.Cmd {
				return nginx(t, dir, fmt.Sprintf("listen %s:%d;", target, port))
			}},
		{name: "nginx-https", binary: "/usr/sbin/nginx", pkg: "nginx-light", port: 443, service: "http", product: "nginx", version: true, tls: true,
			start: func(t *testing.T, dir string, port uint16, c certFiles) *exec.Cmd {
				return nginx(t, dir, fmt.Sprintf("listen %s:%d ssl; ssl_certificate %s; ssl_certificate_key %s;", target, port, c.cert, c.key))
			}},
		{name: "redis", binary: "/usr/bin/redis-server", pkg: "redis-server", port: 6379, service: "redis", product: "Redis", version: true,
			start: func(t *testing.T, dir string, port uint16, _ certFiles) *exec.Cmd {
				return command("/usr/bin/redis-server", "--port", strconv.Itoa(int(port)), "--bind", target, "--save", "",
					"--appendonly", "no", "--dir", dir, "--protected-mode", "no")
			}},
		{name: "memcached", binary: "/usr/bin/memcached", pkg: "memcached", port: 11211, service: "memcached", product: "memcached", version: true,
			start: func(t *testing.T, dir string, port uint16, _ certFiles) *exec.Cmd {
				return command("/usr/bin/memcached", "-u", "root", "-l", target, "-p", strconv.Itoa(int(port)), "-U", "0")
			}},
		{name: "memcached-udp", binary: "/usr/bin/memcached", pkg: "memcached", port: 11211, service: "memcached", product: "memcached", version: true, udp: true,
			start: func(t *testing.T, dir string, port uint16, _ certFiles) *exec.Cmd {
				return command("/usr/bin/memcached", "-u", "root", "-l", target, "-p", "0", "-U", strconv.Itoa(int(port)))
			}},
		{name: "mosquitto", binary: "/usr/sbin/mosquitto", pkg: "mosquitto", port: 1883, service: "mqtt", product: "Mosquitto", version: true,
			start: func(t *testing.T, dir string, port uint16, _ certFiles) *exec.Cmd {
				cfg := write(t, filepath.Join(dir, "mosquitto.conf"), fmt.Sprintf("user root\nlistener %d %s\nallow_anonymous true\npersistence false\n", port, target))
				return command("/usr/sbin/mosquitto", "-c", cfg)
			}},
		{name: "vsftpd", binary: "/usr/sbin/vsftpd", pkg: "vsftpd", port: 21, service: "ftp", product: "vsftpd", version: true, tls: true,
			start: func(t *testing.T, dir string, port uint16, c certFiles) *exec.Cmd {
				empty := filepath.Join(dir, "empty")
				os.Mkdir(empty, 0o755)
				cfg := write(t, filepath.Join(dir, "vsftpd.conf"), fmt.Sprintf("listen=YES\nlisten_ipv6=NO\nlisten_port=%d\nlisten_address=%s\n"+
					"background=NO\nanonymous_enable=NO\nlocal_enable=YES\nsecure_chroot_dir=%s\nssl_enable=YES\nrsa_cert_file=%s\nrsa_private_key_file=%s\n",
					port, target, empty, c.cert, c.key))
				return command("/usr/sbin/vsftpd", cfg)
			}},
		{name: "dnsmasq-tcp", binary: "/usr/sbin/dnsmasq", pkg: "dnsmasq-base", port: 53, service: "dns", product: "dnsmasq", version: true,
			start: dnsmasq},
		{name: "dnsmasq-udp", binary: "/usr/sbin/dnsmasq", pkg: "dnsmasq-base", port: 53, service: "dns", product: "dnsmasq", version: true, udp: true,
			start: dnsmasq},
		{name: "rsync", binary: "/usr/bin/rsync", pkg: "rsync", port: 873, service: "rsync", product: "rsync",
			start: func(t *testing.T, dir string, port uint16, _ certFiles) *exec.Cmd {
				cfg := write(t, filepath.Join(dir, "rsyncd.conf"), "use chroot = no\n[data]\npath = "+dir+"\n")
				return command("/usr/bin/rsync", "--daemon", "--no-detach", "--config", cfg, "--address", target, "--port", strconv.Itoa(int(port)))
			}},
	}
}

// more are the servers that take longer to set up.
func moreServers() []realServer {
	target := netnstest.Target4.String()
	return []realServer{
		{name: "postgresql", binary: "/usr/lib/postgresql/15/bin/postgres", pkg: "postgresql-15", port: 5432, service: "postgresql", product: "PostgreSQL", tls: true,
			start: func(t *testing.T, dir string, port uint16, c certFiles) *exec.Cmd {
				// The postgres user must reach the directory the test made.
				os.Chmod(filepath.Dir(dir), 0o755)
				os.Chmod(dir, 0o755)
				data := filepath.Join(dir, "data")
				if out, err := exec.Command("install", "-d", "-o", "postgres", "-m", "0700", data).CombinedOutput(); err != nil {
					t.Fatalf("install -d: %v %s", err, out)
				}
				asPostgres(t, "/usr/lib/postgresql/15/bin/initdb", "-D", data, "-U", "postgres", "--auth=trust")
				cert, key := filepath.Join(data, "server.crt"), filepath.Join(data, "server.key")
				copyFile(t, c.cert, cert)
				copyFile(t, c.key, key)
				asPostgres(t, "/bin/chmod", "0600", key)
				return command("/usr/sbin/runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/postgres", "-D", data, "-k", data,
					"-p", strconv.Itoa(int(port)), "-c", "listen_addresses="+target, "-c", "ssl=on",
					"-c", "ssl_cert_file="+cert, "-c", "ssl_key_file="+key)
			}},
		{name: "mariadb", binary: "/usr/sbin/mariadbd", pkg: "mariadb-server", port: 3306, service: "mysql", product: "MariaDB", version: true,
			start: func(t *testing.T, dir string, port uint16, _ certFiles) *exec.Cmd {
				data := filepath.Join(dir, "data")
				if out, err := exec.Command("/usr/bin/mariadb-install-db", "--no-defaults", "--datadir="+data, "--user=root",
					"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput(); err != nil {
					t.Fatalf("mariadb-install-db: %v\n%s", err, out)
				}
				return command("/usr/sbin/mariadbd", "--no-defaults", "--datadir="+data, "--socket="+dir+"/mysqld.sock",
					"--pid-file="+dir+"/mysqld.pid", "--port="+strconv.Itoa(int(port)), "--bind-address="+target, "--user=root", "--skip-log-error", "--skip-grant-tables", "--skip-name-resolve")
			}},
		{name: "slapd", binary: "/usr/sbin/slapd", pkg: "slapd", port: 389, service: "ldap", product: "OpenLDAP", tls: true,
			start: func(t *testing.T, dir string, port uint16, c certFiles) *exec.Cmd {
				cfg := write(t, filepath.Join(dir, "slapd.conf"), "include /etc/ldap/schema/core.schema\npidfile "+dir+"/slapd.pid\n"+
					"TLSCertificateFile "+c.cert+"\nTLSCertificateKeyFile "+c.key+"\n")
				return command("/usr/sbin/slapd", "-d", "0", "-f", cfg, "-h", fmt.Sprintf("ldap://%s:%d/", target, port))
			}},
		{name: "dovecot-imap", binary: "/usr/sbin/dovecot", pkg: "dovecot-imapd", port: 143, service: "imap", product: "Dovecot", tls: true,
			start: func(t *testing.T, dir string, port uint16, c certFiles) *exec.Cmd {
				return dovecot(t, dir, c, "imap", fmt.Sprintf("service imap-login {\n inet_listener imap {\n port = %d\n }\n inet_listener imaps {\n port = 0\n }\n}\n", port))
			}},
		{name: "dovecot-pop3", binary: "/usr/sbin/dovecot", pkg: "dovecot-pop3d", port: 110, service: "pop3", product: "Dovecot", tls: true,
			start: func(t *testing.T, dir string, port uint16, c certFiles) *exec.Cmd {
				return dovecot(t, dir, c, "pop3", fmt.Sprintf("service pop3-login {\n inet_listener pop3 {\n port = %d\n }\n inet_listener pop3s {\n port = 0\n }\n}\n", port))
			}},
		{name: "exim4", binary: "/usr/sbin/exim4", pkg: "exim4-daemon-light", port: 25, service: "smtp", product: "Exim", version: true,
			start: func(t *testing.T, dir string, port uint16, _ certFiles) *exec.Cmd {
				return command("/usr/sbin/exim4", "-bdf", "-oX", fmt.Sprintf("%s.%d", target, port), "-oP", dir+"/exim.pid")
			}},
		{name: "chrony", binary: "/usr/sbin/chronyd", pkg: "chrony", port: 123, service: "ntp", udp: true,
			start: func(t *testing.T, dir string, port uint16, _ certFiles) *exec.Cmd {
				cfg := write(t, filepath.Join(dir, "chrony.conf"), fmt.Sprintf("port %d\nallow all\nbindaddress %s\ncmdport 0\npidfile %s/chronyd.pid\nlocal stratum 10\n", port, target, dir))
				return command("/usr/sbin/chronyd", "-d", "-x", "-u", "root", "-f", cfg)
			}},
		{name: "snmpd", binary: "/usr/sbin/snmpd", pkg: "snmpd", port: 161, service: "snmp", udp: true,
			start: func(t *testing.T, dir string, port uint16, _ certFiles) *exec.Cmd {
				cfg := write(t, filepath.Join(dir, "snmpd.conf"), "rocommunity public\nsysDescr portkit test agent\n")
				return command("/usr/sbin/snmpd", "-f", "-Lo", "-C", "-c", cfg, "-p", dir+"/snmpd.pid", fmt.Sprintf("udp:%s:%d", target, port))
			}},
	}
}

func asPostgres(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("/usr/sbin/runuser", append([]string{"-u", "postgres", "--"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chown", "postgres:postgres", to).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
}

func dovecot(t *testing.T, dir string, c certFiles, proto, listener string) *exec.Cmd {
	passwd := write(t, filepath.Join(dir, "passwd"), "")
	cfg := write(t, filepath.Join(dir, "dovecot.conf"), "base_dir = "+dir+"/run\nstate_dir = "+dir+"/state\nlog_path = "+dir+"/dovecot.log\n"+
		"protocols = "+proto+"\nlisten = "+netnstest.Target4.String()+"\nssl = yes\nssl_cert = <"+c.cert+"\nssl_key = <"+c.key+"\n"+
		"passdb {\n driver = passwd-file\n args = "+passwd+"\n}\nuserdb {\n driver = passwd-file\n args = "+passwd+"\n}\n"+listener)
	os.Chmod(dir, 0o755)
	return command("/usr/sbin/dovecot", "-F", "-c", cfg)
}

func nginx(t *testing.T, dir, listen string) *exec.Cmd {
	cfg := write(t, filepath.Join(dir, "nginx.conf"), "daemon off; master_process off; user root; pid "+dir+"/nginx.pid; error_log "+dir+"/error.log;\n"+
		"events {}\nhttp { access_log off; server { "+listen+" location / { default_type text/html; return 200 '<html><head><title>portkit test</title></head></html>'; } } }\n")
	return command("/usr/sbin/nginx", "-p", dir, "-c", cfg, "-e", dir+"/error.log")
}

func dnsmasq(t *testing.T, dir string, port uint16, _ certFiles) *exec.Cmd {
	return command("/usr/sbin/dnsmasq", "-k", "-C", "/dev/null", "-u", "root", "-p", strconv.Itoa(int(port)),
		"--listen-address="+netnstest.Target4.String(), "--bind-interfaces", "--no-resolv", "--no-hosts", "--pid-file="+dir+"/dnsmasq.pid")
}
