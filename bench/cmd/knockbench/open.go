package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portkit/portkit/bench/internal/benchmd"
)

// How the port is polled once the client has sent: a connect attempt is
// started every pollEvery, each given attemptTimeout (a dropped SYN is never
// answered), at most pollInFlight at once, so that an opening is seen within
// about pollEvery of happening rather than within a whole attempt.
const (
	pollEvery      = time.Millisecond
	attemptTimeout = 5 * time.Millisecond
	pollInFlight   = 8
	// closedCheck is how long the connect that makes sure the port is
	// closed before a trial waits for an answer it must not get.
	closedCheck = 50 * time.Millisecond
)

// scenario is one server with one client.
type scenario struct {
	name   string
	srv    *server
	spa    bool   // an SPA packet, else a knock sequence
	client string // how the client is run, for the report
	lat    []time.Duration
	missed int // trials where the port did not open within the limit
	tries  int // connect attempts, all trials
}

func openMode(ctx context.Context, c *config) (*benchmd.Section, error) {
	// Made first, so that its header has the load average of the start.
	s := benchmd.New("knock open latency: portkit knockd vs fwknopd (SPA) and knockd (sequence)", "")
	f, err := startFixture(ctx, c)
	if err != nil {
		return nil, err
	}
	defer f.stop()
	sc := []*scenario{
		{name: "portkit knockd, SPA", srv: f.portkit, spa: true},
		{name: "fwknopd, SPA", srv: f.fwknopd, spa: true},
		{name: "portkit knockd, sequence", srv: f.portkit},
		{name: "knockd, sequence", srv: f.knockd},
	}
	for _, s := range sc {
		if s.spa {
			s.client = c.shown(f.fwknopArgv(s.srv.link.server, s.srv.link.client, "FILE")) + ", then FILE's text sent by knockbench in one UDP datagram to port 62201"
			s.client = strings.ReplaceAll(strings.ReplaceAll(s.client, f.keys.EncryptionBase64(), "KEY"), f.keys.HMACBase64(), "HMAC_KEY")
		} else {
			s.client = c.shown(append([]string{f.knock, s.srv.link.server.String()}, knockSequence...))
		}
	}
	start := time.Now()
	for r := range c.trials {
		for _, i := range benchmd.Rotated(len(sc), r) {
			if err := f.trial(ctx, sc[i]); err != nil {
				return nil, fmt.Errorf("%s, trial %d: %w", sc[i].name, r+1, err)
			}
		}
	}
	openReport(s, c, f, sc, time.Since(start))
	return s, nil
}

// trial closes the port, makes sure it is closed, has the client ask for
// it, and times the first connect that gets through.
func (f *fixture) trial(ctx context.Context, s *scenario) error {
	if err := f.resetServer(ctx, s.srv); err != nil {
		return err
	}
	addr := s.srv.protected()
	if c, err := (&net.Dialer{Timeout: closedCheck}).DialContext(ctx, "tcp", addr); err == nil {
		c.Close()
		return fmt.Errorf("%s took a connect before the client asked: the opening of the trial before was not removed", addr)
	} else if ctx.Err() != nil {
		return ctx.Err()
	}
	var (
		d     time.Duration
		tries int
		err   error
	)
	if s.spa {
		pkt, perr := f.spaPacket(ctx, s.srv.link.server, s.srv.link.client)
		if perr != nil {
			return perr
		}
		conn, derr := net.ListenUDP("udp4", nil) // unconnected, as in the flood
		if derr != nil {
			return derr
		}
		t0 := time.Now()
		_, werr := conn.WriteToUDPAddrPort(pkt, netip.AddrPortFrom(s.srv.link.server, spaPort))
		if werr == nil {
			d, tries, err = poll(ctx, addr, t0, f.c.limit)
		}
		conn.Close()
		if werr != nil {
			return werr
		}
	} else {
		cmd := exec.CommandContext(ctx, f.knock, append([]string{s.srv.link.server.String()}, knockSequence...)...)
		t0 := time.Now()
		if serr := cmd.Start(); serr != nil {
			return serr
		}
		d, tries, err = poll(ctx, addr, t0, f.c.limit)
		if werr := cmd.Wait(); werr != nil && ctx.Err() == nil {
			return fmt.Errorf("knock: %w", werr)
		}
	}
	s.tries += tries
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, errNotOpened):
		s.missed++
		return nil
	case err != nil:
		return err
	}
	s.lat = append(s.lat, d)
	return nil
}

var errNotOpened = errors.New("the port did not open")

// poll dials addr until a connect gets through, within limit of start, and
// returns the time from start to that connect and the attempts made. Every
// attempt has ended when it returns, so none reaches into the next trial.
func poll(ctx context.Context, addr string, start time.Time, limit time.Duration) (time.Duration, int, error) {
	pctx, cancel := context.WithDeadline(ctx, start.Add(limit))
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		first    time.Time
		tries    int
		inFlight = make(chan struct{}, pollInFlight)
		done     = make(chan struct{})
		once     sync.Once
	)
	dialer := &net.Dialer{Timeout: attemptTimeout}
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
loop:
	for {
		select {
		case <-pctx.Done():
			break loop
		case <-done:
			break loop
		case inFlight <- struct{}{}:
			tries++
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-inFlight }()
				c, err := dialer.DialContext(pctx, "tcp", addr)
				if err != nil {
					return
				}
				at := time.Now()
				c.Close()
				mu.Lock()
				if first.IsZero() || at.Before(first) {
					first = at
				}
				mu.Unlock()
				once.Do(func() { close(done) })
			}()
			// The next attempt starts a tick later at the earliest.
			select {
			case <-tick.C:
			case <-pctx.Done():
			case <-done:
			}
		}
	}
	cancel()
	wg.Wait()
	if !first.IsZero() {
		return first.Sub(start), tries, nil
	}
	if ctx.Err() != nil {
		return 0, tries, ctx.Err()
	}
	return 0, tries, fmt.Errorf("%w within %v", errNotOpened, limit)
}

