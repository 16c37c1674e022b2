//go:build linux

package guard

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portkit/portkit/firewall"
	"github.com/portkit/portkit/internal/netnstest"
)

// lab is a scanner and a target namespace; the target listens on
// labOpen (TCP) and labOpenUDP, and answers every closed UDP port (its
// ICMP rate limits lifted).
type lab struct{ netnstest.Pair }

var (
	labOpen    = []uint16{20010, 20050, 25001, 25002, 25003} // two in the scans' range 20000-20099
	labOpenUDP = uint16(20020)
)

func newLab(t *testing.T) lab {
	t.Helper()
	l := lab{netnstest.New(t, "g")}
	var closers []io.Closer
	netnstest.Run(t, l.Target, func() error {
		for _, p := range labOpen {
			ln, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
			if err != nil {
				return err
			}
			closers = append(closers, ln)
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() { // an HTTP/1.0 server: the request, then the answer
						defer c.Close()
						c.SetDeadline(time.Now().Add(5 * time.Second))
						r := bufio.NewReader(c)
						for {
							line, err := r.ReadString('\n')
							if err != nil {
								return
							}
							if line == "\r\n" {
								break
							}
						}
						io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
					}()
				}
			}()
		}
		u, err := net.ListenUDP("udp", &net.UDPAddr{Port: int(labOpenUDP)})
		closers = append(closers, u)
		return err
	})
	t.Cleanup(func() {
		for _, c := range closers {
			c.Close()
		}
	})
	l.exec(t, l.Target, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0",
		"net.ipv4.icmp_msgs_per_sec=1000000", "net.ipv4.icmp_msgs_burst=1000000")
	return l
}

// exec runs a command in namespace ns, bounded in time; it must exit 0
// or one of okCodes.
func (l lab) exec(t *testing.T, ns string, args ...string) string {
	t.Helper()
	return l.execOK(t, ns, nil, args...)
}

func (l lab) execOK(t *testing.T, ns string, okCodes []int, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil && !(cmd.ProcessState != nil && slices.Contains(okCodes, cmd.ProcessState.ExitCode())) {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// labConfig is quick to decide and to end, for tests.
func labConfig() Config {
	return Config{AnswerWait: 500 * time.Millisecond, UpdateEvery: time.Second, EndAfter: 2 * time.Second}
}

// watch runs a Guard on the target's namespace until the test ends.
func (l lab) watch(t *testing.T, opts Options) (*Guard, *collector, func()) {
	t.Helper()
	col := &collector{}
	opts.Sinks = append(opts.Sinks, SinkFunc(col.sink))
	g := NewGuard(opts)
	var s *Sensor
	netnstest.Run(t, l.Target, func() error {
		var err error
		s, err = g.Open(nil, false)
		return err
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("sensor: %v", err)
			}
			s.Close()
		})
	}
	t.Cleanup(stop)
	return g, col, stop
}

// waitEnds waits until n scans have ended, or fails after a bound.
func waitEnds(t *testing.T, col *collector, n int) []*Alert {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ends := col.alerts(PhaseEnd); len(ends) >= n {
			return ends
		}
	}
	t.Fatalf("%d scans ended, want %d; alerts: %+v", len(col.alerts(PhaseEnd)), n, col.alerts(""))
	return nil
}

func needTool(t *testing.T, name string) {
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("needs %s: %v", name, err)
	}
}

// checkScan checks the one scan's source, type and ports.
func checkScan(t *testing.T, col *collector, src netip.Addr, typ, tcp, udp string) *Alert {
	t.Helper()
	ends := waitEnds(t, col, 1)
	if starts := col.alerts(PhaseStart); len(starts) != 1 || len(ends) != 1 {
		t.Fatalf("%d starts, %d ends, want one scan: %+v", len(starts), len(ends), col.alerts(""))
	}
	a := ends[0]
	if !slices.Equal(a.Sources, []netip.Addr{src}) || a.Type != typ || PortRanges(a.TCPPorts) != tcp || PortRanges(a.UDPPorts) != udp {
		t.Errorf("scan from %v type %q tcp %q udp %q; want %v %q %q %q", a.Sources, a.Type,
			PortRanges(a.TCPPorts), PortRanges(a.UDPPorts), src, typ, tcp, udp)
	}
	return a
}

