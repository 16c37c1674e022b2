package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/portkit/portkit/bench/internal/proc"
	"github.com/portkit/portkit/knock/spa"
)

// The fixture bench/knock.sh makes: the client namespace (where knockbench
// runs) has a veth pair to each target namespace, on a /24 of its own; the
// client is .1 and the server .2.
var (
	portkitLink = link{client: netip.MustParseAddr("198.18.1.1"), server: netip.MustParseAddr("198.18.1.2")}
	fwknopdLink = link{client: netip.MustParseAddr("198.18.2.1"), server: netip.MustParseAddr("198.18.2.2")}
	knockdLink  = link{client: netip.MustParseAddr("198.18.3.1"), server: netip.MustParseAddr("198.18.3.2")}
)

const (
	protectedPort = 2222  // the port every server keeps closed, with a listener behind it
	spaPort       = 62201 // fwknop's
	metricsPort   = 9102  // portkit knockd --metrics
	// accessTimeout is how long an opening lasts: longer than a flood and
	// its count, so that nothing expires before it is counted.
	accessTimeout = 60
)

// knockSequence is the sequence of knockd and portkit knockd, in knockd's
// syntax; the stock knock client is given it as arguments.
var knockSequence = []string{"7000", "8000:udp", "9000"}

type link struct{ client, server netip.Addr }

// server is one of the daemons, in its namespace.
type server struct {
	name     string // "portkit", "fwknopd", "knockd"
	ns       string
	link     link
	argv     []string // its command line, as run in the namespace
	p        *proc.Proc
	listener *proc.Proc
	// reset removes every opening it made, so that the next trial starts
	// from a closed port.
	reset []string
}

func (s *server) protected() string {
	return netip.AddrPortFrom(s.link.server, protectedPort).String()
}

// fixture is the three servers, started with the same SPA keys.
type fixture struct {
	c        *config
	keys     spa.Keys
	fwknop   string // the stock client
	knock    string
	portkit  *server
	fwknopd  *server
	knockd   *server
	stoppers []func()
}

