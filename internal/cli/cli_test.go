package cli

import (
	"bufio"
	"bytes"
	"cmp"
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

	"github.com/portkit/portkit/internal/testtool"
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
			ctx, stop := InterruptContext(context.Background())
			code := Main(ctx, os.Args[1:], OSStreams())
			stop()
			os.Exit(code)
		},
		"status":          statusMain,
		"portkit-holding": portkitHoldingMain,
	})
}

// statusMain runs `status N[,M...] CMD ARGS...`: CMD with its streams
// passed through, succeeding only if CMD exits with one of the codes.
// Scripts use it to pin exit codes, which testscript's `! exec` does not
// tell apart. Interrupts it gets are passed on to CMD.
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
	// An interrupt sent to status (a script's `kill -INT`) is meant for CMD.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	err := cmd.Start()
	if err == nil {
		go func() {
			for s := range sigs {
				cmd.Process.Signal(s)
			}
		}()
		err = cmd.Wait()
	}
	got := cmd.ProcessState.ExitCode()
	if !slices.Contains(want, got) {
		fmt.Fprintf(os.Stderr, "status: %s exited with %d (%v), want %v\n", os.Args[2], got, err, want)
		os.Exit(1)
	}
	os.Exit(0)
}

// portkitHoldingMain runs portkit as a process that itself listens on a
// loopback TCP port, each argument "PORT" replaced by that port: how a
// script makes portkit one of a port's holders.
func portkitHoldingMain() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "portkit-holding:", err)
		os.Exit(3)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	args := slices.Clone(os.Args[1:])
	for i, a := range args {
		if a == "PORT" {
			args[i] = port
		}
	}
	code := Main(context.Background(), args, OSStreams())
	l.Close()
	os.Exit(code)
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
			"hold":         cmdHold,
			"await-conn":   cmdAwaitConn,
			"blackhole":    cmdBlackhole,
			"prefork":      cmdPrefork,
			"serve-range":  cmdServeRange,
			"listen-on":    cmdListenOn,
			"serve-banner": cmdServeBanner,
		},
		Condition: func(cond string) (bool, error) {
			if cond == "root" {
				return os.Geteuid() == 0, nil
			}
			// A program or file from outside Go that the lines need:
			// missing, they are skipped, or under CI=true the script fails.
			if tool, ok := strings.CutPrefix(cond, "need:"); ok {
				return testtool.Have(tool, false)
			}
			if file, ok := strings.CutPrefix(cond, "need-file:"); ok {
				return testtool.Have(file, true)
			}
			if port, ok := strings.CutPrefix(cond, "port-free:"); ok {
				// Nothing holds it, TCP or UDP, on any address.
				l, err := net.Listen("tcp", ":"+port)
				if err != nil {
					return false, nil
				}
				l.Close()
				c, err := net.ListenPacket("udp", ":"+port)
				if err != nil {
					return false, nil
				}
				c.Close()
				return true, nil
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
		{&commandError{fmt.Errorf("scan: result: %w", &ioError{name: "--out x", err: os.ErrPermission})}, ExitIO},
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
		l, err := net.Listen("tcp", "127.0.0.1:"+cmp.Or(os.Getenv("PORTKIT_TEST_PORT"), "0"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 3
		}
		go acceptAll(l)
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	case "prefork":
		return preforkMain()
	case "worker":
		// A pre-forking server's worker: it accepts on the listener its
		// master passed it as descriptor 3.
		l, err := net.FileListener(os.NewFile(3, "listener"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 3
		}
		go acceptAll(l)
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

// preforkMain is a pre-forking server's master, as nginx and gunicorn run:
// it listens on 127.0.0.1:0, starts $PORTKIT_TEST_WORKERS workers that
// inherit the listener, and prints the port and the workers' pids.
func preforkMain() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "prefork:", err)
		return 3
	}
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		fmt.Fprintln(os.Stderr, "prefork:", err)
		return 3
	}
	n, _ := strconv.Atoi(os.Getenv("PORTKIT_TEST_WORKERS"))
	line := []string{strconv.Itoa(l.Addr().(*net.TCPAddr).Port)}
	for range min(n, 16) {
		w := exec.Command(os.Args[0])
		w.Env = append(os.Environ(), childEnv+"=worker")
		w.ExtraFiles = []*os.File{f}
		if err := w.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "prefork:", err)
			return 3
		}
		line = append(line, strconv.Itoa(w.Process.Pid))
	}
	f.Close()
	go acceptAll(l)
	fmt.Println(strings.Join(line, " "))
	time.Sleep(2 * time.Minute)
	return 0
}