// TestNmapScansNetns: each of nmap's scan types, from the other
// namespace, is one scan with the right source, type and ports.
func TestNmapScansNetns(t *testing.T) {
	needTool(t, "nmap")
	l := newLab(t)
	for _, c := range []struct {
		args     []string
		target   netip.Addr
		typ      string
		tcp, udp string
	}{
		{[]string{"-sS"}, netnstest.Target4, "SYN", "20000-20099", ""},
		{[]string{"-sS", "-6"}, netnstest.Target6, "SYN", "20000-20099", ""},
		{[]string{"-sT"}, netnstest.Target4, "connect", "20000-20099", ""},
		{[]string{"-sF"}, netnstest.Target4, "FIN", "20000-20099", ""},
		{[]string{"-sN"}, netnstest.Target4, "NULL", "20000-20099", ""},
		{[]string{"-sX"}, netnstest.Target4, "Xmas", "20000-20099", ""},
		{[]string{"-sA"}, netnstest.Target4, "ACK/Window", "20000-20099", ""},
		{[]string{"-sM"}, netnstest.Target4, "Maimon", "20000-20099", ""},
		{[]string{"-sW"}, netnstest.Target4, "ACK/Window", "20000-20099", ""},
		{[]string{"-sU"}, netnstest.Target4, "UDP", "", "20000-20099"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			_, col, _ := l.watch(t, Options{Config: labConfig()})
			src := netnstest.Scanner4
			if c.target.Is6() {
				src = netnstest.Scanner6
			}
			args := append([]string{"nmap"}, c.args...)
			args = append(args, "-n", "-Pn", "-p", "20000-20099", "--max-retries", "0", "-T4", "--host-timeout", "60s", c.target.String())
			l.exec(t, l.Scanner, args...)
			checkScan(t, col, src, c.typ, c.tcp, c.udp)
		})
	}
}

// TestMasscanNetns: masscan's SYN scan, and masscan named from its IP
// IDs.
func TestMasscanNetns(t *testing.T) {
	needTool(t, "masscan")
	l := newLab(t)
	_, col, _ := l.watch(t, Options{Config: labConfig()})
	mac := strings.Fields(l.exec(t, l.Target, "cat", "/sys/class/net/"+l.Target+"/address"))[0]
	l.exec(t, l.Scanner, "masscan", "-p20000-20099", "--rate", "2000", "--wait", "1", "--adapter", l.Scanner,
		"--adapter-ip", netnstest.Scanner4.String(), "--router-mac", mac, netnstest.Target4.String())
	a := checkScan(t, col, netnstest.Scanner4, "SYN", "20000-20099", "")
	if a.Tool != "masscan (guess)" {
		t.Errorf("tool %q, want masscan (guess)", a.Tool)
	}
}

// buildPortkit builds portkit from this tree into a temporary directory.
func buildPortkit(t *testing.T) string {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs go to build portkit:", err)
	}
	bin := filepath.Join(t.TempDir(), "portkit")
	out, err := exec.Command(gobin, "build", "-o", bin, "github.com/portkit/portkit/cmd/portkit").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	return bin
}

