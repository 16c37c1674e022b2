package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portkit/portkit/bench/internal/benchmd"
	"github.com/portkit/portkit/bench/internal/proc"
)

// httpRequest is what every churn connection sends; httpResponse is what
// bench/cmd/fwdtarget answers (keep the two in step).
const (
	httpRequest  = "GET / HTTP/1.0\r\nHost: fwdbench\r\n\r\n"
	httpResponse = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\nhello, world\n"
)

// churnRun is one run of short connections through one path.
type churnRun struct {
	ok, failed int64
	elapsed    time.Duration
	lat        []time.Duration // sorted, one per completed connection
	cpu        time.Duration   // the forwarder's; -1 for none
	firstErr   error
	limited    bool // stopped by the time limit
}

// add counts a slice of a round's connections into the round's run.
func (r *churnRun) add(s churnRun) {
	r.ok += s.ok
	r.failed += s.failed
	r.elapsed += s.elapsed
	r.lat = append(r.lat, s.lat...)
	if s.cpu >= 0 {
		r.cpu = max(r.cpu, 0) + s.cpu
	}
	if r.firstErr == nil {
		r.firstErr = s.firstErr
	}
	r.limited = r.limited || s.limited
}

func (r churnRun) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ok) / r.elapsed.Seconds()
}

// churn makes n connections to addr, conc at a time, each sending one
// HTTP/1.0 request and reading the response to its end; it stops after n
// or after limit, whichever comes first. Latency runs from the start of the
// dial to the end of the response.
func churn(ctx context.Context, addr string, n, conc int, limit time.Duration) churnRun {
	var (
		next, failed atomic.Int64
		errOnce      sync.Once
		firstErr     error
		wg           sync.WaitGroup
	)
	lat := make([][]time.Duration, conc)
	start := time.Now()
	deadline := start.Add(limit)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 512)
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				t0 := time.Now()
				err := oneRequest(ctx, addr, buf)
				if err != nil {
					if ctx.Err() != nil {
						return // the time limit, not a failure of this connection
					}
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	r := churnRun{elapsed: time.Since(start), failed: failed.Load(), firstErr: firstErr, cpu: -1}
	for _, l := range lat {
		r.lat = append(r.lat, l...)
	}
	slices.Sort(r.lat)
	r.ok = int64(len(r.lat))
	// Connections cut short by the limit count as neither.
	r.limited = r.ok+r.failed < int64(n)
	return r
}

var errBadResponse = errors.New("unexpected response")

// oneRequest is one short connection.
func oneRequest(ctx context.Context, addr string, buf []byte) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, httpRequest); err != nil {
		return err
	}
	got := 0
	for {
		m, err := conn.Read(buf[got:])
		got += m
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if got == len(buf) {
			return errBadResponse
		}
	}
	if !bytes.Equal(buf[:got], []byte(httpResponse)) {
		return fmt.Errorf("%w: %q", errBadResponse, buf[:min(got, 40)])
	}
	return nil
}

func churnMode(ctx context.Context, c *config) (*benchmd.Section, error) {
	s := benchmd.New("forward connection churn: short HTTP/1.0 connections direct, through portkit and socat, and the splice floor",
		fmt.Sprintf("%d rounds of %s connections per path, %d at a time, in slices of %s taken by the paths in turn", c.rounds, benchmd.Count(int64(c.conns)), c.concurrency, benchmd.Count(int64(max(1, c.conns/c.slices)))))
	srv, err := startServer(ctx, c, "-http", local(httpPort))
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	paths := []*path{{name: "direct", port: httpPort}}
	if c.portkitOK {
		paths = append(paths, portkitPath(c, "tcp", churnBase+1, httpPort))
	}
	// socat listens with a backlog of 5 unless told otherwise: with 50
	// connections at a time SYNs overflow it and wait for the 1 s
	// retransmission, which would measure the backlog, not the forwarding.
	// Go (portkit) listens with net.core.somaxconn, 4096.
	paths = append(paths, socatPath("tcp", churnBase+2, httpPort, "backlog=4096"))
	if c.floor != "" {
		paths = append(paths, floorPath(c, churnBase+4, httpPort, "-poller"))
	}
	if err := startPaths(ctx, c, "tcp", paths); err != nil {
		return nil, err
	}
	defer stopPaths(paths)

	// A round runs every path over the same stretch of time: its
	// connections go in slices, each path taking a slice in turn, so that
	// a change in the machine's load falls on every path alike rather than
	// on whichever ran when it came.
	runs := make([][]churnRun, len(paths))
	slice := max(1, c.conns/c.slices)
	for round := range c.rounds {
		rs := make([]churnRun, len(paths))
		for k := range rs {
			rs[k].cpu = -1
		}
		for done, sl := 0, 0; done < c.conns; done, sl = done+slice, sl+1 {
			n := min(slice, c.conns-done)
			for _, pi := range benchmd.Rotated(len(paths), round+sl) {
				p := paths[pi]
				var before time.Duration
				if p.p != nil {
					if p.p.Exited() {
						return nil, p.p.Failure("is no longer running")
					}
					if before, err = proc.TreeCPU(p.p.Pid()); err != nil {
						return nil, err
					}
				}
				r := churn(ctx, p.addr(), n, c.concurrency, c.limit/time.Duration(c.slices))
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				if p.p != nil {
					_ = proc.WaitChildless(ctx, p.p.Pid(), 10*time.Second)
					if after, err := proc.TreeCPU(p.p.Pid()); err == nil {
						r.cpu = after - before
					}
				}
				rs[pi].add(r)
				pause(ctx, 100*time.Millisecond)
			}
		}
		for pi, p := range paths {
			r := &rs[pi]
			slices.Sort(r.lat)
			fmt.Fprintf(c.stderr, "churn: round %d/%d, %s: %d ok, %d failed in %v: %.0f conn/s, p50 %v, p99 %v, CPU %v\n",
				round+1, c.rounds, p.name, r.ok, r.failed, r.elapsed.Round(time.Millisecond), r.rate(),
				benchmd.Percentile(r.lat, 50), benchmd.Percentile(r.lat, 99), r.cpu)
			runs[pi] = append(runs[pi], *r)
		}
		pause(ctx, time.Second)
	}
	churnReport(s, c, paths, runs)
	return s, nil
}

