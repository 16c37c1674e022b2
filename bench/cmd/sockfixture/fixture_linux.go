package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// exited is what a child's Wait reported.
type exited struct {
	pid int
	err error
}

// runParent starts the children, publishes their ports and holds them until
// told to stop. Whatever happens, every child is killed and reaped before it
// returns.
func runParent(cfg config, stderr io.Writer) error {
	// Pdeathsig fires when the thread that forked the child ends, not the
	// process. The Go runtime keeps its threads, but pinning the forking
	// goroutine to its thread for good makes that a guarantee.
	runtime.LockOSThread()

	// Go 1.23+ holds a pidfd per child, on top of the two pipes; the
	// parent holds the client ends of the busy child's connections.
	if err := raiseNofile(uint64(cfg.procs+cfg.busy) + 64); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	// A file left by a run killed outright must not announce this one.
	if err := os.Remove(cfg.ready); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	lifetime := time.NewTimer(cfg.maxLifetime)
	defer lifetime.Stop()

	// Two pipes shared by all children: they write their port to portW, each
	// line in one write(2) below PIPE_BUF and so never interleaved, and read
	// holdR until EOF, which comes when the parent closes holdW or dies.
	portR, portW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer portR.Close()
	holdR, holdW, err := os.Pipe()
	if err != nil {
		portW.Close()
		return err
	}

	var (
		children []*exec.Cmd
		exits    = make(chan exited, cfg.procs+1) // buffered: reapers never block
		reaped   int
	)
	defer func() {
		// Closing holdW lets children exit on their own; SIGKILL does not
		// wait for them to notice.
		holdW.Close()
		for _, c := range children {
			c.Process.Kill() // an error only means it is gone already
		}
		for ; reaped < len(children); reaped++ {
			<-exits
		}
		os.Remove(cfg.ready)
	}()

	t0 := time.Now()
	for range cfg.procs {
		if ctx.Err() != nil {
			break
		}
		c := childCmd(exe, childConfig{conns: cfg.conns, lifetime: cfg.maxLifetime}, holdR, portW, stderr)
		if err := c.Start(); err != nil {
			holdR.Close()
			portW.Close()
			return fmt.Errorf("starting child %d of %d: %w", len(children)+1, cfg.procs, err)
		}
		children = append(children, c)
		go func() { exits <- exited{c.Process.Pid, c.Wait()} }()
	}
	// Only the children hold these ends now, so portR reaches EOF once all
	// of them are gone.
	holdR.Close()
	portW.Close()

	ports := make(chan int)
	readErr := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(portR)
		for sc.Scan() {
			p, err := parsePortLine(sc.Text())
			if err != nil {
				readErr <- err
				return
			}
			ports <- p
		}
		readErr <- fmt.Errorf("children closed the port pipe: %v", sc.Err())
	}()

	var got []int
	for len(got) < cfg.procs {
		select {
		case p := <-ports:
			got = append(got, p)
		case err := <-readErr:
			return err
		case e := <-exits:
			reaped++
			return fmt.Errorf("child %d exited before it was ready: %v", e.pid, e.err)
		case <-ctx.Done():
			return errors.New("interrupted while setting up")
		case <-lifetime.C:
			return fmt.Errorf("not set up within -max-lifetime %v", cfg.maxLifetime)
		}
	}
	slices.Sort(got)
	if cfg.busy > 0 {
		var b busyChild
		defer b.close()
		err := b.start(ctx, exe, cfg, stderr)
		if c := b.cmd; c != nil {
			children = append(children, c)
			go func() { exits <- exited{c.Process.Pid, c.Wait()} }()
		}
		if err != nil {
			return err
		}
	}
	if err := writeFileAtomic(cfg.ready, []byte(formatPorts(got))); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "sockfixture: pid %d, %d listeners on 127.0.0.1 with %d connections each (%d TCP sockets)",
		os.Getpid(), cfg.procs, cfg.conns, cfg.procs*(1+2*cfg.conns))
	if len(children) > cfg.procs {
		fmt.Fprintf(stderr, ", and busy child %d with %d accepted connections (%d TCP sockets)",
			children[cfg.procs].Process.Pid, cfg.busy, 1+2*cfg.busy)
	}
	fmt.Fprintf(stderr, " ready in %v\n", time.Since(t0).Round(time.Millisecond))

	select {
	case <-ctx.Done():
		fmt.Fprintln(stderr, "sockfixture: stopping on signal")
		return nil
	case <-lifetime.C:
		fmt.Fprintf(stderr, "sockfixture: stopping after -max-lifetime %v\n", cfg.maxLifetime)
		return nil
	case e := <-exits:
		// The figures would no longer describe the advertised fixture.
		reaped++
		return fmt.Errorf("child %d exited while holding: %v", e.pid, e.err)
	}
}