// TestPortkitScansNetns: portkit's own SYN, connect and UDP scans.
func TestPortkitScansNetns(t *testing.T) {
	l := newLab(t)
	bin := buildPortkit(t)
	for _, c := range []struct {
		flag     string
		typ      string
		tcp, udp string
	}{
		{"--syn", "SYN", "20000-20099", ""},
		{"--connect", "connect", "20000-20099", ""},
		// A UDP scan also asks the highest port not scanned, once, for its
		// host's round trip (scan/udpsilence.go): guard names it too.
		{"--udp", "UDP", "", "20000-20099,65535"},
	} {
		t.Run(c.flag, func(t *testing.T) {
			_, col, _ := l.watch(t, Options{Config: labConfig()})
			// portkit scan exits 1 when it finds no port open; its
			// summary says it scanned.
			out := l.execOK(t, l.Scanner, []int{1}, bin, "scan", c.flag, "-p", "20000-20099", "--retries", "0", netnstest.Target4.String())
			if !strings.Contains(out, "100 probes in") {
				t.Fatalf("portkit scan did not scan:\n%s", out)
			}
			checkScan(t, col, netnstest.Scanner4, c.typ, c.tcp, c.udp)
		})
	}
}

// TestSlowScanNetns: nmap --scan-delay over 40 ports, each probe farther
// from the last than the short gap, is found by the long window. The
// scan is scaled down in time: 300 ms between probes with a 100 ms short
// gap stands for 1 s and more with the default 3 s.
func TestSlowScanNetns(t *testing.T) {
	needTool(t, "nmap")
	l := newLab(t)
	cfg := labConfig()
	cfg.ShortGap, cfg.LongWindow, cfg.LongPorts = 100*time.Millisecond, time.Minute, 30
	_, col, _ := l.watch(t, Options{Config: cfg})
	l.exec(t, l.Scanner, "nmap", "-sS", "-n", "-Pn", "-p", "21000-21039", "--max-retries", "0", "--scan-delay", "300ms", netnstest.Target4.String())
	a := checkScan(t, col, netnstest.Scanner4, "SYN", "21000-21039", "")
	if a.Trigger != "long" {
		t.Errorf("trigger %q, want long", a.Trigger)
	}
}

// scannerAddrs adds addresses to the scanner's end of the link.
func (l lab) scannerAddrs(t *testing.T, as []netip.Addr) {
	for _, a := range as {
		l.exec(t, l.Scanner, "ip", "addr", "add", a.String()+"/24", "dev", l.Scanner)
	}
}

// TestDistributedNetns: 8 sources, each scanning its own 50 of 400
// ports at once, are one scan naming the 8.
func TestDistributedNetns(t *testing.T) {
	needTool(t, "nmap")
	l := newLab(t)
	var srcs []netip.Addr
	for i := range 8 {
		srcs = append(srcs, netip.AddrFrom4([4]byte{198, 18, 0, byte(11 + i)}))
	}
	l.scannerAddrs(t, srcs)
	cfg := labConfig()
	cfg.EndAfter = 5 * time.Second
	_, col, _ := l.watch(t, Options{Config: cfg})
	var wg sync.WaitGroup
	for i, s := range srcs {
		wg.Go(func() {
			ports := fmt.Sprintf("%d-%d", 22000+i*50, 22049+i*50)
			l.exec(t, l.Scanner, "nmap", "-sS", "-S", s.String(), "-e", l.Scanner, "-n", "-Pn", "-p", ports,
				"--max-retries", "0", "-T4", netnstest.Target4.String())
		})
	}
	wg.Wait()
	ends := waitEnds(t, col, 1)
	time.Sleep(cfg.EndAfter) // nothing else should come
	if starts := col.alerts(PhaseStart); len(starts) != 1 || len(col.alerts(PhaseEnd)) != 1 {
		t.Fatalf("%d scans, want 1: %+v", len(starts), col.alerts(""))
	}
	a := ends[0]
	if a.Kind != "distributed" || !slices.Equal(a.Sources, srcs) || PortRanges(a.TCPPorts) != "22000-22399" {
		t.Errorf("kind %q sources %v ports %s", a.Kind, a.Sources, PortRanges(a.TCPPorts))
	}
}

