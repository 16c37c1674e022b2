// Command udpfixture is the target of the UDP scan benchmark (bench/scan.sh,
// section scan-udp): on one address it answers DNS queries on port 53,
// echoes datagrams on ports 7 and 777, and holds port 161 bound without
// ever answering (the kernel then sends no port unreachable: the port is
// silent). Every other UDP port of the address is closed.
//
//	udpfixture -host 198.18.0.2 [-silent 161] [-echo 7,777] [-dns 53] -ready FILE [-max-lifetime 30m]
//
// An empty -silent leaves no silent port. Once every socket is bound it
// writes FILE (the word "ready"); it holds the sockets until SIGTERM or
// SIGINT, or until -max-lifetime has passed, then removes FILE and exits.
//
// Exit codes: 0 stopped by a signal or by -max-lifetime, 1 failure, 2 bad
// usage.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const usage = `usage: udpfixture -host ADDR [-silent PORTS] [-echo PORTS] [-dns PORT] -ready FILE [-max-lifetime D]`

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

type config struct {
	host         netip.Addr
	silent, echo []uint16
	dns          uint16
	ready        string
	maxLifetime  time.Duration
}

func run(args []string, stderr io.Writer) int {
	c, err := parseArgs(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "udpfixture: %v\n%s\n", err, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, c.maxLifetime)
	defer cancel()
	if err := serve(ctx, c); err != nil {
		fmt.Fprintf(stderr, "udpfixture: %v\n", err)
		return 1
	}
	return 0
}

func parseArgs(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	var host, silent, echo string
	var dns uint
	fl := flag.NewFlagSet("udpfixture", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.StringVar(&host, "host", "", "the `ADDR` to serve on")
	fl.StringVar(&silent, "silent", "161", "`PORTS` bound and never answered (comma-separated; empty for none)")
	fl.StringVar(&echo, "echo", "7,777", "`PORTS` that echo every datagram")
	fl.UintVar(&dns, "dns", 53, "the `PORT` of the DNS responder (0 for none)")
	fl.StringVar(&c.ready, "ready", "", "`FILE` written once every socket is bound")
	fl.DurationVar(&c.maxLifetime, "max-lifetime", 30*time.Minute, "stop by itself after this `duration`")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, errors.New("bad flags")
	}
	var err error
	if c.host, err = netip.ParseAddr(host); err != nil {
		return nil, fmt.Errorf("-host %q: not an address", host)
	}
	if c.silent, err = portList("-silent", silent); err != nil {
		return nil, err
	}
	if c.echo, err = portList("-echo", echo); err != nil {
		return nil, err
	}
	switch {
	case fl.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q", fl.Arg(0))
	case dns > 65535:
		return nil, fmt.Errorf("-dns %d: not a port", dns)
	case c.ready == "":
		return nil, errors.New("-ready FILE is required")
	case c.maxLifetime <= 0:
		return nil, errors.New("-max-lifetime must be positive")
	}
	c.dns = uint16(dns)
	return c, nil
}

func portList(flagName, s string) ([]uint16, error) {
	var ports []uint16
	for w := range strings.SplitSeq(s, ",") {
		if w = strings.TrimSpace(w); w == "" {
			continue
		}
		p, err := strconv.ParseUint(w, 10, 16)
		if err != nil || p == 0 {
			return nil, fmt.Errorf("%s %q: %q is not a port", flagName, s, w)
		}
		ports = append(ports, uint16(p))
	}
	return ports, nil
}

func serve(ctx context.Context, c *config) error {
	var conns []*net.UDPConn
	defer func() {
		for _, conn := range conns {
			conn.Close()
		}
	}()
	listen := func(port uint16) (*net.UDPConn, error) {
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(c.host, port)))
		if err != nil {
			return nil, err
		}
		conns = append(conns, conn)
		return conn, nil
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, p := range c.silent {
		if _, err := listen(p); err != nil {
			return err
		}
	}
	for _, p := range c.echo {
		conn, err := listen(p)
		if err != nil {
			return err
		}
		wg.Go(func() { answer(conn, func(q []byte) []byte { return q }) })
	}
	if c.dns != 0 {
		conn, err := listen(c.dns)
		if err != nil {
			return err
		}
		wg.Go(func() { answer(conn, dnsAnswer) })
	}
	if err := writeReady(c.ready); err != nil {
		return err
	}
	defer os.Remove(c.ready)
	<-ctx.Done()
	for _, conn := range conns {
		conn.Close() // ends the answering goroutines
	}
	return nil
}

// answer sends reply(q) back for every datagram q that conn reads, until
// conn is closed; a nil reply sends nothing.
func answer(conn *net.UDPConn, reply func([]byte) []byte) {
	buf := make([]byte, 65536)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if out := reply(buf[:n]); out != nil {
			conn.WriteToUDPAddrPort(out, from)
		}
	}
}

// dnsAnswer answers a DNS query as a server with no data would: the query
// back, marked a response, "not implemented" unless it is a standard query,
// else "name error". Anything shorter than a DNS header gets no answer.
func dnsAnswer(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	out := append([]byte(nil), q...)
	flags := binary.BigEndian.Uint16(out[2:])
	rcode := uint16(3) // NXDOMAIN
	if (flags>>11)&0xf != 0 {
		rcode = 4 // NOTIMP
	}
	// QR, the query's opcode and RD, RA, the rcode.
	flags = 1<<15 | flags&(0xf<<11) | flags&(1<<8) | 1<<7 | rcode
	binary.BigEndian.PutUint16(out[2:], flags)
	return out
}

// writeReady writes the file whole: a temporary file, synced, renamed.
func writeReady(name string) error {
	tmp := name + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.WriteString("ready\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
