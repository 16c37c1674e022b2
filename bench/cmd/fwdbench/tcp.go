package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/portkit/portkit/bench/internal/benchmd"
	"github.com/portkit/portkit/bench/internal/proc"
)

// tcpRun is one iperf3 run through one path.
type tcpRun struct {
	gbps  float64       // receiver side, Gbit/s
	bytes int64         // received by the server
	cpu   time.Duration // the forwarder's, with its children's
	err   error
}

// cpuPerGB is CPU time per 10^9 bytes moved; -1 when not measured.
func (r tcpRun) cpuPerGB() time.Duration {
	if r.err != nil || r.bytes <= 0 || r.cpu < 0 {
		return -1
	}
	return time.Duration(float64(r.cpu) / (float64(r.bytes) / 1e9))
}

// iperfJSON is the part of `iperf3 -c ... --json` the benchmark reads.
type iperfJSON struct {
	End struct {
		SumReceived struct {
			Bytes         int64   `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

// parseIperf reads iperf3's JSON report.
func parseIperf(out []byte) (gbps float64, bytes int64, err error) {
	var r iperfJSON
	if err := json.Unmarshal(out, &r); err != nil {
		return 0, 0, fmt.Errorf("iperf3 output is not its JSON report: %v", err)
	}
	if r.Error != "" {
		return 0, 0, fmt.Errorf("iperf3: %s", r.Error)
	}
	if r.End.SumReceived.Bytes <= 0 || r.End.SumReceived.BitsPerSecond <= 0 {
		return 0, 0, errors.New("iperf3 reports nothing received")
	}
	return r.End.SumReceived.BitsPerSecond / 1e9, r.End.SumReceived.Bytes, nil
}

var streamCounts = []int{1, 8}

func tcpMode(ctx context.Context, c *config) (*benchmd.Section, error) {
	s := benchmd.New("forward TCP throughput: iperf3 direct, through portkit, socat and rinetd, and the splice floor",
		fmt.Sprintf("%d rounds of %d s iperf3 runs per path and stream count, order rotated each round", c.rounds, c.seconds))

	srv, err := proc.Start("iperf3-server", []string{"iperf3", "-s", "-B", "127.0.0.1", "-p", strconv.Itoa(iperfPort)}, c.tmp)
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	if err := proc.WaitListening(ctx, srv, "tcp", iperfPort, 10*time.Second); err != nil {
		return nil, err
	}

	paths := []*path{{name: "direct", port: iperfPort}}
	if c.portkitOK {
		paths = append(paths, portkitPath(c, "tcp", tcpBase+1, iperfPort))
	}
	rinetd, err := rinetdPath(c.tmp, tcpBase+3, iperfPort)
	if err != nil {
		return nil, err
	}
	paths = append(paths, socatPath("tcp", tcpBase+2, iperfPort), rinetd)
	if c.floor != "" {
		paths = append(paths, floorPath(c, tcpBase+4, iperfPort))
	}
	if err := startPaths(ctx, c, "tcp", paths); err != nil {
		return nil, err
	}
	defer stopPaths(paths)

	// runs[streams index][path index] in the order taken.
	runs := make([][][]tcpRun, len(streamCounts))
	for i := range runs {
		runs[i] = make([][]tcpRun, len(paths))
	}
	batch := 0
	for round := range c.rounds {
		for si, streams := range streamCounts {
			for _, pi := range benchmd.Rotated(len(paths), batch) {
				p := paths[pi]
				fmt.Fprintf(c.stderr, "tcp: round %d/%d, %d stream(s), %s\n", round+1, c.rounds, streams, p.name)
				r := iperfRun(ctx, c, p, streams)
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				if r.err != nil {
					fmt.Fprintf(c.stderr, "tcp: %s, %d stream(s): %v\n", p.name, streams, r.err)
				} else {
					fmt.Fprintf(c.stderr, "tcp: %s, %d stream(s): %.2f Gbit/s, CPU %v\n", p.name, streams, r.gbps, r.cpu)
				}
				runs[si][pi] = append(runs[si][pi], r)
				pause(ctx, 500*time.Millisecond)
			}
			batch++
		}
	}
	tcpReport(s, c, paths, runs)
	return s, nil
}

// iperfRun runs one iperf3 client through p and measures the forwarder's
// CPU over it.
func iperfRun(ctx context.Context, c *config, p *path, streams int) tcpRun {
	var before time.Duration
	if p.p != nil {
		if p.p.Exited() {
			return tcpRun{err: p.p.Failure("is no longer running")}
		}
		var err error
		if before, err = proc.TreeCPU(p.p.Pid()); err != nil {
			return tcpRun{err: err}
		}
	}
	rctx, cancel := context.WithTimeout(ctx, time.Duration(c.seconds+30)*time.Second)
	defer cancel()
	cmd := exec.CommandContext(rctx, "iperf3", "-c", "127.0.0.1", "-p", strconv.Itoa(p.port),
		"-t", strconv.Itoa(c.seconds), "-P", strconv.Itoa(streams), "--connect-timeout", "5000", "--json")
	cmd.WaitDelay = time.Second
	out, runErr := cmd.Output()
	r := tcpRun{cpu: -1}
	var perr error
	r.gbps, r.bytes, perr = parseIperf(out)
	switch {
	case rctx.Err() != nil:
		r.err = fmt.Errorf("iperf3 did not finish within %d s", c.seconds+30)
	case perr != nil:
		r.err = perr
	case runErr != nil:
		r.err = fmt.Errorf("iperf3: %v", runErr)
	}
	if p.p != nil {
		// socat's forks exit with their connections; their CPU counts once
		// socat has waited for them.
		if err := proc.WaitChildless(ctx, p.p.Pid(), 10*time.Second); err != nil && r.err == nil {
			r.err = err
		}
		after, err := proc.TreeCPU(p.p.Pid())
		if err != nil && r.err == nil {
			r.err = p.p.Failure("died during the run")
		}
		r.cpu = after - before
	}
	return r
}

func tcpReport(s *benchmd.Section, c *config, paths []*path, runs [][][]tcpRun) {
	idx := map[string]int{}
	for i, p := range paths {
		idx[p.name] = i
	}
	// gbps[si][pi][k]: round k's figure, NaN for a failed run.
	gbps := make([][][]float64, len(streamCounts))
	med := make([][]float64, len(streamCounts))
	cpu := make([][]time.Duration, len(streamCounts))
	for si := range streamCounts {
		gbps[si] = make([][]float64, len(paths))
		med[si] = make([]float64, len(paths))
		cpu[si] = make([]time.Duration, len(paths))
		for pi := range paths {
			var g, perGB []float64
			for _, r := range runs[si][pi] {
				x := math.NaN()
				if r.err == nil {
					x = r.gbps
					g = append(g, r.gbps)
					if d := r.cpuPerGB(); d >= 0 {
						perGB = append(perGB, float64(d))
					}
				}
				gbps[si][pi] = append(gbps[si][pi], x)
			}
			med[si][pi] = benchmd.Median(g)
			cpu[si][pi] = -1
			if len(perGB) > 0 {
				cpu[si][pi] = time.Duration(benchmd.Median(perGB))
			}
		}
	}

	s.Notes = append(s.Notes, fmt.Sprintf("Gbit/s is iperf3's receiver-side figure (`iperf3 -c 127.0.0.1 -p PORT -t %d -P N --json`, "+
		"`end.sum_received`), the median over the rounds; the server is `iperf3 -s -B 127.0.0.1 -p %d`. "+
		"CPU per GB is the forwarder's user+system time over the run (/proc/PID/stat, its waited-for children included: "+
		"socat forks one per connection) per 10^9 bytes received. Ratios (\"vs direct\" and the targets) are the median "+
		"of the ratios within each round, whose runs are the closest in time, so that the machine's changing load "+
		"bears on both sides alike.", c.seconds, iperfPort))
	if !c.portkitOK {
		s.Fail("portkit rows not run: %s", c.portkitWhy)
	}

	t := &benchmd.Table{Head: []string{"path", "forwarder command line", "1 stream", "vs direct", "8 streams", "vs direct",
		"CPU per GB, 1 stream", "CPU per GB, 8 streams"}, Align: []string{"", "---"}}
	for pi, p := range paths {
		row := []string{p.name, p.cmdLine()}
		for si := range streamCounts {
			row = append(row, benchmd.Num(med[si][pi])+" Gbit/s", fmtRatio(benchmd.PairedRatio(gbps[si][pi], gbps[si][0])))
		}
		for si := range streamCounts {
			row = append(row, perGB(cpu[si][pi], p))
		}
		t.Row(row...)
	}
	s.Tables = append(s.Tables, t.String())

	// Every run, for judging the noise.
	var groups []string
	for _, n := range streamCounts {
		groups = append(groups, fmt.Sprintf("%d×", n))
	}
	s.Tables = append(s.Tables, everyRun("Every run in the order taken, Gbit/s (CPU per GB):", paths, groups, c.rounds,
		func(pi, si int) int { return len(runs[si][pi]) },
		func(pi, si, k int) string {
			switch r := runs[si][pi][k]; {
			case r.err != nil:
				return benchmd.ErrCell(r.err)
			case r.cpu >= 0:
				return fmt.Sprintf("%s (%s)", benchmd.Num(r.gbps), benchmd.Dur(r.cpuPerGB()))
			default:
				return benchmd.Num(r.gbps)
			}
		}))

	for pi, p := range paths {
		for si, n := range streamCounts {
			for _, r := range runs[si][pi] {
				if r.err != nil {
					s.Fail("%s, %d stream(s): a run failed: %v", p.name, n, r.err)
					break
				}
			}
		}
	}
	if !c.portkitOK {
		s.AddTarget(false, "portkit forward measured", "no forward command in "+c.portkit)
		return
	}
	pk := idx["portkit"]
	if fl, ok := idx["splicefloor"]; ok {
		s.Notes = append(s.Notes, "splicefloor (`bench/cmd/splicefloor`) is the floor of a forwarder here, not one: "+
			"two blocking splice(2) loops per connection through a 1 MiB pipe on blocking sockets, no poller, no "+
			"scheduler, no accounting. What it costs is the kernel's share of moving the bytes through a second TCP "+
			"connection, which no forwarder avoids; on 2 CPUs that work competes with iperf3's own.")
		for si, n := range streamCounts {
			var each []string
			for k := range gbps[si][pk] {
				each = append(each, benchmd.Num(benchmd.Ratio(gbps[si][pk][k], gbps[si][fl][k])))
			}
			s.Notes = append(s.Notes, fmt.Sprintf("%d stream(s): splicefloor/direct %s (median of the rounds' ratios); portkit/splicefloor %s (by round %s).",
				n, benchmd.Num(benchmd.PairedRatio(gbps[si][fl], gbps[si][idx["direct"]])), benchmd.Num(benchmd.PairedRatio(gbps[si][pk], gbps[si][fl])), strings.Join(each, ", ")))
		}
	}
	for si, n := range streamCounts {
		for _, want := range []struct {
			peer string
			min  float64
		}{{"socat", 1.5}, {"rinetd", 1.2}, {"direct", 0.7}} {
			peer := gbps[si][idx[want.peer]]
			x := benchmd.PairedRatio(gbps[si][pk], peer)
			var each []string
			for k := range gbps[si][pk] {
				each = append(each, benchmd.Num(benchmd.Ratio(gbps[si][pk][k], peer[k])))
			}
			s.AddTarget(x >= want.min, fmt.Sprintf("portkit/%s >= %s, %d stream(s)", want.peer, benchmd.Num(want.min), n),
				fmt.Sprintf("ratio %s; by round %s", benchmd.Num(x), strings.Join(each, ", ")))
		}
	}
}

func fmtRatio(x float64) string {
	if math.IsNaN(x) {
		return "n/a"
	}
	return benchmd.Num(x) + "×"
}

func perGB(d time.Duration, p *path) string {
	if p.argv == nil {
		return "–"
	}
	if d < 0 {
		return "n/a"
	}
	return benchmd.Dur(d)
}

// parseSizes reads -sizes: "64,1200".
func parseSizes(v string) ([]int, error) {
	var sizes []int
	for f := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 8 || n > 65000 {
			return nil, fmt.Errorf("-sizes: %q is not a datagram size from 8 to 65000", f)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}
