package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portkit/portkit/bench/harness"
	"github.com/portkit/portkit/bench/internal/benchmd"
	"github.com/portkit/portkit/bench/internal/proc"
)

const (
	rssEvery = 100 * time.Millisecond // how often RSS is sampled
	// countWithin bounds the wait, once the flood is over, for the servers
	// to have opened for every valid packet they will open for.
	countWithin = 10 * time.Second
)

// The flood's streams, sent in turn: junk UDP to each SPA server's port,
// junk SYNs to each sequence server's knock ports (7000 and 9000 in turn).
const (
	udpToPortkit = iota
	udpToFwknopd
	synToPortkit
	synToKnockd
	nStreams
)

type floodResult struct {
	sent  [nStreams]int64
	errs  int64 // sends refused by the kernel (a full queue)
	took  time.Duration
	limit string // what ended it: "time" or "count"
}

func (r floodResult) total() int64 {
	var n int64
	for _, s := range r.sent {
		n += s
	}
	return n
}

// flood sends junk from one goroutine on one thread as fast as it goes,
// until deadline or max packets.
func flood(ctx context.Context, deadline time.Time, max int) (floodResult, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s, err := newRawSender()
	if err != nil {
		return floodResult{}, err
	}
	defer s.close()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x6b6e6f636b))
	payloads, sums := junkPayloads(r, 256)
	buf := make([]byte, 2048)
	var res floodResult
	start := time.Now()
	res.limit = "count"
	for n := range max {
		if n&255 == 0 && (ctx.Err() != nil || time.Now().After(deadline)) {
			res.limit = "time"
			break
		}
		k := n % nStreams
		src := junkSource(r)
		sport := uint16(1024 + r.IntN(65536-1024))
		var (
			pkt []byte
			dst [4]byte
		)
		switch k {
		case udpToPortkit, udpToFwknopd:
			dst = portkitLink.server.As4()
			if k == udpToFwknopd {
				dst = fwknopdLink.server.As4()
			}
			j := r.IntN(len(payloads))
			pkt = udpPacket(buf, src, dst, sport, spaPort, uint16(n), payloads[j], sums[j])
		default:
			dst = portkitLink.server.As4()
			if k == synToKnockd {
				dst = knockdLink.server.As4()
			}
			port := uint16(7000)
			if (n/nStreams)%2 == 1 {
				port = 9000
			}
			pkt = synPacket(buf, src, dst, sport, port, uint16(n), r.Uint32())
		}
		if err := s.send(pkt, dst); err != nil {
			res.errs++
			continue
		}
		res.sent[k]++
	}
	res.took = time.Since(start)
	return res, nil
}

// daemonUse is what a daemon used during the flood.
type daemonUse struct {
	srv       *server
	cpuBefore time.Duration
	cpu       time.Duration // during the flood
	rss       []rssSample   // every rssEvery from before the flood to its end
	rssAfter  int64         // once the valid packets were counted
	opened    int           // valid packets that opened (SPA servers)
	err       error
}

