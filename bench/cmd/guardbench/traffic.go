//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/portkit/portkit/bench/internal/scanplan"
	"github.com/portkit/portkit/guard"
	"golang.org/x/sys/unix"
)

func readPlan(file string) (*scanplan.Plan, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var p scanplan.Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("plan %s: %w", file, err)
	}
	if len(p.Ports) < 5 {
		return nil, fmt.Errorf("plan %s: %d open ports, want 5 at least", file, len(p.Ports))
	}
	return &p, nil
}

// request connects, sends an HTTP/1.0 request and reads until the server
// closes (the fixture accepts and closes).
func request(addr netip.AddrPort) error {
	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
	_, _ = io.Copy(io.Discard, c) // the fixture may reset after closing
	return nil
}

// benign is the traffic that must raise no alert: 1000 requests to one
// port, a client of 5 services, a monitor of 10 ports (5 open, 5 closed)
// every -monitor-every (10 s scaled down), a forwarder's churn of 300
// short connections over 2 ports.
func benign(args []string) error {
	fl := flag.NewFlagSet("benign", flag.ContinueOnError)
	planFile := fl.String("plan", "", "the fixture's plan `FILE`")
	every := fl.Duration("monitor-every", time.Second, "the monitor's `interval`")
	rounds := fl.Int("monitor-rounds", 10, "the monitor's `N` rounds")
	if err := fl.Parse(args); err != nil {
		return err
	}
	p, err := readPlan(*planFile)
	if err != nil {
		return err
	}
	open := func(i int) netip.AddrPort { return netip.AddrPortFrom(p.Host, p.Ports[i]) }
	for range 1000 {
		if err := request(open(0)); err != nil {
			return err
		}
	}
	for i := range 5 {
		if err := request(open(i)); err != nil {
			return err
		}
	}
	for r := range *rounds {
		for i := range 10 {
			if i < 5 {
				if err := request(open(i)); err != nil {
					return err
				}
			} else if request(netip.AddrPortFrom(p.Host, uint16(20100+i))) == nil {
				return fmt.Errorf("port %d answered: it should be closed", 20100+i)
			}
		}
		if r+1 < *rounds {
			time.Sleep(*every)
		}
	}
	for i := range 300 {
		if err := request(open(i % 2)); err != nil {
			return err
		}
	}
	return nil
}

// flood sends TCP SYNs to -target:-port from -sources distinct spoofed
// addresses of 198.18.1.0–198.19.255.255, each source in turn, until
// -count packets or -for, whichever first; it prints what it sent as JSON.
func flood(args []string) error {
	fl := flag.NewFlagSet("flood", flag.ContinueOnError)
	target := fl.String("target", "198.18.0.2", "`ADDR`")
	port := fl.Uint("port", 80, "destination `PORT`")
	count := fl.Int("count", 2_000_000, "at most `N` packets")
	dur := fl.Duration("for", 20*time.Second, "for at most this `duration`")
	sources := fl.Int("sources", 100_000, "`N` spoofed sources")
	if err := fl.Parse(args); err != nil {
		return err
	}
	dst, err := netip.ParseAddr(*target)
	if err != nil || !dst.Is4() {
		return fmt.Errorf("-target %q: not an IPv4 address", *target)
	}
	if *sources < 1 || *sources > 130816 {
		return fmt.Errorf("-sources %d: 1 to 130816 (198.18.1.0–198.19.255.255)", *sources)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	to := &unix.SockaddrInet4{Addr: dst.As4()}
	base := uint32(198)<<24 | 18<<16 | 1<<8 // 198.18.1.0
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Now()
	deadline := start.Add(*dur)
	sent := 0
	for sent < *count {
		if sent%1024 == 0 && time.Now().After(deadline) {
			break
		}
		a := base + uint32(sent%*sources)
		src := netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
		pk := guard.Packet{Flow: guard.Flow{Src: src, Dst: dst, SrcPort: uint16(1024 + rng.IntN(60000)), DstPort: uint16(*port), Proto: guard.TCP},
			Flags: guard.SYN, TTL: 64, Seq: rng.Uint32()}
		if err := unix.Sendto(fd, guard.Marshal(&pk), 0, to); err != nil {
			if errors.Is(err, unix.ENOBUFS) {
				continue
			}
			return err
		}
		sent++
	}
	el := time.Since(start)
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"sent": sent, "seconds": el.Seconds(), "pps": float64(sent) / el.Seconds()})
}

// metrics prints the Prometheus text at URL (run in the target namespace,
// where guard's metrics listen on loopback).
func metrics(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: guardbench metrics URL")
	}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(args[0])
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(os.Stdout, resp.Body)
	return err
}
