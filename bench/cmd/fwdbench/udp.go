package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"sync"
	"time"

	"github.com/portkit/portkit/bench/internal/benchmd"
	"github.com/portkit/portkit/bench/internal/proc"
)

// lossTimeout is how long a datagram may go unanswered before it counts as
// lost; replies arriving later count as late, not as replies.
const lossTimeout = 500 * time.Millisecond

// udpRun is one run of datagrams through one path.
type udpRun struct {
	sent, replies, lost, late int64
	elapsed                   time.Duration // first send to last reply
	cpu                       time.Duration // the forwarder's; -1 for none
	limited                   bool          // stopped by the time limit
	err                       error
}

func (r udpRun) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.replies) / r.elapsed.Seconds()
}

func (r udpRun) loss() float64 {
	if r.sent == 0 {
		return 0
	}
	return float64(r.sent-r.replies) / float64(r.sent)
}

// Datagram states.
const (
	unsent uint8 = iota
	outstanding
	answered
	lost
)

// udpLoad sends n datagrams of size bytes to addr from one socket, at most
// window unanswered at a time, each carrying its sequence number, and counts
// the echoes. It stops after n or after limit.
func udpLoad(ctx context.Context, addr string, size, n, window int, limit time.Duration) udpRun {
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return udpRun{err: err}
	}
	conn, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		return udpRun{err: err}
	}
	defer conn.Close()
	_ = conn.SetReadBuffer(4 << 20)
	_ = conn.SetWriteBuffer(4 << 20)

	var (
		mu       sync.Mutex
		cond     = sync.NewCond(&mu)
		state    = make([]uint8, n)
		sentAt   = make([]time.Time, n)
		inFlight int
		r        udpRun
		stop     bool // the sender must stop: limit, context or error
		sendDone bool
		low      int // no datagram below low is outstanding
		lastRecv time.Time
	)
	start := time.Now()
	deadline := start.Add(limit)

	// expire marks the datagrams unanswered for lossTimeout as lost, all
	// outstanding ones when all is set. mu is held.
	expire := func(now time.Time, all bool) {
		for low < int(r.sent) && state[low] != outstanding {
			low++
		}
		for i := low; i < int(r.sent); i++ {
			if state[i] == outstanding && (all || now.Sub(sentAt[i]) > lossTimeout) {
				state[i] = lost
				inFlight--
				r.lost++
			}
		}
		cond.Broadcast()
	}

	go func() { // the sender
		buf := make([]byte, size)
		for seq := range n {
			mu.Lock()
			for inFlight >= window && !stop {
				cond.Wait()
			}
			if stop {
				mu.Unlock()
				break
			}
			state[seq], sentAt[seq] = outstanding, time.Now()
			inFlight++
			r.sent++
			mu.Unlock()
			binary.BigEndian.PutUint64(buf, uint64(seq))
			if _, err := conn.Write(buf); err != nil {
				// ECONNREFUSED from an earlier ICMP error and the like: the
				// datagram is lost, the run goes on.
				mu.Lock()
				if state[seq] == outstanding {
					state[seq] = lost
					inFlight--
					r.lost++
				}
				mu.Unlock()
			}
		}
		mu.Lock()
		sendDone = true
		cond.Broadcast()
		mu.Unlock()
	}()

	rbuf := make([]byte, 64<<10)
	lastExpire := start
	for {
		now := time.Now()
		mu.Lock()
		if !stop && (now.After(deadline) || ctx.Err() != nil) {
			stop, r.limited = true, true
			cond.Broadcast()
		}
		// Once stop is set, the sender sends nothing more: it checks stop
		// under mu before it counts a datagram as outstanding.
		if (sendDone || stop) && inFlight == 0 {
			mu.Unlock()
			break
		}
		if now.Sub(lastExpire) > lossTimeout/10 {
			expire(now, false)
			lastExpire = now
		}
		mu.Unlock()

		_ = conn.SetReadDeadline(now.Add(lossTimeout / 10))
		m, err := conn.Read(rbuf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// ECONNREFUSED: an ICMP port unreachable came back; the
			// datagrams outstanding time out as lost.
			continue
		}
		if m < 8 {
			continue
		}
		seq := binary.BigEndian.Uint64(rbuf)
		mu.Lock()
		if seq < uint64(n) && state[seq] == outstanding {
			state[seq] = answered
			inFlight--
			r.replies++
			lastRecv = time.Now()
			cond.Signal()
		} else {
			r.late++
		}
		mu.Unlock()
	}
	// The sender may be waiting on the condition or sending its last
	// datagram; it stops at its next check.
	mu.Lock()
	stop = true
	cond.Broadcast()
	for !sendDone {
		cond.Wait()
	}
	expire(time.Now(), true)
	out := r
	mu.Unlock()
	if !lastRecv.IsZero() {
		out.elapsed = lastRecv.Sub(start)
	}
	out.cpu = -1
	if out.sent < int64(n) {
		out.limited = true
	}
	return out
}