// inNS runs argv in network namespace ns and returns its output; a failure
// comes with the output.
func inNS(ctx context.Context, ns string, argv ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("in %s: %s: %w: %s", ns, strings.Join(argv, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// nftIn loads an nft script in ns.
func nftIn(ctx context.Context, ns, script string) error {
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("in %s: nft -f -: %v: %s", ns, err, bytes.TrimSpace(out))
	}
	return nil
}

// notrack keeps the junk of the flood out of conntrack in every target
// namespace, the same for all three: a flood from spoofed sources would
// otherwise fill the kernel's connection table (memory the machine shares)
// with entries nothing needs. The daemons read packets before netfilter
// (libpcap and AF_PACKET), so it changes nothing they see.
const notrack = `add table inet kbnotrack
delete table inet kbnotrack
table inet kbnotrack {
	chain pre {
		type filter hook prerouting priority raw; policy accept;
		udp dport 62201 notrack
		tcp dport { 7000, 9000 } notrack
	}
}
`

// knockdFirewall is knockd's side: a default drop for new connections to
// the protected port, after a chain that knockd's command adds accepts to.
var knockdFirewall = fmt.Sprintf(`add table inet kbknockd
delete table inet kbknockd
table inet kbknockd {
	chain allow {
	}
	chain input {
		type filter hook input priority filter; policy accept;
		ct state established,related accept
		jump allow
		tcp dport %d drop
	}
}
`, protectedPort)

// startFixture sets up the three target namespaces and starts the
// listeners and the daemons; on error, whatever started is stopped.
func startFixture(ctx context.Context, c *config) (f *fixture, err error) {
	f = &fixture{c: c}
	defer func() {
		if err != nil {
			f.stop()
		}
	}()
	for _, tool := range []string{"fwknop", "fwknopd", "knock", "knockd", "iptables", "nft"} {
		path, err := exec.LookPath(tool)
		if err != nil {
			return nil, fmt.Errorf("%s is needed: %w", tool, err)
		}
		switch tool {
		case "fwknop":
			f.fwknop = path
		case "knock":
			f.knock = path
		}
	}
	if f.keys, err = spa.Keygen(nil); err != nil {
		return nil, err
	}
	nft, _ := exec.LookPath("nft")
	iptables, _ := exec.LookPath("iptables")
	f.portkit = &server{name: "portkit", ns: c.nsPortkit, link: portkitLink,
		reset: []string{c.portkit, "firewall", "close", fmt.Sprintf("%d/tcp", protectedPort), "--from", portkitLink.client.String()}}
	f.fwknopd = &server{name: "fwknopd", ns: c.nsFwknopd, link: fwknopdLink,
		reset: []string{iptables, "-F", "FWKNOP_INPUT"}}
	f.knockd = &server{name: "knockd", ns: c.nsKnockd, link: knockdLink,
		reset: []string{nft, "flush", "chain", "inet", "kbknockd", "allow"}}

	for _, s := range f.servers() {
		if err := nftIn(ctx, s.ns, notrack); err != nil {
			return nil, err
		}
		if err := f.startListener(ctx, s); err != nil {
			return nil, err
		}
	}
	if err := f.startPortkit(ctx); err != nil {
		return nil, err
	}
	if err := f.startFwknopd(ctx, iptables); err != nil {
		return nil, err
	}
	if err := f.startKnockd(ctx, nft); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *fixture) servers() []*server { return []*server{f.portkit, f.fwknopd, f.knockd} }

func (f *fixture) stop() {
	for i := len(f.stoppers) - 1; i >= 0; i-- {
		f.stoppers[i]()
	}
	f.stoppers = nil
}

// start runs argv in s's namespace as a process of the fixture.
func (f *fixture) start(s *server, name string, argv []string) (*proc.Proc, error) {
	p, err := proc.Start(name, append([]string{"ip", "netns", "exec", s.ns}, argv...), f.c.tmp)
	if err != nil {
		return nil, err
	}
	f.stoppers = append(f.stoppers, p.Stop)
	return p, nil
}

// startListener starts fwdtarget's TCP echo on the protected port of s.
func (f *fixture) startListener(ctx context.Context, s *server) error {
	ready := filepath.Join(f.c.tmp, s.name+"-listener.ready")
	var err error
	s.listener, err = f.start(s, s.name+"-listener", []string{f.c.target, "-echo", s.protected(), "-ready", ready, "-max-lifetime", "30m"})
	if err != nil {
		return err
	}
	return waitFor(ctx, s.listener, 10*time.Second, "ready", func() bool {
		_, err := os.Stat(ready)
		return err == nil
	})
}

// waitFor polls cond every 20 ms until it holds, p exits, or timeout.
func waitFor(ctx context.Context, p *proc.Proc, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if p.Exited() {
			return p.Failure("exited before it was " + what)
		}
		if time.Now().After(deadline) {
			return p.Failure(fmt.Sprintf("was not %s within %v", what, timeout))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// logSays is a condition for waitFor: file holds text.
func logSays(file, text string) func() bool {
	return func() bool {
		b, _ := os.ReadFile(file)
		return bytes.Contains(b, []byte(text))
	}
}

// writeFile writes a config file readable by its owner only, as fwknopd
// demands of its own.
func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o600) }

func (f *fixture) startPortkit(ctx context.Context) error {
	s := f.portkit
	if _, err := inNS(ctx, s.ns, f.c.portkit, "firewall", "protect", fmt.Sprintf("%d/tcp", protectedPort)); err != nil {
		return err
	}
	conf := filepath.Join(f.c.tmp, "portkit-knockd.toml")
	err := writeFile(conf, fmt.Sprintf(`spa_port = %d

[[spa]]
source = ["ANY"]
open_ports = ["tcp/%d"]
key_base64 = %q
hmac_key_base64 = %q
access_timeout = "%ds"
require_source_address = false

[[sequence]]
name = "bench"
sequence = %q
seq_timeout = "10s"
open_ports = ["tcp/%d"]
access_timeout = "%ds"
`, spaPort, protectedPort, f.keys.EncryptionBase64(), f.keys.HMACBase64(), accessTimeout,
		strings.Join(knockSequence, ","), protectedPort, accessTimeout))
	if err != nil {
		return err
	}
	s.argv = []string{f.c.portkit, "knockd", "--config", conf, "--interface", s.ns, "--state-dir", filepath.Join(f.c.tmp, "portkit-state"),
		"--metrics", f.metricsAddr()}
	if s.p, err = f.start(s, "portkit-knockd", s.argv); err != nil {
		return err
	}
	return waitFor(ctx, s.p, 10*time.Second, "listening", logSays(s.p.LogFile(), "msg=listening"))
}

func (f *fixture) startFwknopd(ctx context.Context, iptables string) error {
	s := f.fwknopd
	// The default drop for the port, after the jump to FWKNOP_INPUT that
	// fwknopd inserts at the head of INPUT when it starts (its
	// IPT_INPUT_ACCESS default) and removes when it stops
	// (FLUSH_IPT_AT_EXIT). Added once: the namespace outlives the modes.
	drop := []string{"INPUT", "-p", "tcp", "--dport", fmt.Sprint(protectedPort), "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"}
	if _, err := inNS(ctx, s.ns, append([]string{iptables, "-C"}, drop...)...); err != nil {
		if _, err := inNS(ctx, s.ns, append([]string{iptables, "-A"}, drop...)...); err != nil {
			return err
		}
	}
	dir := filepath.Join(f.c.tmp, "fwknopd")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	conf := filepath.Join(dir, "fwknopd.conf")
	// Everything else is fwknopd's default: libpcap on the interface with
	// the filter "udp port 62201", PCAP_LOOP_SLEEP 100000 µs, iptables.
	if err := writeFile(conf, fmt.Sprintf("PCAP_INTF %s;\nFWKNOP_RUN_DIR %s;\nFIREWALL_EXE %s;\n", s.ns, dir, iptables)); err != nil {
		return err
	}
	access := filepath.Join(dir, "access.conf")
	if err := writeFile(access, fmt.Sprintf("SOURCE ANY\nOPEN_PORTS tcp/%d\nKEY_BASE64 %s\nHMAC_KEY_BASE64 %s\nFW_ACCESS_TIMEOUT %d\nREQUIRE_SOURCE_ADDRESS N\n",
		protectedPort, f.keys.EncryptionBase64(), f.keys.HMACBase64(), accessTimeout)); err != nil {
		return err
	}
	s.argv = []string{"fwknopd", "-f", "-c", conf, "-a", access, "-d", filepath.Join(dir, "digest.cache"), "-p", filepath.Join(dir, "fwknopd.pid")}
	var err error
	if s.p, err = f.start(s, "fwknopd", s.argv); err != nil {
		return err
	}
	return waitFor(ctx, s.p, 10*time.Second, "sniffing", logSays(s.p.LogFile(), "main event loop"))
}

func (f *fixture) startKnockd(ctx context.Context, nft string) error {
	s := f.knockd
	if err := nftIn(ctx, s.ns, knockdFirewall); err != nil {
		return err
	}
	dir := filepath.Join(f.c.tmp, "knockd")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	conf := filepath.Join(dir, "knockd.conf")
	log := filepath.Join(dir, "knockd.log")
	err := writeFile(conf, fmt.Sprintf(`[options]
	LogFile = %s
	PidFile = %s
	Interface = %s
[bench]
	sequence      = %s
	seq_timeout   = 10
	tcpflags      = syn
	start_command = %s add rule inet kbknockd allow ip saddr %%IP%% tcp dport %d accept
`, log, filepath.Join(dir, "knockd.pid"), s.ns, strings.Join(knockSequence, ","), nft, protectedPort))
	if err != nil {
		return err
	}
	s.argv = []string{"knockd", "-c", conf, "-i", s.ns}
	if s.p, err = f.start(s, "knockd", s.argv); err != nil {
		return err
	}
	return waitFor(ctx, s.p, 10*time.Second, "listening", logSays(log, "listening"))
}

// resetServer removes s's openings.
func (f *fixture) resetServer(ctx context.Context, s *server) error {
	_, err := inNS(ctx, s.ns, s.reset...)
	if s == f.portkit && exitCode(err) == 1 {
		return nil // there was no opening
	}
	return err
}

// exitCode is the exit code of the command that failed with err, -1 when
// err is not a command's exit.
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// spaPacket has the stock fwknop client build an access packet for
// tcp/protectedPort, to let allow in, and returns its payload; fwknop
// sends nothing (-T), so the packet's send can be timed here.
func (f *fixture) spaPacket(ctx context.Context, dst, allow netip.Addr) ([]byte, error) {
	file := filepath.Join(f.c.tmp, "spa.packet")
	argv := f.fwknopArgv(dst, allow, file)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "HOME="+f.c.tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("fwknop: %v: %s", err, bytes.TrimSpace(out))
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	if len(b) < 100 {
		return nil, fmt.Errorf("fwknop saved a packet of %d bytes", len(b))
	}
	return b, nil
}

func (f *fixture) fwknopArgv(dst, allow netip.Addr, file string) []string {
	return []string{f.fwknop, "--no-rc-file", "--no-home-dir", "-E", filepath.Join(f.c.tmp, "fwknop.run"),
		"-D", dst.String(), "-a", allow.String(), "-A", fmt.Sprintf("tcp/%d", protectedPort), "-U", "bench",
		"--use-hmac", "--key-base64-rijndael", f.keys.EncryptionBase64(), "--key-base64-hmac", f.keys.HMACBase64(),
		"-T", "-B", file}
}

// metricsAddr is where portkit knockd serves its metrics: on the server's
// address, reachable from the client namespace (the port is not protected).
func (f *fixture) metricsAddr() string {
	return netip.AddrPortFrom(f.portkit.link.server, metricsPort).String()
}

// portkitMetrics reads portkit knockd's metrics: each sample line's name
// (with labels) and value.
func (f *fixture) portkitMetrics(ctx context.Context) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+f.metricsAddr()+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("portkit knockd metrics: %s", resp.Status)
	}
	return parseMetrics(string(body)), nil
}

