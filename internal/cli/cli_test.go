package cli

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	if kind := os.Getenv(childEnv); kind != "" {
		os.Exit(childMain(kind))
	}
	testscript.Main(m, map[string]func(){
		"portkit": func() {
			// $PORTKIT_TEST_UID runs it without root, as that uid.
			if uid := os.Getenv("PORTKIT_TEST_UID"); uid != "" {
				if err := dropTo(uid); err != nil {
					fmt.Fprintln(os.Stderr, "drop privileges:", err)
					os.Exit(3)
				}
			}
			// As cmd/portkit does: interrupts cancel the context.
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			code := Main(ctx, os.Args[1:], OSStreams())
			stop()
			os.Exit(code)
		},
		"status": statusMain,
	})
}

// statusMain runs `status N[,M...] CMD ARGS...`: CMD with its streams
// passed through, succeeding only if CMD exits with one of the codes.
// Scripts use it to pin exit codes, which testscript's `! exec` does not
// tell apart.
func statusMain() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: status CODE CMD [ARGS...]")
		os.Exit(2)
	}
	var want []int
	for _, c := range strings.Split(os.Args[1], ",") {
		n, err := strconv.Atoi(c)
		if err != nil {
			fmt.Fprintln(os.Stderr, "status:", err)
			os.Exit(2)
		}
		want = append(want, n)
	}
	cmd := exec.Command(os.Args[2], os.Args[3:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	got := cmd.ProcessState.ExitCode()
	if !slices.Contains(want, got) {
		fmt.Fprintf(os.Stderr, "status: %s exited with %d (%v), want %v\n", os.Args[2], got, err, want)
		os.Exit(1)
	}
	os.Exit(0)
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"listen":       cmdListen,
			"listen-after": cmdListenAfter,
			"closedport":   cmdClosedPort,
			"listen-udp":   cmdListenUDP,
			"listen6":      cmdListen6,
			"serve":        cmdServe,
			"client":       cmdClient,
			"alive":        cmdAlive,
			"echo-server":  cmdEchoServer,
			"roundtrip":    cmdRoundTrip,
			"expand":       cmdExpand,
		},
		Condition: func(cond string) (bool, error) {
			if cond == "root" {
				return os.Geteuid() == 0, nil
			}
			if cond != "ipv6" {
				return false, fmt.Errorf("unknown condition %q", cond)
			}
			l, err := net.Listen("tcp6", "[::1]:0")
			if err == nil {
				l.Close()
			}
			return err == nil, nil
		},
		Setup: func(env *testscript.Env) error {
			// Scripts see IANA's data alone unless they name an overlay.
			env.Setenv(servicesEnv, "")
			return nil
		},
	})
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{&exitError{code: 3}, ExitPartial},
		{&commandError{context.DeadlineExceeded}, ExitTimeout},
		{&commandError{context.Canceled}, ExitInterrupted},
		{&commandError{fmt.Errorf("x: %w", &exitError{code: 1})}, ExitNegative},
		{&commandError{os.ErrPermission}, ExitNegative},
		{fmt.Errorf("unknown flag: --x"), ExitUsage},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

// setAddr publishes a socket's address to the script as $NAME
// (127.0.0.1:port), $NAME_PORT, and $NAME_PID, the pid holding it.
func setAddr(ts *testscript.TestScript, name string, addr net.Addr) {
	ap := netip.MustParseAddrPort(addr.String())
	ts.Setenv(name, ap.String())
	ts.Setenv(name+"_PORT", strconv.Itoa(int(ap.Port())))
	ts.Setenv(name+"_PID", strconv.Itoa(os.Getpid()))
}

// cmdListenUDP: `listen-udp NAME` binds a UDP socket on 127.0.0.1:0.
func cmdListenUDP(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: listen-udp NAME")
	}
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	ts.Check(err)
	ts.Defer(func() { c.Close() })
	setAddr(ts, args[0], c.LocalAddr())
}

// cmdListen6: `listen6 NAME` listens on TCP [::1]:0; scripts check
// [ipv6] first.
func cmdListen6(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: listen6 NAME")
	}
	l, err := net.Listen("tcp6", "[::1]:0")
	ts.Check(err)
	ts.Defer(func() { l.Close() })
	go acceptAll(l)
	setAddr(ts, args[0], l.Addr())
}

// cmdListen: `listen NAME` opens a TCP listener on 127.0.0.1:0 that accepts
// and holds connections until the script ends.
func cmdListen(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: listen NAME")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	ts.Defer(func() { l.Close() })
	go acceptAll(l)
	setAddr(ts, args[0], l.Addr())
}

func acceptAll(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
	}
}

// cmdClosedPort: `closedport NAME` names a loopback port nothing listens on
// (one just closed), so connecting to it is refused.
func cmdClosedPort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: closedport NAME")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	setAddr(ts, args[0], l.Addr())
	ts.Check(l.Close())
}