func udpMode(ctx context.Context, c *config) (*benchmd.Section, error) {
	sizes, _ := parseSizes(c.sizes)
	s := benchmd.New("forward UDP: datagrams echoed direct, through portkit and socat",
		fmt.Sprintf("%d rounds of %s datagrams per path and size, at most %d outstanding, order rotated each round",
			c.rounds, benchmd.Count(int64(c.datagrams)), c.window))
	srv, err := startServer(ctx, c, "-udp-echo", local(echoPort))
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	paths := []*path{{name: "direct", port: echoPort}}
	if c.portkitOK {
		paths = append(paths, portkitPath(c, "udp", udpBase+1, echoPort))
	}
	paths = append(paths, socatPath("udp", udpBase+2, echoPort))
	if err := startPaths(ctx, c, "udp", paths); err != nil {
		return nil, err
	}
	defer stopPaths(paths)

	runs := make([][][]udpRun, len(sizes))
	for i := range runs {
		runs[i] = make([][]udpRun, len(paths))
	}
	batch := 0
	for round := range c.rounds {
		for si, size := range sizes {
			for _, pi := range benchmd.Rotated(len(paths), batch) {
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
				r := udpLoad(ctx, p.addr(), size, c.datagrams, c.window, c.limit)
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				if p.p != nil {
					if after, err := proc.TreeCPU(p.p.Pid()); err == nil {
						r.cpu = after - before
					}
				}
				fmt.Fprintf(c.stderr, "udp: round %d/%d, %d bytes, %s: %d sent, %d replies, %d lost, %d late in %v: %.0f replies/s\n",
					round+1, c.rounds, size, p.name, r.sent, r.replies, r.lost, r.late, r.elapsed.Round(time.Millisecond), r.rate())
				runs[si][pi] = append(runs[si][pi], r)
				pause(ctx, 500*time.Millisecond)
			}
			batch++
		}
	}
	udpReport(s, c, sizes, paths, runs)
	return s, nil
}

func udpReport(s *benchmd.Section, c *config, sizes []int, paths []*path, runs [][][]udpRun) {
	s.Notes = append(s.Notes, fmt.Sprintf("One connected UDP socket per run sends datagrams carrying a sequence number, "+
		"at most %d unanswered at a time, to `bench/cmd/fwdtarget -udp-echo %s`, directly or through the forwarder "+
		"(so one UDP session, or one socat fork, per run). replies/s counts echoes from the first send to the last "+
		"reply; a datagram unanswered after %v is lost (and frees its place in the window). Each run is bounded by "+
		"%s datagrams and %v. Figures are medians over the rounds (\"vs direct\": of the ratios within each round); CPU per datagram is the forwarder's user+system "+
		"time, its forks included, over the replies.", c.window, local(echoPort), lossTimeout, benchmd.Count(int64(c.datagrams)), c.limit))
	if !c.portkitOK {
		s.Fail("portkit rows not run: %s", c.portkitWhy)
	}
	head := []string{"path", "forwarder command line"}
	for _, size := range sizes {
		head = append(head, fmt.Sprintf("%d B replies/s", size), "vs direct", "loss", "CPU per datagram")
	}
	t := &benchmd.Table{Head: head, Align: []string{"", "---"}}
	rate := make([][]float64, len(sizes))
	byRound := make([][][]float64, len(sizes)) // NaN for a failed run
	for si := range sizes {
		rate[si] = make([]float64, len(paths))
		byRound[si] = make([][]float64, len(paths))
		for pi := range paths {
			var xs []float64
			for _, r := range runs[si][pi] {
				x := math.NaN()
				if r.err == nil {
					x = r.rate()
					xs = append(xs, x)
				}
				byRound[si][pi] = append(byRound[si][pi], x)
			}
			rate[si][pi] = benchmd.Median(xs)
		}
	}
	for pi, p := range paths {
		row := []string{p.name, p.cmdLine()}
		for si := range sizes {
			var loss, cpu []float64
			for _, r := range runs[si][pi] {
				if r.err != nil {
					continue
				}
				loss = append(loss, r.loss())
				if r.cpu >= 0 && r.replies > 0 {
					cpu = append(cpu, float64(r.cpu)/float64(r.replies))
				}
			}
			cpuCell := "–"
			if p.argv != nil {
				cpuCell = "n/a"
				if len(cpu) > 0 {
					cpuCell = benchmd.Dur(time.Duration(benchmd.Median(cpu)))
				}
			}
			row = append(row, benchmd.Num(rate[si][pi]), fmtRatio(benchmd.PairedRatio(byRound[si][pi], byRound[si][0])),
				fmt.Sprintf("%.2f%%", 100*benchmd.Median(loss)), cpuCell)
		}
		t.Row(row...)
	}
	s.Tables = append(s.Tables, t.String())

	var groups []string
	for _, size := range sizes {
		groups = append(groups, fmt.Sprintf("%d B", size))
	}
	s.Tables = append(s.Tables, everyRun("Every run in the order taken: replies/s (lost of sent):", paths, groups, c.rounds,
		func(pi, si int) int { return len(runs[si][pi]) },
		func(pi, si, k int) string {
			r := runs[si][pi][k]
			if r.err != nil {
				return benchmd.ErrCell(r.err)
			}
			cell := fmt.Sprintf("%s (%s of %s)", benchmd.Num(r.rate()), benchmd.Count(r.sent-r.replies), benchmd.Count(r.sent))
			if r.limited {
				cell += ", time limit"
			}
			return cell
		}))
	for pi, p := range paths {
		for si := range sizes {
			for _, r := range runs[si][pi] {
				if r.err != nil {
					s.Fail("%s, %d bytes: a run failed: %v", p.name, sizes[si], r.err)
				}
			}
		}
	}
	if !c.portkitOK {
		s.AddTarget(false, "portkit forward measured", "no forward command in "+c.portkit)
	}
}
