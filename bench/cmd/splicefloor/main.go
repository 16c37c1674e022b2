//go:build linux

// Command splicefloor is the floor of a TCP forwarder on Linux, for the
// forward benchmark: not a forwarder anyone should run. Each accepted
// connection is relayed to the target by two blocking splice(2) loops
// through a 1 MiB pipe, one per direction, on blocking sockets: no poller,
// no scheduler, no timeouts, no accounting, no half-close care. What it
// costs is the kernel's share of moving the bytes through a second TCP
// connection, which no forwarder avoids.
//
// With -poller it is the floor for short connections instead: Go's own
// accept, dial and io.Copy both ways (splice(2) through the runtime's pipe
// pool, waiting in the poller), and nothing else. Blocking sockets cost a
// thread switch at every wait, which a stream of bulk data pays rarely and
// a short connection pays at each of its few reads: there they cost more
// than the poller (231 µs of CPU per connection against portkit's 181 µs
// when this was measured), so they are no floor.
//
//	splicefloor -listen 127.0.0.1:9004 -target 127.0.0.1:5201
//	splicefloor -poller -listen 127.0.0.1:9014 -target 127.0.0.1:8080
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9004", "address to accept on")
	target := flag.String("target", "127.0.0.1:5201", "address to relay to")
	lifetime := flag.Duration("max-lifetime", 30*time.Minute, "exit after this long whatever happens")
	poller := flag.Bool("poller", false, "relay through Go's poller (net and io.Copy) rather than blocking splice loops")
	flag.Parse()
	// run returns only when it fails; its lifetime timer ends it otherwise.
	var err error
	if *poller {
		err = runPoller(*listen, *target, *lifetime)
	} else {
		err = run(*listen, *target, *lifetime)
	}
	fmt.Fprintln(os.Stderr, "splicefloor:", err)
	os.Exit(1)
}

func run(listen, target string, lifetime time.Duration) error {
	la, err := netip.ParseAddrPort(listen)
	if err != nil {
		return err
	}
	ta, err := netip.ParseAddrPort(target)
	if err != nil {
		return err
	}
	if !la.Addr().Is4() || !ta.Addr().Is4() {
		return fmt.Errorf("IPv4 addresses only")
	}
	time.AfterFunc(lifetime, func() { os.Exit(3) })
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	unix.SetsockoptInt(ln, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(ln, sockaddr(la)); err != nil {
		return err
	}
	if err := unix.Listen(ln, 4096); err != nil {
		return err
	}
	for {
		c, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		go relay(c, ta)
	}
}

func sockaddr(a netip.AddrPort) *unix.SockaddrInet4 {
	return &unix.SockaddrInet4{Port: int(a.Port()), Addr: a.Addr().As4()}
}

func relay(client int, ta netip.AddrPort) {
	defer unix.Close(client)
	t, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(t)
	if err := unix.Connect(t, sockaddr(ta)); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		pump(t, client)
		unix.Shutdown(client, unix.SHUT_RD)
		close(done)
	}()
	pump(client, t)
	unix.Shutdown(t, unix.SHUT_RDWR)
	<-done
}

// pump splices src to dst until EOF or an error, then half-closes dst.
func pump(dst, src int) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	unix.FcntlInt(uintptr(p[0]), unix.F_SETPIPE_SZ, 1<<20)
	// No SPLICE_F_MORE: it sends with MSG_MORE, which holds a short
	// request or response back in the socket for up to 200 ms waiting
	// for more, as TCP_CORK does; Go's splice does not set it either.
	const flags = unix.SPLICE_F_MOVE
	for {
		n, err := unix.Splice(src, nil, p[1], nil, 1<<20, flags)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n == 0 {
			break
		}
		for n > 0 {
			m, err := unix.Splice(p[0], nil, dst, nil, int(n), flags)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				return
			}
			n -= m
		}
	}
	unix.Shutdown(dst, unix.SHUT_WR)
}

// runPoller accepts with Go's net package and relays each connection with
// io.Copy both ways, which splices between the two *net.TCPConn.
func runPoller(listen, target string, lifetime time.Duration) error {
	time.AfterFunc(lifetime, func() { os.Exit(3) })
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go relayPoller(c.(*net.TCPConn), target)
	}
}

func relayPoller(client *net.TCPConn, target string) {
	defer client.Close()
	c, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	t := c.(*net.TCPConn)
	defer t.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(client, t)
		client.CloseWrite()
		close(done)
	}()
	io.Copy(t, client)
	t.CloseWrite()
	<-done
}