// childCmd is a child's command, reading stdin and writing its port lines
// to stdout.
func childCmd(exe string, cc childConfig, stdin, stdout *os.File, stderr io.Writer) *exec.Cmd {
	c := exec.Command(exe, childArgs(cc)...)
	c.Stdin, c.Stdout, c.Stderr = stdin, stdout, stderr
	// One P per child: 400 Go runtimes on a 2-core machine need no more,
	// and each then starts fewer threads.
	c.Env = append(os.Environ(), "GOMAXPROCS=1")
	// A process group of its own keeps ctrl-C in a terminal from
	// killing children one by one: the parent gets it and stops them all.
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	return c
}

// busyChild is the busy child and what the parent holds of it.
type busyChild struct {
	cmd   *exec.Cmd  // set once started, even if start fails later: kill and reap it
	hold  *os.File   // the write end of its stdin, held until it is to exit
	conns []net.Conn // the client ends of its connections
}

// close closes what the parent holds; the caller kills and reaps cmd.
func (b *busyChild) close() {
	if b.hold != nil {
		b.hold.Close()
	}
	for _, c := range b.conns {
		c.Close()
	}
}

// start starts the busy child and dials its cfg.busy connections.
func (b *busyChild) start(ctx context.Context, exe string, cfg config, stderr io.Writer) error {
	// Pipes of its own: the shared ones are closed on this side already.
	portR, portW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer portR.Close()
	holdR, holdW, err := os.Pipe()
	if err != nil {
		portW.Close()
		return err
	}
	b.hold = holdW
	c := childCmd(exe, childConfig{accept: cfg.busy, lifetime: cfg.maxLifetime}, holdR, portW, stderr)
	err = c.Start()
	holdR.Close()
	portW.Close()
	if err != nil {
		return fmt.Errorf("starting the busy child: %w", err)
	}
	b.cmd = c
	// It writes its port once listening, and again once it has accepted
	// every connection.
	lines := bufio.NewScanner(portR)
	readPort := func() (int, error) {
		if !lines.Scan() {
			return 0, fmt.Errorf("the busy child closed its pipe: %v", lines.Err())
		}
		return parsePortLine(lines.Text())
	}
	port, err := readPort()
	if err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	d := net.Dialer{Timeout: 30 * time.Second, KeepAlive: -1}
	for range cfg.busy {
		if ctx.Err() != nil {
			return errors.New("interrupted while setting up")
		}
		conn, err := d.DialContext(ctx, "tcp4", addr)
		if err != nil {
			return fmt.Errorf("dialling the busy child: %w", err)
		}
		b.conns = append(b.conns, conn)
	}
	_, err = readPort()
	return err
}

// runChild listens, connects to itself, reports its port on stdout; with
// c.accept it then accepts as many connections more and reports its port
// again. It holds everything until stdin reaches EOF. SIGTERM keeps its
// default action.
func runChild(cc childConfig) error {
	conns := cc.conns
	// Go already raises the soft limit to the hard one at start-up; this
	// turns a hard limit that is too low into a clear error instead of a
	// failed accept.
	if err := raiseNofile(uint64(2*conns+cc.accept) + 32); err != nil {
		return err
	}
	// A backstop in case the parent is stuck rather than dead.
	time.AfterFunc(cc.lifetime, func() { os.Exit(0) })

	// No keepalives on either end: Go's default would send some 1,300
	// probes a second over 20,000 sockets while the benchmark is timing.
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	held := make([]net.Conn, 0, 2*conns)
	d := net.Dialer{Timeout: 30 * time.Second, KeepAlive: -1}
	// The backlog (somaxconn, 4096 by default) completes the handshakes
	// before any accept.
	for range conns {
		c, err := d.Dial("tcp4", ln.Addr().String())
		if err != nil {
			return err
		}
		held = append(held, c)
	}
	for range conns {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		held = append(held, c)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if _, err := fmt.Fprintf(os.Stdout, "%d\n", port); err != nil {
		return err
	}
	if cc.accept > 0 {
		for range cc.accept {
			c, err := ln.Accept()
			if err != nil {
				return err
			}
			held = append(held, c)
		}
		if _, err := fmt.Fprintf(os.Stdout, "%d\n", port); err != nil {
			return err
		}
	}
	_, err = io.Copy(io.Discard, os.Stdin)
	// The sockets' finalizers would close them once unreachable.
	runtime.KeepAlive(ln)
	runtime.KeepAlive(held)
	return err
}

// raiseNofile makes sure the soft RLIMIT_NOFILE is at least need, raising it
// to the hard limit if necessary.
func raiseNofile(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= need {
		return nil
	}
	if lim.Max < need {
		return fmt.Errorf("RLIMIT_NOFILE hard limit %d is below the %d file descriptors needed", lim.Max, need)
	}
	lim.Cur = lim.Max
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

// writeFileAtomic writes data to a temporary file beside name and renames it,
// so that whoever polls for name reads all of it or nothing.
func writeFileAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".sockfixture-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