// parseMetrics reads the text exposition format's sample lines.
func parseMetrics(text string) map[string]float64 {
	m := map[string]float64{}
	for line := range strings.SplitSeq(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m
}

// portkitOpenings lists the sources portkit's firewall has an opening for.
func (f *fixture) portkitOpenings(ctx context.Context) ([]string, error) {
	out, err := inNS(ctx, f.portkit.ns, f.c.portkit, "firewall", "ls", "--json")
	if err != nil {
		if exitCode(err) != 1 { // 1: nothing open
			return nil, err
		}
	}
	var st struct {
		Openings []struct {
			Source string `json:"source"`
		} `json:"openings"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("portkit firewall ls --json: %v", err)
	}
	var srcs []string
	for _, o := range st.Openings {
		srcs = append(srcs, o.Source)
	}
	return srcs, nil
}

// fwknopdOpenings lists the sources of fwknopd's accept rules.
func (f *fixture) fwknopdOpenings(ctx context.Context) ([]string, error) {
	out, err := inNS(ctx, f.fwknopd.ns, "iptables", "-S", "FWKNOP_INPUT")
	if err != nil {
		return nil, err
	}
	var srcs []string
	for line := range strings.SplitSeq(string(out), "\n") {
		fields := strings.Fields(line)
		for i := 0; i+1 < len(fields); i++ {
			if fields[i] == "-s" && strings.Contains(line, "-j ACCEPT") {
				srcs = append(srcs, strings.TrimSuffix(fields[i+1], "/32"))
			}
		}
	}
	return srcs, nil
}
