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

	// Go 1.23+ holds a pidfd per child, on top of the two pipes.
	if err := raiseNofile(uint64(cfg.procs) + 64); err != nil {
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
		exits    = make(chan exited, cfg.procs) // buffered: reapers never block
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
		c := exec.Command(exe, childArgs(cfg.conns, cfg.maxLifetime)...)
		c.Stdin, c.Stdout, c.Stderr = holdR, portW, stderr
		// One P per child: 400 Go runtimes on a 2-core machine need no more,
		// and each then starts fewer threads.
		c.Env = append(os.Environ(), "GOMAXPROCS=1")
		// A process group of its own keeps ctrl-C in a terminal from
		// killing children one by one: the parent gets it and stops them all.
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
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
	if err := writeFileAtomic(cfg.ready, []byte(formatPorts(got))); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "sockfixture: pid %d, %d listeners on 127.0.0.1 with %d connections each (%d TCP sockets) ready in %v\n",
		os.Getpid(), cfg.procs, cfg.conns, cfg.procs*(1+2*cfg.conns), time.Since(t0).Round(time.Millisecond))

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

// runChild listens, connects to itself, reports its port on stdout and holds
// everything until stdin reaches EOF. SIGTERM keeps its default action.
func runChild(conns int, lifetime time.Duration) error {
	// Go already raises the soft limit to the hard one at start-up; this
	// turns a hard limit that is too low into a clear error instead of a
	// failed accept.
	if err := raiseNofile(uint64(2*conns) + 32); err != nil {
		return err
	}
	// A backstop in case the parent is stuck rather than dead.
	time.AfterFunc(lifetime, func() { os.Exit(0) })

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
	if _, err := fmt.Fprintf(os.Stdout, "%d\n", ln.Addr().(*net.TCPAddr).Port); err != nil {
		return err
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
