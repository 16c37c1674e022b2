package evict

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portkit/portkit/sockets"
)

// The test binary doubles as the processes the tests evict:
// EVICT_CHILD=server listens on 127.0.0.1:0 and prints its port;
// EVICT_CHILD=stubborn does the same but ignores SIGTERM;
// EVICT_CHILD=client connects to EVICT_ADDR and prints "connected".
func TestMain(m *testing.M) {
	switch os.Getenv("EVICT_CHILD") {
	case "server", "stubborn":
		if os.Getenv("EVICT_CHILD") == "stubborn" {
			signal.Ignore(syscall.SIGTERM)
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+cmp.Or(os.Getenv("EVICT_PORT"), "0"))
		if err != nil {
			os.Exit(3)
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
			}
		}()
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
		time.Sleep(time.Minute)
		os.Exit(0)
	case "client":
		c, err := net.Dial("tcp", os.Getenv("EVICT_ADDR"))
		if err != nil {
			os.Exit(3)
		}
		defer c.Close()
		fmt.Println("connected")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child starts the test binary as kind and returns it with its first line.
func child(t *testing.T, kind string, env ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, "EVICT_CHILD="+kind)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("%s child: %v", kind, err)
	}
	return cmd, strings.TrimSpace(line)
}

func needSockets(t *testing.T) {
	t.Helper()
	if _, err := sockets.List(context.Background(), sockets.Query{}); err != nil {
		t.Skip("cannot list sockets here:", err)
	}
}

func exited(cmd *exec.Cmd) bool {
	return cmd.Process.Signal(syscall.Signal(0)) != nil || zombie(cmd.Process.Pid)
}

func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	return strings.HasPrefix(strings.TrimSpace(s[strings.LastIndexByte(s, ')')+1:]), "Z")
}