// TestBlockNetns: the scanner goes to the Blocker once; an allowed
// scanner never.
func TestBlockNetns(t *testing.T) {
	needTool(t, "nmap")
	l := newLab(t)
	allowed := netip.MustParseAddr("198.18.0.30")
	l.scannerAddrs(t, []netip.Addr{allowed})
	fb := &fakeBlocker{}
	cfg := labConfig()
	cfg.Allow = []netip.Prefix{netip.PrefixFrom(allowed, 32)}
	_, col, _ := l.watch(t, Options{Config: cfg, Blocker: fb, BlockFor: time.Minute})
	for _, src := range []netip.Addr{allowed, netnstest.Scanner4} {
		l.exec(t, l.Scanner, "nmap", "-sS", "-S", src.String(), "-e", l.Scanner, "-n", "-Pn", "-p", "23000-23099",
			"--max-retries", "0", "-T4", netnstest.Target4.String())
	}
	checkScan(t, col, netnstest.Scanner4, "SYN", "23000-23099", "")
	if got := fb.blocked(); !slices.Equal(got, []netip.Addr{netnstest.Scanner4}) {
		t.Errorf("blocked %v, want %v once", got, netnstest.Scanner4)
	}
}

// TestFirewallBlockNetns: with the firewall package as the Blocker, a
// scanner's packets are dropped in nftables (portkit's own table in the
// target namespace) once its scan is detected, and pass again when the
// block expires.
func TestFirewallBlockNetns(t *testing.T) {
	needTool(t, "nmap")
	l := newLab(t)
	nsfd, err := unix.Open("/run/netns/"+l.Target, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(nsfd)
	table := firewall.Table{NetNS: nsfd}
	t.Cleanup(func() { table.Flush(context.Background()) })
	const blockFor = 3 * time.Second
	_, col, _ := l.watch(t, Options{Config: labConfig(), Blocker: table, BlockFor: blockFor})

	open := netip.AddrPortFrom(netnstest.Target4, labOpen[2]) // outside the scan's range
	connect := func() error {
		var err error
		netnstest.Run(t, l.Scanner, func() error {
			var c net.Conn
			if c, err = net.DialTimeout("tcp", open.String(), 300*time.Millisecond); err == nil {
				c.Close()
			}
			return nil
		})
		return err
	}
	// (No connect before the scan: it would be part of the scan's ports.
	// The connect after the block's expiry shows the port answers.)
	l.exec(t, l.Scanner, "nmap", "-sS", "-n", "-Pn", "-p", "20000-20099", "--max-retries", "0", "-T4", netnstest.Target4.String())
	checkScan(t, col, netnstest.Scanner4, "SYN", "20000-20099", "")
	blocked := func() bool {
		st, err := table.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range st.Blocked {
			if b.Source == netnstest.Scanner4 {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(10 * time.Second)
	for !blocked() {
		if time.Now().After(deadline) {
			t.Fatal("the scanner is not in the firewall's blocked set 10s after its scan")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := connect(); err == nil {
		t.Fatal("a blocked scanner connected")
	}
	// The kernel lets the block go by itself.
	for deadline := time.Now().Add(blockFor + 10*time.Second); connect() != nil; {
		if time.Now().After(deadline) {
			t.Fatalf("the scanner still cannot connect %v after a %v block", blockFor+10*time.Second, blockFor)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestBenignNetns: real traffic that is not a scan raises no alert: 1000
// HTTP requests to one port, a client of the open services, a monitor
// probing 10 ports again and again, a forwarder's churn of short
// connections.
func TestBenignNetns(t *testing.T) {
	l := newLab(t)
	cfg := labConfig()
	g, col, stop := l.watch(t, Options{Config: cfg})
	dial := func(port uint16) error {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(netnstest.Target4, port).String(), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
		_, err = io.ReadAll(c)
		return err
	}
	netnstest.Run(t, l.Scanner, func() error {
		for range 1000 { // HTTP
			if err := dial(labOpen[0]); err != nil {
				return err
			}
		}
		for _, p := range labOpen { // a client of the 5 services
			if err := dial(p); err != nil {
				return err
			}
		}
		for range 20 { // a monitor: open and closed ports
			for i := range 10 {
				if i < len(labOpen) {
					if err := dial(labOpen[i]); err != nil {
						return err
					}
				} else if dial(uint16(24000+i)) == nil {
					return fmt.Errorf("port %d answered: it should be closed", 24000+i)
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		for i := range 300 { // a forwarder's churn over 2 ports
			if err := dial(labOpen[i%2]); err != nil {
				return err
			}
		}
		return nil
	})
	// Every attempt decided, then nothing alerted.
	time.Sleep(2 * cfg.AnswerWait)
	stop()
	g.Flush(time.Now().Add(time.Hour))
	if a := col.alerts(""); len(a) > 0 {
		t.Errorf("alerts for benign traffic: %+v", a[0])
	}
	if st, _ := g.Stats(); st.Attempts < 1000 {
		t.Errorf("%d attempts seen, want the 1000 requests at least", st.Attempts)
	}
}

// TestFloodNetns: a SYN flood from spoofed sources keeps the tracked
// sources within --max-sources.
func TestFloodNetns(t *testing.T) {
	l := newLab(t)
	cfg := labConfig()
	cfg.MaxSources = 500
	g, _, stop := l.watch(t, Options{Config: cfg})
	const n = 20000
	netnstest.Run(t, l.Scanner, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		to := &unix.SockaddrInet4{Addr: netnstest.Target4.As4()}
		for i := range n {
			src := netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)})
			p := Packet{Flow: Flow{Src: src, Dst: netnstest.Target4, SrcPort: uint16(1024 + i%50000), DstPort: 80, Proto: TCP}, Flags: SYN, TTL: 64, Seq: uint32(i)}
			if err := unix.Sendto(fd, Marshal(&p), 0, to); err != nil {
				return err
			}
			if st, _ := g.Stats(); st.Sources > cfg.MaxSources {
				return fmt.Errorf("after %d SYNs: %d sources tracked", i, st.Sources)
			}
		}
		return nil
	})
	time.Sleep(2 * cfg.AnswerWait)
	stop()
	st, _ := g.Stats()
	if st.Sources > cfg.MaxSources || st.Packets < n/2 {
		t.Errorf("%d sources tracked (cap %d), %d packets read of %d", st.Sources, cfg.MaxSources, st.Packets, n)
	}
}

// TestTcpdumpReplayNetns: captures tcpdump wrote of an nmap scan replay
// to the same scan: on the interface (Ethernet: the direction from the
// local address) and on "any" (Linux cooked: the direction recorded).
func TestTcpdumpReplayNetns(t *testing.T) {
	needTool(t, "nmap")
	needTool(t, "tcpdump")
	l := newLab(t)
	for _, c := range []struct {
		name  string
		iface string
		local func(netip.Addr) bool
	}{
		{"ethernet", l.Target, func(a netip.Addr) bool { return a == netnstest.Target4 }},
		{"any", "any", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "scan.pcap")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.Target, "tcpdump", "-B", "8192", "-n", "-i", c.iface, "-w", file, "tcp or udp or icmp")
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// tcpdump says "listening on" once it captures.
			r := bufio.NewReader(stderr)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					t.Fatalf("tcpdump: %q %v", line, err)
				}
				if strings.Contains(line, "listening on") {
					break
				}
			}
			// At a pace tcpdump keeps up with on a busy machine.
			l.exec(t, l.Scanner, "nmap", "-sS", "-n", "-Pn", "-p", "20000-20099", "--max-retries", "0", "--max-rate", "1000", netnstest.Target4.String())
			// libpcap hands packets over once a second (its ring's
			// block timeout): give it two.
			time.Sleep(2 * time.Second)
			cmd.Process.Signal(os.Interrupt)
			rest, _ := io.ReadAll(r)
			cmd.Wait()
			t.Logf("tcpdump: %s", rest) // its counts, should packets be missing

			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			col := &collector{}
			g := NewGuard(Options{Sinks: []Sink{SinkFunc(col.sink)}})
			if err := g.Replay(context.Background(), f, c.local); err != nil {
				t.Fatal(err)
			}
			checkScan(t, col, netnstest.Scanner4, "SYN", "20000-20099", "")
		})
	}
}
