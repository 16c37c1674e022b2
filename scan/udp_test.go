package scan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// driveOpts bound drive.
type driveOpts struct {
	tries int           // attempts at an unanswered probe
	wait  time.Duration // for answers after each round
	limit time.Duration // the whole run
	paced bool          // keep to the engine's HostRate, as a Scanner would
}

// driveStats counts what drive did.
type driveStats struct {
	sent    int           // attempts
	sending time.Duration // spent in the rounds' sending, not their waits
}

// drive runs e over probes as a Scanner would, at its simplest: rounds
// that send each probe not yet answered, then wait for answers. It
// returns the first answer to each probe. It is bounded by o.tries rounds
// and by o.limit.
func drive(e Engine, probes []Probe, o driveOpts) (map[Probe]Reply, driveStats, error) {
	var st driveStats
	ctx, cancel := context.WithCancel(context.Background())
	replies := make(chan Reply, 4096)
	if err := e.Start(ctx, replies); err != nil {
		cancel()
		return nil, st, err
	}
	defer e.Close()
	defer cancel()
	flush := func() error {
		if f, ok := e.(Flusher); ok {
			return f.Flush()
		}
		return nil
	}
	got := make(map[Probe]Reply, len(probes))
	take := func(r Reply) {
		if _, dup := got[r.Probe]; !dup {
			got[r.Probe] = r
		}
	}
	drain := func() {
		for {
			select {
			case r := <-replies:
				take(r)
			default:
				return
			}
		}
	}
	end := time.Now().Add(o.limit)
	pacer, _ := e.(HostPacer)
	next := map[netip.Addr]time.Time{}
	for try := 1; try <= o.tries && len(got) < len(probes); try++ {
		var round []Probe
		t0 := time.Now()
		for _, p := range probes {
			if _, ok := got[p]; ok {
				continue
			}
			if o.paced && pacer != nil {
				if rate := pacer.HostRate(p.IP); rate > 0 {
					if err := flush(); err != nil {
						return got, st, err
					}
					for time.Now().Before(next[p.IP]) {
						time.Sleep(min(time.Until(next[p.IP]), 10*time.Millisecond))
						drain()
					}
					next[p.IP] = time.Now().Add(time.Duration(float64(time.Second) / rate))
				}
			}
			for {
				if time.Now().After(end) {
					return got, st, fmt.Errorf("drive: not done within %v", o.limit)
				}
				err := e.Send(p, try)
				if err == nil {
					break
				}
				if !errors.Is(err, ErrBusy) {
					return got, st, err
				}
				if err := flush(); err != nil {
					return got, st, err
				}
				time.Sleep(time.Millisecond)
				drain()
			}
			st.sent++
			round = append(round, p)
			drain()
		}
		if err := flush(); err != nil {
			return got, st, err
		}
		st.sending += time.Since(t0)
		timer := time.NewTimer(o.wait)
	wait:
		for len(got) < len(probes) {
			select {
			case r := <-replies:
				take(r)
			case <-timer.C:
				break wait
			}
		}
		timer.Stop()
		for _, p := range round {
			e.Done(p)
		}
	}
	drain()
	return got, st, nil
}

// probes lists (ip, port) for each port, of one protocol.
func probes(proto Proto, ips []netip.Addr, ports ...uint16) []Probe {
	var ps []Probe
	for _, ip := range ips {
		for _, port := range ports {
			ps = append(ps, Probe{IP: ip, Port: port, Proto: proto})
		}
	}
	return ps
}

// want is an expected answer: State 0 for none.
type want struct {
	state  State
	reason string
}

// checkAnswers compares got with want for every probe in want.
func checkAnswers(t *testing.T, got map[Probe]Reply, wants map[Probe]want) {
	t.Helper()
	for p, w := range wants {
		r, ok := got[p]
		switch {
		case w.state == 0 && ok:
			t.Errorf("%v %v:%d: answered %v %q, want silence", p.Proto, p.IP, p.Port, r.State, r.Reason)
		case w.state == 0:
		case !ok:
			t.Errorf("%v %v:%d: no answer, want %v %q", p.Proto, p.IP, p.Port, w.state, w.reason)
		case r.State != w.state || r.Reason != w.reason:
			t.Errorf("%v %v:%d: %v %q, want %v %q", p.Proto, p.IP, p.Port, r.State, r.Reason, w.state, w.reason)
		}
	}
}

// portSpan is n ports from first.
func portSpan(first, n uint16) []uint16 {
	ps := make([]uint16, n)
	for i := range ps {
		ps[i] = first + uint16(i)
	}
	return ps
}

// TestUDPSocketsLoopback scans loopback with the UDP engine in socket
// mode, which needs no privileges: an echo server is open, a port bound
// and let go closed (except on Windows, where Go hides ICMP errors from
// sockets), and the engine's bound is the open-file limit.
func TestUDPSocketsLoopback(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	echo, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go echoUDP(echo)
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, 0)))
	if err != nil {
		t.Fatal(err)
	}
	closed := uint16(c.LocalAddr().(*net.UDPAddr).Port)
	c.Close()
	open := uint16(echo.LocalAddr().(*net.UDPAddr).Port)

	var payloads []uint16
	e, err := NewUDP(UDPOptions{Mode: UDPSockets, Payload: func(port uint16) []byte {
		payloads = append(payloads, port)
		return []byte("probe")
	}})
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := drive(e, probes(UDP, []netip.Addr{lo}, open, closed), driveOpts{tries: 2, wait: 500 * time.Millisecond, limit: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	wants := map[Probe]want{{lo, open, UDP}: {Open, "udp-response"}, {lo, closed, UDP}: {Closed, "port-unreach"}}
	if runtime.GOOS == "windows" {
		wants[Probe{lo, closed, UDP}] = want{}
	}
	checkAnswers(t, got, wants)
	if r := got[Probe{lo, open, UDP}]; r.Attempt != 1 {
		t.Errorf("answer %+v, want attempt 1", r)
	}
	if len(payloads) == 0 {
		t.Error("the payload function was not asked")
	}
	if n, why := e.(Bounded).MaxInFlight(); n < 1 || why == "" {
		t.Errorf("MaxInFlight = %d, %q", n, why)
	}
}

// echoUDP sends each datagram c reads back to its sender, until c is
// closed.
func echoUDP(c *net.UDPConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		c.WriteToUDPAddrPort(buf[:n], from)
	}
}