// cmdListenAfter: `listen-after DURATION NAME` names a free loopback port
// now and starts listening on it after DURATION, for wait to see it appear.
func cmdListenAfter(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: listen-after DURATION NAME")
	}
	d, err := time.ParseDuration(args[0])
	ts.Check(err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	addr := l.Addr()
	ts.Check(l.Close())
	setAddr(ts, args[1], addr)
	stop := make(chan struct{})
	done := make(chan struct{})
	ts.Defer(func() { close(stop); <-done })
	go func() {
		defer close(done)
		select {
		case <-time.After(d):
		case <-stop:
			return
		}
		l, err := net.Listen("tcp", addr.String())
		if err != nil {
			return // the script's wait then fails and says why
		}
		go acceptAll(l)
		<-stop
		l.Close()
	}()
}

// childEnv makes the test binary one of the child processes below, for
// scripts and tests that need a socket held by another process.
const childEnv = "PORTKIT_TEST_CHILD"

// childMain: "serve" listens on 127.0.0.1:0 and prints its port; "client"
// connects to $PORTKIT_TEST_ADDR and prints "connected"; "portkit" runs
// portkit with the arguments after the program name. With
// $PORTKIT_TEST_UID each first drops root for that uid (and gid).
func childMain(kind string) int {
	if uid := os.Getenv("PORTKIT_TEST_UID"); uid != "" {
		if err := dropTo(uid); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 3
		}
	}
	switch kind {
	case "serve":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 3
		}
		go acceptAll(l)
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	case "client":
		c, err := net.Dial("tcp", os.Getenv("PORTKIT_TEST_ADDR"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 3
		}
		defer c.Close()
		fmt.Println("connected")
	case "portkit":
		return Main(context.Background(), os.Args[1:], OSStreams())
	default:
		return 3
	}
	// Held until killed, or until the test binary's run is long over.
	time.Sleep(2 * time.Minute)
	return 0
}

// startChild starts the test binary as a child of kind and returns it
// with the first line it prints.
func startChild(ts *testscript.TestScript, kind string, env ...string) (*exec.Cmd, string) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), append(env, childEnv+"="+kind)...)
	out, err := cmd.StdoutPipe()
	ts.Check(err)
	ts.Check(cmd.Start())
	ts.Defer(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		ts.Fatalf("%s child: %v", kind, err)
	}
	return cmd, strings.TrimSpace(line)
}

// cmdServe: `serve NAME` starts a child process listening on 127.0.0.1:0;
// $NAME, $NAME_PORT and $NAME_PID name it.
func cmdServe(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: serve NAME")
	}
	cmd, port := startChild(ts, "serve")
	ts.Setenv(args[0], "127.0.0.1:"+port)
	ts.Setenv(args[0]+"_PORT", port)
	ts.Setenv(args[0]+"_PID", strconv.Itoa(cmd.Process.Pid))
}

// cmdClient: `client NAME ADDR` starts a child process connected to ADDR;
// $NAME_PID names it.
func cmdClient(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: client NAME ADDR")
	}
	cmd, _ := startChild(ts, "client", "PORTKIT_TEST_ADDR="+args[1])
	ts.Setenv(args[0]+"_PID", strconv.Itoa(cmd.Process.Pid))
}

// cmdAlive: `alive PID` succeeds while PID runs (a zombie is not running).
func cmdAlive(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: alive PID")
	}
	stat, err := os.ReadFile("/proc/" + args[0] + "/stat")
	alive := err == nil && !strings.HasPrefix(strings.TrimSpace(string(stat[bytes.LastIndexByte(stat, ')')+1:])), "Z")
	if alive == neg {
		ts.Fatalf("pid %s alive: %v", args[0], alive)
	}
}

// cmdEchoServer: `echo-server NAME` echoes TCP connections on 127.0.0.1:0
// until each client half-closes.
func cmdEchoServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: echo-server NAME")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	ts.Defer(func() { l.Close() })
	go echoAll(l)
	setAddr(ts, args[0], l.Addr())
}

// echoAll echoes every connection l accepts until its client half-closes.
func echoAll(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			io.Copy(c, c)
		}()
	}
}

// cmdRoundTrip: `roundtrip ADDR SEND WANT` connects, sends SEND, half-closes
// and checks that exactly WANT comes back; `! roundtrip ADDR SEND` checks
// that nothing does.
func cmdRoundTrip(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 && !(neg && len(args) == 2) {
		ts.Fatalf("usage: roundtrip ADDR SEND WANT")
	}
	c, err := net.DialTimeout("tcp", args[0], 10*time.Second)
	ts.Check(err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = io.WriteString(c, args[1])
	ts.Check(err)
	c.(*net.TCPConn).CloseWrite()
	got, _ := io.ReadAll(c)
	switch {
	case neg && len(got) > 0:
		ts.Fatalf("got %q, want nothing", got)
	case !neg && string(got) != args[2]:
		ts.Fatalf("got %q, want %q", got, args[2])
	}
}

// cmdExpand: `expand FILE` replaces $VAR and ${VAR} in FILE with the
// script's variables, for files that must name the script's ports.
func cmdExpand(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: expand FILE")
	}
	path := ts.MkAbs(args[0])
	b, err := os.ReadFile(path)
	ts.Check(err)
	ts.Check(os.WriteFile(path, []byte(os.Expand(string(b), ts.Getenv)), 0o644))
}