// latencyStats are the figures of one scenario's latencies.
type latencyStats struct {
	n                             int
	min, p50, p90, p99, max, mean time.Duration
}

func statsOf(lat []time.Duration) latencyStats {
	s := slices.Clone(lat)
	slices.Sort(s)
	st := latencyStats{n: len(s)}
	if len(s) == 0 {
		return st
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	st.min, st.max, st.mean = s[0], s[len(s)-1], sum/time.Duration(len(s))
	st.p50, st.p90, st.p99 = benchmd.Percentile(s, 50), benchmd.Percentile(s, 90), benchmd.Percentile(s, 99)
	return st
}

func openReport(s *benchmd.Section, c *config, f *fixture, sc []*scenario, took time.Duration) {
	s.Setup = fmt.Sprintf("%d trials per server and client, order rotated each round, %s in all", c.trials, benchmd.Dur(took.Round(time.Second)))
	s.Notes = append(s.Notes, fmt.Sprintf("Each trial: the server's opening from the trial before is removed (%s), a %v connect makes sure the port is closed, "+
		"then the client asks and knockbench, in the client's namespace, polls 198.18.N.2:%d: a connect attempt every %v, each given %v, at most %d at once, "+
		"until one gets through (at most %v). The latency runs from the client's send to that connect. "+
		"SPA: the stock fwknop client builds the packet beforehand (`-T -B FILE`: built, saved, not sent) and knockbench sends it, so the clock starts at the send itself; "+
		"the same client and packet format for both servers. Sequences: the stock `knock` client for both servers, the clock started just before it is "+
		"started, so its start-up (about a millisecond) counts on both sides.",
		resets(f), closedCheck, protectedPort, pollEvery, attemptTimeout, pollInFlight, c.limit))
	s.Notes = append(s.Notes, "Servers, each in its own namespace with the same keys and the same listener on the port: "+
		c.shown(f.portkit.argv)+" (port protected with `portkit firewall protect 2222/tcp`; SPA and the sequence from one config); "+
		c.shown(f.fwknopd.argv)+" (fwknopd's defaults but the interface: libpcap, `PCAP_LOOP_SLEEP` 100 ms, "+
		"iptables-nft; its jump to `FWKNOP_INPUT` comes before `-A INPUT -p tcp --dport 2222 -m conntrack --ctstate NEW -j DROP`); "+
		c.shown(f.knockd.argv)+" (`start_command = nft add rule inet kbknockd allow ip saddr %IP% tcp dport 2222 accept`, "+
		"a chain jumped to before `tcp dport 2222 drop`).")
	t := &benchmd.Table{Head: []string{"server", "client", "opened", "min", "p50", "mean", "p90", "p99", "max", "connect attempts"}, Align: []string{"", "---"}}
	stats := map[string]latencyStats{}
	for _, x := range sc {
		st := statsOf(x.lat)
		stats[x.name] = st
		opened := fmt.Sprintf("%d/%d", len(x.lat), len(x.lat)+x.missed)
		if st.n == 0 {
			t.Row(x.name, x.client, opened, "–", "–", "–", "–", "–", "–", benchmd.Count(int64(x.tries)))
			continue
		}
		t.Row(x.name, x.client, opened, benchmd.Dur(st.min), benchmd.Dur(st.p50), benchmd.Dur(st.mean), benchmd.Dur(st.p90),
			benchmd.Dur(st.p99), benchmd.Dur(st.max), benchmd.Count(int64(x.tries)))
	}
	s.Tables = append(s.Tables, t.String())
	s.Tables = append(s.Tables, everyTrial(sc))
	target := func(a, b *scenario) {
		sa, sb := stats[a.name], stats[b.name]
		ok := a.missed == 0 && sa.n > 0 && sb.n > 0 && sa.p99*5 <= sb.p99
		detail := "no latencies"
		if sa.n > 0 && sb.n > 0 {
			detail = fmt.Sprintf("%s vs %s, ratio %.3f", benchmd.Dur(sa.p99), benchmd.Dur(sb.p99), float64(sa.p99)/float64(sb.p99))
		}
		s.AddTarget(ok, fmt.Sprintf("%s p99 ≤ 1/5 of %s p99, every trial opened", a.name, b.name), detail)
	}
	target(sc[0], sc[1])
	target(sc[2], sc[3])
}

func resets(f *fixture) string {
	var parts []string
	for _, s := range f.servers() {
		parts = append(parts, fmt.Sprintf("%s: %s", s.name, f.c.shown(s.reset)))
	}
	return strings.Join(parts, "; ")
}

// everyTrial lists every latency in the order taken, for judging the noise.
func everyTrial(sc []*scenario) string {
	var b strings.Builder
	b.WriteString("Every latency in the order taken, ms:\n\n")
	for _, x := range sc {
		var ms []string
		for _, d := range x.lat {
			ms = append(ms, fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)))
		}
		fmt.Fprintf(&b, "- %s: %s\n", x.name, strings.Join(ms, " "))
	}
	return b.String()
}
