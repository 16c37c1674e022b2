//go:build linux

// Package servicefixture starts real servers from Debian packages, each with
// its own configuration in a directory of its own, listening on one address
// and port: the fixture of the service detection tests
// (service/servers_linux_test.go) and of its benchmark (bench/service.sh).
// The truth a detector is held to, product and version, comes from dpkg.
package servicefixture

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Server is a real server from a Debian package.
type Server struct {
	Name    string
	Binary  string // the program started
	Pkg     string // the Debian package that installs it, whose version is the truth
	Port    uint16 // its default port
	Service string // the service a detector must name
	Product string // the product it must name; empty: the protocol does not reveal it
	// Version says the protocol reveals the version; the expected one is
	// the package's upstream version (Upstream).
	Version bool
	// TLS says the server speaks TLS (directly or after STARTTLS) with the
	// fixture's certificate, whose CN is CertCN.
	TLS bool
	UDP bool
	// StartedBy names the server whose process serves this one too (the
	// same program on the same port, TCP and UDP): only one of them can be
	// started on a port at a time.
	StartedBy string
	// Start returns the command that runs the server in the foreground on
	// addr:port, its files in dir (which must exist), after any set-up it
	// needs (a data directory, a host key).
	Start func(dir string, addr netip.Addr, port uint16, certs Certs) (*exec.Cmd, error)
}