func TestEvictServerNotClient(t *testing.T) {
	needSockets(t)
	server, port := child(t, "server")
	client, _ := child(t, "client", "EVICT_ADDR=127.0.0.1:"+port)
	p, _ := strconv.Atoi(port)
	rep, err := Port(context.Background(), Target{Port: uint16(p), Proto: sockets.TCP}, Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Free || rep.WasFree {
		t.Fatalf("report %+v: want the port freed", rep)
	}
	if len(rep.Actions) != 1 || rep.Actions[0].Process.PID != server.Process.Pid || rep.Actions[0].Err != nil {
		t.Fatalf("actions %+v: want one SIGTERM to the server, pid %d", rep.Actions, server.Process.Pid)
	}
	if !exited(server) {
		t.Error("server still running")
	}
	if exited(client) {
		t.Error("the client connected to the server was signalled too")
	}
}

func TestEvictDryRunAndFree(t *testing.T) {
	needSockets(t)
	server, port := child(t, "server")
	p, _ := strconv.Atoi(port)
	rep, err := Port(context.Background(), Target{Port: uint16(p)}, Options{DryRun: true})
	if err != nil || len(rep.Holders) != 1 || rep.Holders[0].PID != server.Process.Pid || len(rep.Actions) != 0 || rep.Free {
		t.Fatalf("dry run: %+v, %v", rep, err)
	}
	if exited(server) {
		t.Fatal("dry run signalled the server")
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	freePort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	rep, err = Port(context.Background(), Target{Port: uint16(freePort)}, Options{})
	if err != nil || !rep.WasFree || !rep.Free {
		t.Fatalf("free port: %+v, %v", rep, err)
	}
}

func TestEvictForce(t *testing.T) {
	needSockets(t)
	stubborn, port := child(t, "stubborn")
	p, _ := strconv.Atoi(port)
	target := Target{Port: uint16(p), Proto: sockets.TCP}
	rep, err := Port(context.Background(), target, Options{Timeout: 300 * time.Millisecond})
	if err != nil || rep.Free {
		t.Fatalf("without --force: %+v, %v; want the port still held", rep, err)
	}
	rep, err = Port(context.Background(), target, Options{Timeout: 300 * time.Millisecond, Force: true})
	if err != nil || !rep.Free {
		t.Fatalf("with --force: %+v, %v; want the port free", rep, err)
	}
	if n := len(rep.Actions); n != 2 || rep.Actions[1].Signal != syscall.SIGKILL {
		t.Errorf("actions %+v: want TERM then KILL", rep.Actions)
	}
	if !exited(stubborn) {
		t.Error("stubborn child still running")
	}
}

func TestEvictRefusesSelf(t *testing.T) {
	needSockets(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rep, err := Port(context.Background(), Target{Port: uint16(l.Addr().(*net.TCPAddr).Port)}, Options{Timeout: 100 * time.Millisecond})
	var re *RefusedError
	if err != nil || rep.Free || len(rep.Actions) == 0 || !errors.As(rep.Actions[0].Err, &re) {
		t.Fatalf("%+v, %v: want a refusal and the port still held", rep, err)
	}
	if got, want := re.Error(), fmt.Sprintf("pid %d is portkit itself: portkit never signals it", os.Getpid()); got != want {
		t.Errorf("refusal %q, want %q", got, want)
	}
}

func TestRefusedError(t *testing.T) {
	for _, tt := range []struct {
		err  RefusedError
		want string
	}{
		{RefusedError{PID: 1, What: "init"}, "pid 1 is init: portkit never signals it"},
		{RefusedError{PID: 900, What: "a service manager (systemd, socket activation)", Advice: "stop the socket unit instead"},
			"pid 900 is a service manager (systemd, socket activation): portkit never signals it; stop the socket unit instead"},
	} {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestEvictRange: every holder of a range of ports is signalled, and the
// range is free afterwards; a port beside it is left alone. The range is
// two adjacent ports, so that no other process's listener is in it.
func TestEvictRange(t *testing.T) {
	needSockets(t)
	lo := adjacentFreePorts(t, 3)
	var servers []*exec.Cmd
	for i := range 3 {
		cmd, port := child(t, "server", "EVICT_PORT="+strconv.Itoa(lo+i))
		if port != strconv.Itoa(lo+i) {
			t.Fatalf("server on %s, want %d", port, lo+i)
		}
		servers = append(servers, cmd)
	}
	target := Target{Port: uint16(lo), PortEnd: uint16(lo + 1), Proto: sockets.TCP}
	if target.String() != fmt.Sprintf("%d-%d/tcp", lo, lo+1) {
		t.Errorf("target %q", target)
	}
	rep, err := Port(context.Background(), target, Options{DryRun: true})
	if err != nil || len(rep.Holders) != 2 {
		t.Skipf("range %v: holders %+v, %v; want our two servers alone", target, rep.Holders, err)
	}
	rep, err = Port(context.Background(), target, Options{Timeout: 5 * time.Second})
	if err != nil || !rep.Free || rep.WasFree {
		t.Fatalf("range %v: %+v, %v; want it freed", target, rep, err)
	}
	for _, s := range servers[:2] {
		if !exited(s) {
			t.Errorf("server %d still running", s.Process.Pid)
		}
	}
	if exited(servers[2]) {
		t.Error("the server beside the range was signalled")
	}
	if _, err := Port(context.Background(), Target{Port: 9, PortEnd: 8}, Options{DryRun: true}); !errors.Is(err, ErrBadRange) {
		t.Errorf("range 9-8: %v, want ErrBadRange", err)
	}
}

// adjacentFreePorts returns the first of n consecutive loopback TCP ports
// free now, trying a bounded number of times.
func adjacentFreePorts(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		first := l.Addr().(*net.TCPAddr).Port
		ls := []net.Listener{l}
		for i := 1; i < n; i++ {
			if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(first+i)); err == nil {
				ls = append(ls, l)
			}
		}
		for _, l := range ls {
			l.Close()
		}
		if len(ls) == n && first+n-1 <= 65535 {
			return first
		}
	}
	t.Skip("no run of free ports found")
	return 0
}

func TestSignalPIDReused(t *testing.T) {
	needSockets(t)
	server, _ := child(t, "server")
	var tb sockets.Table
	p, err := tb.Process(server.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	stale := p
	stale.StartTicks++ // as if the PID now named a process started later
	if err := sendSignal(&tb, stale, nil, syscall.SIGTERM); !errors.Is(err, ErrPIDReused) {
		t.Fatalf("sendSignal = %v, want ErrPIDReused", err)
	}
	// The start time matches, but the process holds none of the port's
	// sockets (as when the PID was reused while the listing went on).
	if err := sendSignal(&tb, p, []uint64{1}, syscall.SIGTERM); !errors.Is(err, ErrNotHolder) {
		t.Fatalf("sendSignal to a non-holder = %v, want ErrNotHolder", err)
	}
	time.Sleep(50 * time.Millisecond)
	if exited(server) {
		t.Fatal("a process that was not the holder was signalled")
	}
}

// TestEvictConnectedUDP: a UDP socket that was bound and then connected
// holds its port as much as an unconnected one, and is found.
func TestEvictConnectedUDP(t *testing.T) {
	needSockets(t)
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c, err := net.DialUDP("udp4", nil, peer.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	port := uint16(c.LocalAddr().(*net.UDPAddr).Port)
	rep, err := Port(context.Background(), Target{Port: port, Proto: sockets.UDP}, Options{DryRun: true})
	if err != nil || rep.WasFree || len(rep.Holders) != 1 || rep.Holders[0].PID != os.Getpid() {
		t.Fatalf("connected UDP socket on %d: %+v, %v; want this process as its holder", port, rep, err)
	}
}