func floodMode(ctx context.Context, c *config) (*benchmd.Section, error) {
	// Made first, so that its header has the load average of the start.
	sec := benchmd.New("knock junk flood: portkit knockd, fwknopd and knockd under the same flood", "")
	f, err := startFixture(ctx, c)
	if err != nil {
		return nil, err
	}
	defer f.stop()

	// The valid packets, built beforehand by the stock client, each asking
	// to let a different address of 198.19.0.0/24 in, so that each one's
	// opening can be counted. The same packets go to both SPA servers
	// (their replay caches are their own).
	valid := make([][]byte, c.valid)
	allow := make([]string, c.valid)
	for i := range valid {
		a := netip.AddrFrom4([4]byte{198, 19, 0, byte(i + 1)})
		allow[i] = a.String()
		if valid[i], err = f.spaPacket(ctx, portkitLink.server, a); err != nil {
			return nil, err
		}
	}
	// Not a connected socket: nothing listens on the SPA port (the servers
	// read their packets beside the stack), so the ICMP port unreachable
	// that comes back would fail a connected socket's next send.
	spaConn, err := net.ListenUDP("udp4", nil)
	if err != nil {
		return nil, err
	}
	defer spaConn.Close()
	spaTo := []netip.AddrPort{netip.AddrPortFrom(f.portkit.link.server, spaPort), netip.AddrPortFrom(f.fwknopd.link.server, spaPort)}

	use := []*daemonUse{{srv: f.portkit}, {srv: f.fwknopd}, {srv: f.knockd}}
	for _, u := range use {
		if u.cpuBefore, err = proc.TreeCPU(u.srv.p.Pid()); err != nil {
			return nil, u.srv.p.Failure("cannot be read: " + err.Error())
		}
	}
	// RSS every rssEvery, from before the flood to its end.
	stopSampling := make(chan struct{})
	var sampling sync.WaitGroup
	sampling.Add(1)
	go func() {
		defer sampling.Done()
		tick := time.NewTicker(rssEvery)
		defer tick.Stop()
		for {
			for _, u := range use {
				rss, err := proc.StatusKB(u.srv.p.Pid(), "VmRSS")
				anon, aerr := proc.StatusKB(u.srv.p.Pid(), "RssAnon")
				if err == nil && aerr == nil {
					u.rss = append(u.rss, rssSample{at: time.Now(), rss: rss, anon: anon})
				} else if u.err == nil {
					u.err = errors.Join(err, aerr)
				}
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()
	time.Sleep(2 * rssEvery) // a few samples before the flood

	span := time.Duration(c.seconds) * time.Second
	start := time.Now()
	var (
		res      floodResult
		floodErr error
		flooding sync.WaitGroup
	)
	flooding.Add(1)
	go func() {
		defer flooding.Done()
		res, floodErr = flood(ctx, start.Add(span), c.maxPackets)
	}()
	// The valid packets, spread evenly over the flood, each to both.
	validErrs := 0
	for i, pkt := range valid {
		at := start.Add(span * time.Duration(2*i+1) / time.Duration(2*len(valid)))
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(at)):
		}
		if ctx.Err() != nil {
			break
		}
		for _, to := range spaTo {
			if _, err := spaConn.WriteToUDPAddrPort(pkt, to); err != nil {
				validErrs++
			}
		}
	}
	flooding.Wait()
	close(stopSampling)
	sampling.Wait()
	if floodErr != nil {
		return nil, floodErr
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	for _, u := range use {
		if u.srv.p.Exited() {
			return nil, u.srv.p.Failure("died during the flood")
		}
		after, err := proc.TreeCPU(u.srv.p.Pid())
		if err != nil {
			return nil, err
		}
		u.cpu = after - u.cpuBefore
	}

	// Count the openings, until each SPA server has all of them or
	// countWithin has passed.
	deadline := time.Now().Add(countWithin)
	for {
		pk, err := f.portkitOpenings(ctx)
		if err != nil {
			return nil, err
		}
		fk, err := f.fwknopdOpenings(ctx)
		if err != nil {
			return nil, err
		}
		use[0].opened, use[1].opened = countIn(pk, allow), countIn(fk, allow)
		if (use[0].opened == len(valid) && use[1].opened == len(valid)) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, u := range use {
		u.rssAfter, _ = proc.StatusKB(u.srv.p.Pid(), "VmRSS")
	}
	metrics, err := f.portkitMetrics(ctx)
	if err != nil {
		return nil, err
	}
	floodReport(sec, c, f, use, res, start, span, len(valid), validErrs)
	sec.Notes = append(sec.Notes, portkitCounters(metrics))
	return sec, nil
}

// portkitCounters says what portkit knockd's metrics counted over the
// flood (it started just before it).
func portkitCounters(m map[string]float64) string {
	var refused []string
	for k, v := range m {
		if strings.HasPrefix(k, "portkit_knockd_refused_total{") {
			refused = append(refused, fmt.Sprintf("%s %s", strings.TrimPrefix(k, "portkit_knockd_refused_total"), benchmd.Count(int64(v))))
		}
	}
	slices.Sort(refused)
	return fmt.Sprintf("portkit knockd's own counters (`--metrics`) at the end: SPA packets accepted %s, sequences accepted %s; "+
		"packets the kernel dropped because the reader fell behind (`portkit_knockd_dropped_packets_total`) %s; sources followed %s; refused: %s.",
		benchmd.Count(int64(m[`portkit_knockd_accepted_total{kind="spa"}`])), benchmd.Count(int64(m[`portkit_knockd_accepted_total{kind="sequence"}`])),
		benchmd.Count(int64(m["portkit_knockd_dropped_packets_total"])), benchmd.Count(int64(m["portkit_knockd_sources"])), strings.Join(refused, ", "))
}

// countIn counts the members of want that are in have.
func countIn(have, want []string) int {
	n := 0
	for _, w := range want {
		if slices.Contains(have, w) {
			n++
		}
	}
	return n
}

func floodReport(s *benchmd.Section, c *config, f *fixture, use []*daemonUse, res floodResult, start time.Time, span time.Duration, valid, validErrs int) {
	secs := res.took.Seconds()
	s.Setup = fmt.Sprintf("%s of junk from one sender (ended by %s), %s packets, %s/s", benchmd.Dur(res.took.Round(time.Millisecond)), res.limit,
		benchmd.Count(res.total()), benchmd.Count(int64(float64(res.total())/secs)))
	s.Notes = append(s.Notes, fmt.Sprintf("One goroutine of knockbench, on one thread, sends from a raw socket in the client's namespace, in turn: "+
		"a UDP datagram of 150–600 random base64 characters (past the servers' length and alphabet checks: each costs an HMAC) to port %d of portkit and of fwknopd, "+
		"and a TCP SYN to port 7000 or 9000 (the sequence's TCP knocks) of portkit and of knockd; every packet from a random source of 198.19.128.0/17 and port, "+
		"bounded by %ds and %s packets. Meanwhile %d valid SPA packets, built beforehand by the stock fwknop client, each asking to let another address of "+
		"198.19.0.0/24 in to tcp/%d, are sent evenly over the flood to both SPA servers; afterwards their openings are counted in the firewall "+
		"(`portkit firewall ls --json`, `iptables -S FWKNOP_INPUT`), waiting up to %v for the last. CPU is user+system from /proc/PID/stat over the flood "+
		"(the children knockd waited for included); RSS is VmRSS from /proc/PID/status every %v. In every target namespace the flood's ports are `notrack` "+
		"(see bench/knock.sh), so that spoofed sources do not fill the kernel's connection table; the daemons read packets before netfilter. "+
		"Sent by kind: %s UDP to portkit, %s UDP to fwknopd, %s SYNs to portkit, %s SYNs to knockd; %s sends refused by the kernel (full queue).",
		spaPort, c.seconds, benchmd.Count(int64(c.maxPackets)), valid, protectedPort, countWithin, rssEvery,
		benchmd.Count(res.sent[udpToPortkit]), benchmd.Count(res.sent[udpToFwknopd]), benchmd.Count(res.sent[synToPortkit]), benchmd.Count(res.sent[synToKnockd]),
		benchmd.Count(res.errs)))
	if validErrs > 0 {
		s.Warn("%d valid packets could not be sent", validErrs)
	}
	t := &benchmd.Table{Head: []string{"server", "command line", "junk it was sent", "valid SPA opened", "CPU over the flood", "of one core",
		"RSS before", "RSS max", "RSS at the end", "RSS after counting"}, Align: []string{"", "---"}}
	junk := map[*server]int64{
		f.portkit: res.sent[udpToPortkit] + res.sent[synToPortkit],
		f.fwknopd: res.sent[udpToFwknopd],
		f.knockd:  res.sent[synToKnockd],
	}
	var pk *daemonUse
	for _, u := range use {
		opened := "–"
		if u.srv != f.knockd {
			opened = fmt.Sprintf("%d/%d", u.opened, valid)
		}
		first, peak, last := rssFigures(u.rss, vmRSS)
		t.Row(u.srv.name, c.shown(u.srv.argv), benchmd.Count(junk[u.srv]), opened,
			benchmd.Dur(u.cpu), fmt.Sprintf("%.0f%%", 100*u.cpu.Seconds()/secs),
			harness.FormatRSS(first), harness.FormatRSS(peak), harness.FormatRSS(last), harness.FormatRSS(u.rssAfter))
		if u.srv == f.portkit {
			pk = u
		}
	}
	s.Tables = append(s.Tables, t.String())
	s.Tables = append(s.Tables, rssTrace(use))
	s.AddTarget(pk.opened == valid && validErrs == 0, fmt.Sprintf("every one of the %d valid SPA packets sent during the flood opens portkit's port", valid),
		fmt.Sprintf("%d/%d", pk.opened, valid))
	// The table of knock sequences in progress fills up to max_sources
	// (10,000) in the flood's first seconds, as its spoofed sources come
	// in, and the Go heap grows with it, in the saw-tooth of its garbage
	// collections: flat is judged by the peaks, the second half's against
	// the first half's.
	mid := start.Add(span / 2)
	var firstHalf, secondHalf []rssSample
	for _, x := range pk.rss {
		switch {
		case x.at.Before(start) || x.at.After(start.Add(res.took)):
		case x.at.Before(mid):
			firstHalf = append(firstHalf, x)
		default:
			secondHalf = append(secondHalf, x)
		}
	}
	_, peak1, _ := rssFigures(firstHalf, vmRSS)
	_, peak2, _ := rssFigures(secondHalf, vmRSS)
	first, peak, last := rssFigures(pk.rss, vmRSS)
	s.AddTarget(len(firstHalf) > 0 && len(secondHalf) > 0 && peak2 <= peak1+rssFlatSlack,
		fmt.Sprintf("portkit's RSS flat once its table of sources is full: the peak of the flood's second half within %s of the first half's", harness.FormatRSS(rssFlatSlack)),
		fmt.Sprintf("peaks %s and %s; start %s, max %s, end %s; RssAnon (heap and stacks) start %s, max %s, end %s",
			harness.FormatRSS(peak1), harness.FormatRSS(peak2), harness.FormatRSS(first), harness.FormatRSS(peak), harness.FormatRSS(last),
			rssCell(pk.rss, rssAnon, 0), rssCell(pk.rss, rssAnon, 1), rssCell(pk.rss, rssAnon, 2)))
	for _, u := range use {
		if u.err != nil {
			s.Warn("%s's RSS could not always be read: %v", u.srv.name, u.err)
		}
	}
}

// rssFlatSlack is how far the peak RSS of the flood's second half may
// exceed the first half's and still be called flat: the garbage
// collector's saw-tooth moved the peaks of a flat heap by 0.4 to 1.6 MiB
// from run to run here (1 MiB, tried first, failed one run of three on
// peaks of 22.7 and 24.0 MiB, with RssAnon 9.2 MiB at most and 9.0 at the
// end).
const rssFlatSlack = 2 << 20

// rssSample is one reading of /proc/PID/status.
type rssSample struct {
	at   time.Time
	rss  int64 // VmRSS
	anon int64 // RssAnon: the heap and stacks, not the mapped binary or ring
}

func vmRSS(x rssSample) int64   { return x.rss }
func rssAnon(x rssSample) int64 { return x.anon }

// rssFigures is the first, the highest and the last of samples, as of.
func rssFigures(samples []rssSample, of func(rssSample) int64) (first, peak, last int64) {
	if len(samples) == 0 {
		return 0, 0, 0
	}
	first, last = of(samples[0]), of(samples[len(samples)-1])
	for _, x := range samples {
		peak = max(peak, of(x))
	}
	return first, peak, last
}

// rssCell formats the first (which 0), the highest (1) or the last (2).
func rssCell(samples []rssSample, of func(rssSample) int64, which int) string {
	a, b, c := rssFigures(samples, of)
	return harness.FormatRSS([]int64{a, b, c}[which])
}

// rssTrace shows each daemon's RSS once a second of the samples, for
// judging how it moved.
func rssTrace(use []*daemonUse) string {
	var b strings.Builder
	per := int(time.Second / rssEvery)
	b.WriteString(fmt.Sprintf("VmRSS in MiB, one sample a second (of those taken every %v), from just before the flood to its end:\n\n", rssEvery))
	for _, u := range use {
		var xs []string
		for i := 0; i < len(u.rss); i += per {
			xs = append(xs, fmt.Sprintf("%.1f", float64(u.rss[i].rss)/(1<<20)))
		}
		fmt.Fprintf(&b, "- %s: %s\n", u.srv.name, strings.Join(xs, " "))
	}
	return b.String()
}