// Servers are all the fixture's servers, the quick ones to set up first.
func Servers() []Server {
	return []Server{
		{Name: "openssh", Binary: "/usr/sbin/sshd", Pkg: "openssh-server", Port: 22, Service: "ssh", Product: "OpenSSH", Version: true, Start: sshd},
		{Name: "nginx-http", Binary: "/usr/sbin/nginx", Pkg: "nginx-light", Port: 80, Service: "http", Product: "nginx", Version: true,
			Start: func(dir string, addr netip.Addr, port uint16, _ Certs) (*exec.Cmd, error) {
				return nginx(dir, fmt.Sprintf("listen %s;", netip.AddrPortFrom(addr, port)))
			}},
		{Name: "nginx-https", Binary: "/usr/sbin/nginx", Pkg: "nginx-light", Port: 443, Service: "http", Product: "nginx", Version: true, TLS: true,
			Start: func(dir string, addr netip.Addr, port uint16, c Certs) (*exec.Cmd, error) {
				return nginx(dir, fmt.Sprintf("listen %s ssl; ssl_certificate %s; ssl_certificate_key %s;", netip.AddrPortFrom(addr, port), c.Cert, c.Key))
			}},
		{Name: "redis", Binary: "/usr/bin/redis-server", Pkg: "redis-server", Port: 6379, Service: "redis", Product: "Redis", Version: true,
			Start: func(dir string, addr netip.Addr, port uint16, _ Certs) (*exec.Cmd, error) {
				return exec.Command("/usr/bin/redis-server", "--port", itoa(port), "--bind", addr.String(), "--save", "",
					"--appendonly", "no", "--dir", dir, "--protected-mode", "no"), nil
			}},
		{Name: "memcached", Binary: "/usr/bin/memcached", Pkg: "memcached", Port: 11211, Service: "memcached", Product: "memcached", Version: true,
			Start: func(dir string, addr netip.Addr, port uint16, _ Certs) (*exec.Cmd, error) {
				return exec.Command("/usr/bin/memcached", "-u", "root", "-l", addr.String(), "-p", itoa(port), "-U", "0"), nil
			}},
		{Name: "memcached-udp", Binary: "/usr/bin/memcached", Pkg: "memcached", Port: 11211, Service: "memcached", Product: "memcached", Version: true, UDP: true,
			Start: func(dir string, addr netip.Addr, port uint16, _ Certs) (*exec.Cmd, error) {
				return exec.Command("/usr/bin/memcached", "-u", "root", "-l", addr.String(), "-p", "0", "-U", itoa(port)), nil
			}},
		{Name: "mosquitto", Binary: "/usr/sbin/mosquitto", Pkg: "mosquitto", Port: 1883, Service: "mqtt", Product: "Mosquitto", Version: true,
			Start: func(dir string, addr netip.Addr, port uint16, _ Certs) (*exec.Cmd, error) {
				cfg, err := write(dir, "mosquitto.conf", fmt.Sprintf("user root\nlistener %d %s\nallow_anonymous true\npersistence false\n", port, addr))
				return exec.Command("/usr/sbin/mosquitto", "-c", cfg), err
			}},
		{Name: "vsftpd", Binary: "/usr/sbin/vsftpd", Pkg: "vsftpd", Port: 21, Service: "ftp", Product: "vsftpd", Version: true, TLS: true, Start: vsftpd},
		{Name: "dnsmasq-tcp", Binary: "/usr/sbin/dnsmasq", Pkg: "dnsmasq-base", Port: 53, Service: "dns", Product: "dnsmasq", Version: true, Start: dnsmasq},
		{Name: "dnsmasq-udp", Binary: "/usr/sbin/dnsmasq", Pkg: "dnsmasq-base", Port: 53, Service: "dns", Product: "dnsmasq", Version: true, UDP: true,
			StartedBy: "dnsmasq-tcp", Start: dnsmasq},
		{Name: "rsync", Binary: "/usr/bin/rsync", Pkg: "rsync", Port: 873, Service: "rsync", Product: "rsync",
			Start: func(dir string, addr netip.Addr, port uint16, _ Certs) (*exec.Cmd, error) {
				cfg, err := write(dir, "rsyncd.conf", "use chroot = no\n[data]\npath = "+dir+"\n")
				return exec.Command("/usr/bin/rsync", "--daemon", "--no-detach", "--config", cfg, "--address", addr.String(), "--port", itoa(port)), err
			}},
		{Name: "postgresql", Binary: "/usr/lib/postgresql/15/bin/postgres", Pkg: "postgresql-15", Port: 5432, Service: "postgresql", Product: "PostgreSQL", TLS: true,
			Start: postgres},
		{Name: "mariadb", Binary: "/usr/sbin/mariadbd", Pkg: "mariadb-server", Port: 3306, Service: "mysql", Product: "MariaDB", Version: true, Start: mariadb},
		{Name: "slapd", Binary: "/usr/sbin/slapd", Pkg: "slapd", Port: 389, Service: "ldap", Product: "OpenLDAP", TLS: true,
			Start: func(dir string, addr netip.Addr, port uint16, c Certs) (*exec.Cmd, error) {
				cfg, err := write(dir, "slapd.conf", "include /etc/ldap/schema/core.schema\npidfile "+dir+"/slapd.pid\n"+
					"TLSCertificateFile "+c.Cert+"\nTLSCertificateKeyFile "+c.Key+"\n")
				return exec.Command("/usr/sbin/slapd", "-d", "0", "-f", cfg, "-h", fmt.Sprintf("ldap://%s/", netip.AddrPortFrom(addr, port))), err
			}},
		{Name: "dovecot-imap", Binary: "/usr/sbin/dovecot", Pkg: "dovecot-imapd", Port: 143, Service: "imap", Product: "Dovecot", TLS: true,
			Start: func(dir string, addr netip.Addr, port uint16, c Certs) (*exec.Cmd, error) {
				return dovecot(dir, addr, c, "imap", fmt.Sprintf("service imap-login {\n inet_listener imap {\n port = %d\n }\n inet_listener imaps {\n port = 0\n }\n}\n", port))
			}},
		{Name: "dovecot-pop3", Binary: "/usr/sbin/dovecot", Pkg: "dovecot-pop3d", Port: 110, Service: "pop3", Product: "Dovecot", TLS: true,
			Start: func(dir string, addr netip.Addr, port uint16, c Certs) (*exec.Cmd, error) {
				return dovecot(dir, addr, c, "pop3", fmt.Sprintf("service pop3-login {\n inet_listener pop3 {\n port = %d\n }\n inet_listener pop3s {\n port = 0\n }\n}\n", port))
			}},
		{Name: "exim4", Binary: "/usr/sbin/exim4", Pkg: "exim4-daemon-light", Port: 25, Service: "smtp", Product: "Exim", Version: true,
			Start: func(dir string, addr netip.Addr, port uint16, _ Certs) (*exec.Cmd, error) {
				return exec.Command("/usr/sbin/exim4", "-bdf", "-oX", fmt.Sprintf("%s.%d", addr, port), "-oP", dir+"/exim.pid"), nil
			}},
		{Name: "chrony", Binary: "/usr/sbin/chronyd", Pkg: "chrony", Port: 123, Service: "ntp", UDP: true,
			Start: func(dir string, addr netip.Addr, port uint16, _ Certs) (*exec.Cmd, error) {
				cfg, err := write(dir, "chrony.conf", fmt.Sprintf("port %d\nallow all\nbindaddress %s\ncmdport 0\npidfile %s/chronyd.pid\nlocal stratum 10\n", port, addr, dir))
				return exec.Command("/usr/sbin/chronyd", "-d", "-x", "-u", "root", "-f", cfg), err
			}},
		{Name: "snmpd", Binary: "/usr/sbin/snmpd", Pkg: "snmpd", Port: 161, Service: "snmp", UDP: true,
			Start: func(dir string, addr netip.Addr, port uint16, _ Certs) (*exec.Cmd, error) {
				cfg, err := write(dir, "snmpd.conf", "rocommunity public\nsysDescr portkit test agent\n")
				return exec.Command("/usr/sbin/snmpd", "-f", "-Lo", "-C", "-c", cfg, "-p", dir+"/snmpd.pid", fmt.Sprintf("udp:%s:%d", addr, port)), err
			}},
	}
}

