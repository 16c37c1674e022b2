// Command fwdtarget is the backend of the forwarding benchmark
// (bench/forward.sh): the servers that bench/cmd/fwdbench's load reaches,
// directly or through a forwarder.
//
//	fwdtarget [-http ADDR] [-echo ADDR] [-udp-echo ADDR] [-ready FILE] [-max-lifetime D]
//
// -http is a minimal HTTP/1.0 server for connection churn: it reads one
// request up to the blank line, writes a fixed 200 response and closes the
// connection, as an HTTP/1.0 server without keep-alive does; every
// connection is bounded by a 10 s deadline. -echo is a TCP echo server with
// a small buffer per connection, for holding thousands of idle connections
// open. -udp-echo is a UDP echo server: each datagram goes back to its
// sender.
//
// Once every server listens, "ready" is written to FILE (atomically). The
// servers run until SIGTERM or SIGINT, or until -max-lifetime has passed.
//
// Exit codes: 0 stopped by a signal or by -max-lifetime, 1 failure, 2 bad
// usage.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

const usage = `usage: fwdtarget [-http ADDR] [-echo ADDR] [-udp-echo ADDR] [-ready FILE] [-max-lifetime D]`

// Response is what the HTTP server answers to every request.
const Response = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\nhello, world\n"

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	fl := flag.NewFlagSet("fwdtarget", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fl.PrintDefaults()
	}
	httpAddr := fl.String("http", "", "`ADDR` of the HTTP/1.0 server")
	echoAddr := fl.String("echo", "", "`ADDR` of the TCP echo server")
	udpAddr := fl.String("udp-echo", "", "`ADDR` of the UDP echo server")
	ready := fl.String("ready", "", "`FILE` to write once every server listens")
	lifetime := fl.Duration("max-lifetime", 30*time.Minute, "stop by itself after this `duration`")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fl.NArg() > 0 || (*httpAddr == "" && *echoAddr == "" && *udpAddr == "") || *lifetime <= 0 {
		fmt.Fprintf(stderr, "fwdtarget: give at least one server address and a positive -max-lifetime\n%s\n", usage)
		return 2
	}

	errc := make(chan error, 3)
	if *httpAddr != "" {
		ln, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			fmt.Fprintf(stderr, "fwdtarget: %v\n", err)
			return 1
		}
		go func() { errc <- serveTCP(ln, serveHTTP) }()
	}
	if *echoAddr != "" {
		ln, err := net.Listen("tcp", *echoAddr)
		if err != nil {
			fmt.Fprintf(stderr, "fwdtarget: %v\n", err)
			return 1
		}
		go func() { errc <- serveTCP(ln, serveEcho) }()
	}
	if *udpAddr != "" {
		pc, err := net.ListenPacket("udp", *udpAddr)
		if err != nil {
			fmt.Fprintf(stderr, "fwdtarget: %v\n", err)
			return 1
		}
		if uc, ok := pc.(*net.UDPConn); ok {
			// Best effort: a larger buffer absorbs bursts of a window of
			// datagrams; the kernel caps it at net.core.rmem_max.
			_ = uc.SetReadBuffer(4 << 20)
			_ = uc.SetWriteBuffer(4 << 20)
		}
		// Two readers on one socket: one core's worth of echo is not
		// always enough for the direct path.
		for range 2 {
			go func() { errc <- serveUDP(pc) }()
		}
	}
	if *ready != "" {
		if err := writeAtomic(*ready, "ready\n"); err != nil {
			fmt.Fprintf(stderr, "fwdtarget: %v\n", err)
			return 1
		}
		defer os.Remove(*ready)
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	select {
	case <-sig:
		return 0
	case <-time.After(*lifetime):
		return 0
	case err := <-errc:
		fmt.Fprintf(stderr, "fwdtarget: %v\n", err)
		return 1
	}
}

// serveTCP accepts until the listener fails, one goroutine per connection.
func serveTCP(ln net.Listener, handle func(net.Conn)) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// EMFILE and the like: back off rather than spin or die; the
			// load tool reports the connections that fail.
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		go handle(c)
	}
}

// serveHTTP answers one HTTP/1.0 request and closes: the server closes
// first, as HTTP/1.0 without keep-alive does.
func serveHTTP(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var buf [2048]byte
	n := 0
	for {
		m, err := c.Read(buf[n:])
		n += m
		if bytes.Contains(buf[:n], []byte("\r\n\r\n")) {
			break
		}
		if err != nil || n == len(buf) {
			return
		}
	}
	_, _ = io.WriteString(c, Response)
}

// serveEcho writes back whatever it reads until EOF, then closes. The
// buffer is small on purpose: thousands of these sit idle at once.
func serveEcho(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 512)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// serveUDP echoes every datagram to its sender.
func serveUDP(pc net.PacketConn) error {
	buf := make([]byte, 64<<10)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			return err
		}
		// A full socket buffer drops the reply, which the load tool counts
		// as lost: the same for every path.
		_, _ = pc.WriteTo(buf[:n], addr)
	}
}

// writeAtomic writes content to a temporary file beside name and renames
// it, so that a reader never sees a partial file.
func writeAtomic(name, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".fwdtarget-*")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), name)
}
