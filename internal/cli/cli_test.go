package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"portkit": func() { os.Exit(Main(context.Background(), os.Args[1:], OSStreams())) },
		"status":  statusMain,
	})
}

// statusMain runs `status N CMD ARGS...`: CMD with its streams passed
// through, succeeding only if CMD exits with code N. Scripts use it to pin
// exit codes, which testscript's `! exec` does not tell apart.
func statusMain() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: status CODE CMD [ARGS...]")
		os.Exit(2)
	}
	want, err := strconv.Atoi(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "status:", err)
		os.Exit(2)
	}
	cmd := exec.Command(os.Args[2], os.Args[3:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	got := cmd.ProcessState.ExitCode()
	if got != want {
		fmt.Fprintf(os.Stderr, "status: %s exited with %d (%v), want %d\n", os.Args[2], got, err, want)
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

// setAddr publishes a listener's address to the script as $NAME
// (127.0.0.1:port) and $NAME_PORT.
func setAddr(ts *testscript.TestScript, name string, addr net.Addr) {
	ts.Setenv(name, addr.String())
	ts.Setenv(name+"_PORT", strconv.Itoa(addr.(*net.TCPAddr).Port))
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