// Upstream is the upstream part of pkg's installed version: without the
// epoch and the Debian revision.
func Upstream(pkg string) (string, error) {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", pkg).Output()
	if err != nil {
		return "", fmt.Errorf("dpkg-query %s: %w", pkg, err)
	}
	v := string(out)
	if _, after, ok := strings.Cut(v, ":"); ok {
		v = after
	}
	if i := strings.LastIndex(v, "-"); i > 0 {
		v = v[:i]
	}
	return v, nil
}

// CertCN is the common name of the fixture's certificate.
const CertCN = "portkit-test"

// Certs are the files of the fixture's certificate: the certificate, its
// key, and both in one file.
type Certs struct{ Cert, Key, Both string }

// MakeCert writes into dir a self-signed ECDSA P-256 certificate for
// CN=portkit-test, valid for ip too, readable by the servers' own users.
func MakeCert(dir string, ip netip.Addr) (Certs, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Certs{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(4711),
		Subject:      pkix.Name{CommonName: CertCN},
		DNSNames:     []string{CertCN, "localhost"},
		IPAddresses:  []net.IP{ip.AsSlice()},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(90 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Certs{}, fmt.Errorf("servicefixture: certificate: %w", err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return Certs{}, fmt.Errorf("servicefixture: key: %w", err)
	}
	f := Certs{Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem"), Both: filepath.Join(dir, "both.pem")}
	c := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	k := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	for name, b := range map[string][]byte{f.Cert: c, f.Key: k, f.Both: append(append([]byte{}, c...), k...)} {
		if err := os.WriteFile(name, b, 0o644); err != nil {
			return Certs{}, err
		}
	}
	return f, os.Chmod(dir, 0o755)
}

func itoa(port uint16) string { return strconv.Itoa(int(port)) }

func write(dir, name, text string) (string, error) {
	file := filepath.Join(dir, name)
	return file, os.WriteFile(file, []byte(text), 0o644)
}

// run runs a set-up step, its output in the error.
func run(name string, args ...string) error {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("servicefixture: %s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func sshd(dir string, addr netip.Addr, port uint16, _ Certs) (*exec.Cmd, error) {
	key := filepath.Join(dir, "host_ed25519")
	if err := run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // sshd's privilege separation directory
		return nil, err
	}
	cfg, err := write(dir, "sshd_config", "PidFile "+dir+"/sshd.pid\nUsePAM no\nListenAddress "+addr.String()+"\n")
	return exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfg, "-h", key, "-p", itoa(port)), err
}

func vsftpd(dir string, addr netip.Addr, port uint16, c Certs) (*exec.Cmd, error) {
	empty := filepath.Join(dir, "empty")
	if err := os.MkdirAll(empty, 0o755); err != nil {
		return nil, err
	}
	cfg, err := write(dir, "vsftpd.conf", fmt.Sprintf("listen=YES\nlisten_ipv6=NO\nlisten_port=%d\nlisten_address=%s\n"+
		"background=NO\nanonymous_enable=NO\nlocal_enable=YES\nsecure_chroot_dir=%s\nssl_enable=YES\nrsa_cert_file=%s\nrsa_private_key_file=%s\n",
		port, addr, empty, c.Cert, c.Key))
	return exec.Command("/usr/sbin/vsftpd", cfg), err
}

func postgres(dir string, addr netip.Addr, port uint16, c Certs) (*exec.Cmd, error) {
	// The postgres user must reach the directory made for it.
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	data := filepath.Join(dir, "data")
	if err := run("install", "-d", "-o", "postgres", "-m", "0700", data); err != nil {
		return nil, err
	}
	if err := run("/usr/sbin/runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/initdb", "-D", data, "-U", "postgres", "--auth=trust"); err != nil {
		return nil, err
	}
	cert, key := filepath.Join(data, "server.crt"), filepath.Join(data, "server.key")
	for from, to := range map[string]string{c.Cert: cert, c.Key: key} {
		b, err := os.ReadFile(from)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			return nil, err
		}
		if err := run("chown", "postgres:postgres", to); err != nil {
			return nil, err
		}
	}
	return exec.Command("/usr/sbin/runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/postgres", "-D", data, "-k", data,
		"-p", itoa(port), "-c", "listen_addresses="+addr.String(), "-c", "ssl=on",
		"-c", "ssl_cert_file="+cert, "-c", "ssl_key_file="+key), nil
}

func mariadb(dir string, addr netip.Addr, port uint16, _ Certs) (*exec.Cmd, error) {
	data := filepath.Join(dir, "data")
	if err := run("/usr/bin/mariadb-install-db", "--no-defaults", "--datadir="+data, "--user=root",
		"--auth-root-authentication-method=normal", "--skip-test-db"); err != nil {
		return nil, err
	}
	return exec.Command("/usr/sbin/mariadbd", "--no-defaults", "--datadir="+data, "--socket="+dir+"/mysqld.sock",
		"--pid-file="+dir+"/mysqld.pid", "--port="+itoa(port), "--bind-address="+addr.String(), "--user=root",
		"--skip-log-error", "--skip-grant-tables", "--skip-name-resolve"), nil
}

func dovecot(dir string, addr netip.Addr, c Certs, proto, listener string) (*exec.Cmd, error) {
	passwd, err := write(dir, "passwd", "")
	if err != nil {
		return nil, err
	}
	cfg, err := write(dir, "dovecot.conf", "base_dir = "+dir+"/run\nstate_dir = "+dir+"/state\nlog_path = "+dir+"/dovecot.log\n"+
		"protocols = "+proto+"\nlisten = "+addr.String()+"\nssl = yes\nssl_cert = <"+c.Cert+"\nssl_key = <"+c.Key+"\n"+
		"passdb {\n driver = passwd-file\n args = "+passwd+"\n}\nuserdb {\n driver = passwd-file\n args = "+passwd+"\n}\n"+listener)
	if err != nil {
		return nil, err
	}
	return exec.Command("/usr/sbin/dovecot", "-F", "-c", cfg), os.Chmod(dir, 0o755)
}

func nginx(dir, listen string) (*exec.Cmd, error) {
	cfg, err := write(dir, "nginx.conf", "daemon off; master_process off; user root; pid "+dir+"/nginx.pid; error_log "+dir+"/error.log;\n"+
		"events {}\nhttp { access_log off; server { "+listen+" location / { default_type text/html; return 200 '<html><head><title>portkit test</title></head></html>'; } } }\n")
	return exec.Command("/usr/sbin/nginx", "-p", dir, "-c", cfg, "-e", dir+"/error.log"), err
}

func dnsmasq(dir string, addr netip.Addr, port uint16, _ Certs) (*exec.Cmd, error) {
	return exec.Command("/usr/sbin/dnsmasq", "-k", "-C", "/dev/null", "-u", "root", "-p", itoa(port),
		"--listen-address="+addr.String(), "--bind-interfaces", "--no-resolv", "--no-hosts", "--pid-file="+dir+"/dnsmasq.pid"), nil
}

// InNetns returns cmd run in network namespace ns (through `ip netns exec`),
// in dir, its output to log, in a process group of its own: a server may
// run under a wrapper (runuser) that forks it, and the whole group is to be
// killed at the end (syscall.Kill(-pid, SIGKILL)).
func InNetns(ns string, cmd *exec.Cmd, dir string, log io.Writer) *exec.Cmd {
	full := exec.Command("ip", append([]string{"netns", "exec", ns, cmd.Path}, cmd.Args[1:]...)...)
	full.Dir = dir
	full.Stdout, full.Stderr = log, log
	full.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return full
}