func churnReport(s *benchmd.Section, c *config, paths []*path, runs [][]churnRun) {
	s.Notes = append(s.Notes, fmt.Sprintf("Each connection: connect, send `GET / HTTP/1.0`, read the %d-byte response "+
		"to the server's close, close. The server is `bench/cmd/fwdtarget -http %s` (one goroutine per connection, "+
		"the server closes first). Latency runs from the start of connect to the end of the response; each figure is "+
		"the median over the rounds of that round's value; \"vs direct\" and \"added\" are the medians of the ratio "+
		"and of the difference to direct within each round. A round gives each path its connections in %d slices, "+
		"the paths taking a slice each in turn (the first path rotating), so that the machine's changing load falls on "+
		"every path of the round alike; conn/s is over the slices' time. "+
		"Each run is bounded by %s connections and %v. CPU per connection is the forwarder's user+system time "+
		"(its forks included) over the run. socat is given `backlog=4096`, the backlog Go listens with: its default of 5 "+
		"overflows at 50 connections at a time, and the SYNs dropped wait 1 s for their retransmission.", len(httpResponse), local(httpPort), c.slices, benchmd.Count(int64(c.conns)), c.limit))
	if !c.portkitOK {
		s.Fail("portkit rows not run: %s", c.portkitWhy)
	}
	// Per round, NaN where a run completed nothing.
	type agg struct {
		rate, p50, p99 []float64
		cpu            float64 // median per connection
		ok, failed     int64
	}
	aggs := make([]agg, len(paths))
	for pi := range paths {
		a := &aggs[pi]
		var cpu []float64
		for _, r := range runs[pi] {
			a.ok += r.ok
			a.failed += r.failed
			if r.ok == 0 {
				a.rate, a.p50, a.p99 = append(a.rate, math.NaN()), append(a.p50, math.NaN()), append(a.p99, math.NaN())
				continue
			}
			a.rate = append(a.rate, r.rate())
			a.p50 = append(a.p50, float64(benchmd.Percentile(r.lat, 50)))
			a.p99 = append(a.p99, float64(benchmd.Percentile(r.lat, 99)))
			if r.cpu >= 0 {
				cpu = append(cpu, float64(r.cpu)/float64(r.ok))
			}
		}
		a.cpu = benchmd.Median(cpu)
	}
	asDur := func(x float64) time.Duration {
		if math.IsNaN(x) {
			return -1
		}
		return time.Duration(x)
	}
	medOf := func(xs []float64) float64 {
		var ok []float64
		for _, x := range xs {
			if !math.IsNaN(x) {
				ok = append(ok, x)
			}
		}
		return benchmd.Median(ok)
	}
	t := &benchmd.Table{Head: []string{"path", "forwarder command line", "conn/s", "vs direct", "p50", "p99", "added p50", "added p99",
		"CPU per conn", "completed", "failed"}, Align: []string{"", "---"}}
	for pi, p := range paths {
		added50, added99 := "–", "–"
		if pi > 0 {
			added50, added99 = "n/a", "n/a"
			if d := benchmd.PairedDiff(aggs[pi].p50, aggs[0].p50); !math.IsNaN(d) {
				added50 = benchmd.SignedDur(time.Duration(d))
			}
			if d := benchmd.PairedDiff(aggs[pi].p99, aggs[0].p99); !math.IsNaN(d) {
				added99 = benchmd.SignedDur(time.Duration(d))
			}
		}
		cpu := "–"
		if p.argv != nil {
			cpu = benchmd.Dur(asDur(aggs[pi].cpu))
		}
		t.Row(p.name, p.cmdLine(), benchmd.Num(medOf(aggs[pi].rate)), fmtRatio(benchmd.PairedRatio(aggs[pi].rate, aggs[0].rate)),
			benchmd.Dur(asDur(medOf(aggs[pi].p50))), benchmd.Dur(asDur(medOf(aggs[pi].p99))), added50, added99, cpu,
			benchmd.Count(aggs[pi].ok), benchmd.Count(aggs[pi].failed))
	}
	s.Tables = append(s.Tables, t.String())

	s.Tables = append(s.Tables, everyRun("Every run in the order taken: conn/s, p50 / p99:", paths, []string{""}, c.rounds,
		func(pi, _ int) int { return len(runs[pi]) },
		func(pi, _, k int) string {
			r := runs[pi][k]
			cell := fmt.Sprintf("%s, %s / %s", benchmd.Num(r.rate()), benchmd.Dur(benchmd.Percentile(r.lat, 50)), benchmd.Dur(benchmd.Percentile(r.lat, 99)))
			if r.failed > 0 {
				cell += fmt.Sprintf(", %s failed (%v)", benchmd.Count(r.failed), r.firstErr)
			}
			if r.limited {
				cell += ", stopped by the time limit"
			}
			return cell
		}))

	for pi, p := range paths {
		for k, r := range runs[pi] {
			if r.failed > 0 || r.limited {
				what := fmt.Sprintf("%s failed", benchmd.Count(r.failed))
				if r.limited {
					what += fmt.Sprintf(", stopped by the %v limit after %s", c.limit, benchmd.Count(r.ok+r.failed))
				}
				if p.name == "portkit" {
					continue // a target below
				}
				s.Notes = append(s.Notes, fmt.Sprintf("%s round %d: %s (first error: %v).", p.name, k+1, what, r.firstErr))
			}
		}
	}
	if !c.portkitOK {
		s.AddTarget(false, "portkit forward measured", "no forward command in "+c.portkit)
		return
	}
	pk := 1
	want := int64(c.conns * c.rounds)
	s.AddTarget(aggs[pk].ok == want, "portkit: every connection completed, in every round",
		fmt.Sprintf("%s of %s", benchmd.Count(aggs[pk].ok), benchmd.Count(want)))
	fl := slices.IndexFunc(paths, func(p *path) bool { return p.name == "splicefloor" })
	if fl < 0 {
		return
	}
	s.Notes = append(s.Notes, "splicefloor (`bench/cmd/splicefloor -poller`) is the floor of a Go forwarder here, not one: "+
		"Go's accept, dial (no timeout) and io.Copy both ways (splice through the runtime's pipe pool), and nothing else: "+
		"no limits, ACLs, loop guard, idle timeout, metrics or log line. Its blocking-splice mode, the throughput floor, "+
		"costs more than the poller per short connection (a thread switch at every wait), so it is not the floor here. "+
		"The targets compare portkit with it round by round (the rounds' runs are the closest in time): CPU per "+
		"connection, and the latency each adds to direct's at p50 and p99.")
	cpuOf := func(pi int) []float64 {
		var xs []float64
		for _, r := range runs[pi] {
			x := math.NaN()
			if r.ok > 0 && r.cpu >= 0 {
				x = float64(r.cpu) / float64(r.ok)
			}
			xs = append(xs, x)
		}
		return xs
	}
	// added is path pi's latency over direct's, round by round.
	added := func(pi int, xs func(agg) []float64) []float64 {
		var out []float64
		for k := range xs(aggs[pi]) {
			out = append(out, xs(aggs[pi])[k]-xs(aggs[0])[k])
		}
		return out
	}
	for _, tg := range []struct {
		what     string
		pk, fl   []float64
		positive bool // a ratio of amounts that must be above 0 to mean anything
	}{
		{"CPU per connection", cpuOf(pk), cpuOf(fl), false},
		{"latency added at p50", added(pk, func(a agg) []float64 { return a.p50 }), added(fl, func(a agg) []float64 { return a.p50 }), true},
		{"latency added at p99", added(pk, func(a agg) []float64 { return a.p99 }), added(fl, func(a agg) []float64 { return a.p99 }), true},
	} {
		var each []string
		var rs []float64
		for k := range tg.pk {
			r := benchmd.Ratio(tg.pk[k], tg.fl[k])
			if tg.positive && !(tg.fl[k] > 0) {
				r = math.NaN() // the floor added nothing that round: no ratio
			}
			if !math.IsNaN(r) {
				rs = append(rs, r)
			}
			each = append(each, benchmd.Num(r))
		}
		x := benchmd.Median(rs)
		s.AddTarget(x <= 1.2, fmt.Sprintf("portkit's %s <= 1.2x splicefloor's", tg.what),
			fmt.Sprintf("ratio %s, the median of the rounds' %s", benchmd.Num(x), strings.Join(each, ", ")))
	}
}