// cmdPrefork: `prefork NAME N` starts a pre-forking server: a master
// listening on 127.0.0.1:0 and N workers it started, which inherit the
// listener. $NAME_PORT is the port, $NAME_PID the master's pid,
// $NAME_W1 … $NAME_WN the workers'.
func cmdPrefork(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: prefork NAME N")
	}
	cmd, line := startChild(ts, "prefork", "PORTKIT_TEST_WORKERS="+args[1])
	f := strings.Fields(line)
	if want, _ := strconv.Atoi(args[1]); len(f) != want+1 {
		ts.Fatalf("prefork printed %q, want a port and %s pids", line, args[1])
	}
	ts.Setenv(args[0]+"_PORT", f[0])
	ts.Setenv(args[0]+"_PID", strconv.Itoa(cmd.Process.Pid))
	for i, pid := range f[1:] {
		ts.Setenv(fmt.Sprintf("%s_W%d", args[0], i+1), pid)
		ts.Defer(func() {
			if n, err := strconv.Atoi(pid); err == nil {
				if p, err := os.FindProcess(n); err == nil {
					p.Kill() // every OS: the file is vetted for windows too
				}
			}
		})
	}
}

// cmdServeRange: `serve-range NAME N` starts N child processes listening on
// N consecutive loopback ports, free when asked for; $NAME_LO and $NAME_HI
// are the first and last port, $NAME_PID1 … $NAME_PIDN the children.
func cmdServeRange(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: serve-range NAME N")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	for range 50 {
		lo, ok := freeRun(n)
		if !ok {
			continue
		}
		var cmds []*exec.Cmd
		for i := range n {
			cmd, port := startChild(ts, "serve", "PORTKIT_TEST_PORT="+strconv.Itoa(lo+i))
			if port != strconv.Itoa(lo+i) {
				ts.Fatalf("child on port %s, want %d", port, lo+i)
			}
			cmds = append(cmds, cmd)
		}
		ts.Setenv(args[0]+"_LO", strconv.Itoa(lo))
		ts.Setenv(args[0]+"_HI", strconv.Itoa(lo+n-1))
		for i, c := range cmds {
			ts.Setenv(fmt.Sprintf("%s_PID%d", args[0], i+1), strconv.Itoa(c.Process.Pid))
		}
		return
	}
	ts.Fatalf("no %d consecutive free ports found", n)
}

// freeRun finds n consecutive loopback TCP ports free now.
func freeRun(n int) (int, bool) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, false
	}
	first := l.Addr().(*net.TCPAddr).Port
	ls := []net.Listener{l}
	for i := 1; i < n && first+i <= 65535; i++ {
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(first+i)); err == nil {
			ls = append(ls, l)
		}
	}
	for _, l := range ls {
		l.Close()
	}
	return first, len(ls) == n
}

// cmdListenOn: `listen-on PORT NAME` listens on 127.0.0.1:PORT in this
// process ($NAME_PORT, $NAME_PID); scripts check [port-free:PORT] first.
func cmdListenOn(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: listen-on PORT NAME")
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+args[0])
	ts.Check(err)
	ts.Defer(func() { l.Close() })
	go acceptAll(l)
	setAddr(ts, args[1], l.Addr())
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
