package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portkit/portkit/bench/internal/benchmd"
	"github.com/portkit/portkit/bench/internal/proc"
)

// fetchMetrics GETs http://addr/metrics with a plain HTTP/1.0 request and
// returns the samples without labels, by name.
func fetchMetrics(ctx context.Context, addr string) (map[string]float64, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET /metrics HTTP/1.0\r\nHost: fwdbench\r\n\r\n"); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(conn, 16<<20))
	if err != nil {
		return nil, err
	}
	head, text, ok := strings.Cut(string(body), "\r\n\r\n")
	if !ok || !strings.Contains(strings.SplitN(head, "\r\n", 2)[0], " 200") {
		first, _, _ := strings.Cut(head, "\r\n")
		return nil, fmt.Errorf("GET http://%s/metrics: %q", addr, first)
	}
	return parseMetrics(text), nil
}

// parseMetrics reads the Prometheus text format, keeping the samples that
// have no labels.
func parseMetrics(text string) map[string]float64 {
	m := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || strings.ContainsRune(f[0], '{') {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			m[f[0]] = v
		}
	}
	return m
}

// idleSnapshot is the forwarder's state at one moment.
type idleSnapshot struct {
	rss        int64          // VmRSS, bytes
	fds        int            // entries of /proc/PID/fd
	kinds      map[string]int // fds by kind
	goroutines int            // go_goroutines; -1 when not reported
	openFDs    int            // process_open_fds; -1 when not reported
}

// maxPooledPipeFDs bounds the pipe descriptors that may outlive the
// connections: portkit keeps at most 8 splice pipes in its pool for the
// next connections, not one per connection. A leak would leave thousands
// here.
const maxPooledPipeFDs = 16

// nonPipe is the fds other than pipes: sockets above all.
func (s idleSnapshot) nonPipe() int { return s.fds - s.kinds["pipe"] }

func (s idleSnapshot) fdString() string {
	var parts []string
	keys := make([]string, 0, len(s.kinds))
	for k := range s.kinds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %s", benchmd.Count(int64(s.kinds[k])), k))
	}
	return fmt.Sprintf("%s (%s)", benchmd.Count(int64(s.fds)), strings.Join(parts, ", "))
}

// snapshot counts the fds and reads the RSS first, then the metrics, so
// that the metrics request's own connection is not among the fds counted
// (the goroutine serving it is among the goroutines, in every snapshot
// alike).
func snapshot(ctx context.Context, pid int, metrics string) (idleSnapshot, error) {
	s := idleSnapshot{goroutines: -1, openFDs: -1}
	var err error
	if s.kinds, s.fds, err = proc.FDCounts(pid); err != nil {
		return s, err
	}
	if s.rss, err = proc.StatusKB(pid, "VmRSS"); err != nil {
		return s, err
	}
	m, err := fetchMetrics(ctx, metrics)
	if err != nil {
		return s, err
	}
	if v, ok := m["go_goroutines"]; ok {
		s.goroutines = int(v)
	}
	if v, ok := m["process_open_fds"]; ok {
		s.openFDs = int(v)
	}
	return s, nil
}

// settled takes snapshots until two in a row, 500 ms apart, agree on fds
// and goroutines, or until timeout; it returns the last.
func settled(ctx context.Context, pid int, metrics string, timeout time.Duration) (idleSnapshot, error) {
	deadline := time.Now().Add(timeout)
	prev, err := snapshot(ctx, pid, metrics)
	for err == nil && time.Now().Before(deadline) && ctx.Err() == nil {
		pause(ctx, 500*time.Millisecond)
		var cur idleSnapshot
		if cur, err = snapshot(ctx, pid, metrics); err != nil {
			break
		}
		if cur.fds == prev.fds && cur.goroutines == prev.goroutines {
			return cur, nil
		}
		prev = cur
	}
	return prev, err
}

// holdConns opens n connections to addr, conc at a time, each proven
// established through to the echo server by one byte echoed back, within
// limit. It returns those it opened and the first error.
func holdConns(ctx context.Context, addr string, n, conc int, limit time.Duration) ([]net.Conn, int, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var (
		mu       sync.Mutex
		conns    []net.Conn
		failed   int
		firstErr error
		wg       sync.WaitGroup
	)
	jobs := make(chan struct{})
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				c, err := openEchoed(ctx, addr)
				mu.Lock()
				if err != nil {
					failed++
					if firstErr == nil {
						firstErr = err
					}
				} else {
					conns = append(conns, c)
				}
				mu.Unlock()
			}
		}()
	}
	for range n {
		select {
		case jobs <- struct{}{}:
			continue
		case <-ctx.Done():
		}
		break
	}
	close(jobs)
	wg.Wait()
	if firstErr == nil && len(conns) < n {
		firstErr = fmt.Errorf("time limit of %v reached", limit)
	}
	return conns, failed, firstErr
}

func openEchoed(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	_, err = c.Write([]byte{'x'})
	if err == nil {
		_, err = io.ReadFull(c, b[:])
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	if b[0] != 'x' {
		c.Close()
		return nil, errors.New("the echo server sent back something else")
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

func idleMode(ctx context.Context, c *config) (*benchmd.Section, error) {
	s := benchmd.New(fmt.Sprintf("forward idle connections: %s held open through portkit", benchmd.Count(int64(c.conns))),
		"one run")
	if !c.portkitOK {
		s.Fail("portkit rows not run: %s", c.portkitWhy)
		s.AddTarget(false, "portkit forward measured", "no forward command in "+c.portkit)
		return s, nil
	}
	srv, err := startServer(ctx, c, "-echo", local(echoPort))
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	metrics := local(metricsPort)
	// Every idle connection comes from 127.0.0.1: the default bound of 256
	// per client address would refuse all but the first 256.
	p := portkitPath(c, "tcp", idleBase+1, echoPort, "--metrics", metrics, "--max-conns-per-source", "0")
	paths := []*path{p}
	if err := startPaths(ctx, c, "tcp", paths); err != nil {
		return nil, err
	}
	defer stopPaths(paths)
	if err := proc.WaitListening(ctx, p.p, "tcp", metricsPort, 10*time.Second); err != nil {
		return nil, err
	}
	pid := p.p.Pid()
	fdsPerConn := 0

	// A hundred connections first: the baseline is then a forwarder that
	// has served traffic (its first connection sets up what later ones
	// share), and they tell how many fds a connection takes, which with the
	// open-file limit bounds how many it can hold.
	pause(ctx, 500*time.Millisecond)
	fresh, err := settled(ctx, pid, metrics, 5*time.Second)
	if err != nil {
		return nil, err
	}
	const probeConns = 100
	probe, _, err := holdConns(ctx, p.addr(), probeConns, 10, 20*time.Second)
	if err == nil {
		pause(ctx, 500*time.Millisecond)
		var during idleSnapshot
		if during, err = snapshot(ctx, pid, metrics); err == nil {
			// Pipes are left out: portkit holds a splice pipe only while
			// bytes move, and pools a few, so they do not grow with the
			// connections held.
			fdsPerConn = (during.nonPipe() - fresh.nonPipe() + probeConns - 1) / probeConns
		}
	}
	for _, w := range probe {
		w.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("the first %d connections through portkit: %v", probeConns, err)
	}
	pause(ctx, time.Second)
	base, err := settled(ctx, pid, metrics, 10*time.Second)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c.stderr, "idle: baseline RSS %d KiB, fds %s, goroutines %d; %d fds per connection\n",
		base.rss>>10, base.fdString(), base.goroutines, fdsPerConn)

	// The connections asked for, or as many as portkit's open-file limit
	// leaves room for (with 1% and 100 to spare), whichever is fewer.
	n := c.conns
	nofile, err := maxOpenFiles(pid)
	if err != nil {
		return nil, err
	}
	if fdsPerConn > 0 {
		if room := (nofile - nofile/100 - 100 - base.fds) / fdsPerConn; room < n {
			n = max(room, 0)
			s.Warn("%s connections asked for, %s held: portkit may open %s files (its RLIMIT_NOFILE; "+
				"raising the hard limit needs CAP_SYS_RESOURCE) and takes %d fds per connection",
				benchmd.Count(int64(c.conns)), benchmd.Count(int64(n)), benchmd.Count(int64(nofile)), fdsPerConn)
			s.Title = fmt.Sprintf("forward idle connections: %s held open through portkit (%s asked for)",
				benchmd.Count(int64(n)), benchmd.Count(int64(c.conns)))
		}
	}

	t0 := time.Now()
	conns, failed, openErr := holdConns(ctx, p.addr(), n, 64, c.limit)
	openTime := time.Since(t0)
	fmt.Fprintf(c.stderr, "idle: %d of %d connections established through portkit in %v (%d failed, %v)\n",
		len(conns), n, openTime.Round(time.Millisecond), failed, openErr)
	defer func() {
		for _, cn := range conns {
			cn.Close()
		}
	}()
	pause(ctx, time.Second)
	loaded, err := snapshot(ctx, pid, metrics)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c.stderr, "idle: loaded RSS %d KiB, fds %s, goroutines %d\n", loaded.rss>>10, loaded.fdString(), loaded.goroutines)

	for _, cn := range conns {
		cn.Close()
	}
	held := len(conns)
	conns = nil
	// First the fds, from /proc alone, then the goroutines (a metrics
	// request opens a socket of its own).
	t1 := time.Now()
	deadline := t1.Add(c.settle)
	var after idleSnapshot
	fdsBack, grBack := time.Duration(-1), time.Duration(-1)
	for ctx.Err() == nil {
		after.kinds, after.fds, err = proc.FDCounts(pid)
		if err != nil {
			return nil, err
		}
		if after.nonPipe() <= base.nonPipe() && after.kinds["pipe"] <= base.kinds["pipe"]+maxPooledPipeFDs {
			fdsBack = time.Since(t1)
			break
		}
		if time.Now().After(deadline) {
			break
		}
		pause(ctx, 250*time.Millisecond)
	}
	for ctx.Err() == nil {
		m, err := fetchMetrics(ctx, metrics)
		if err != nil {
			return nil, err
		}
		after.goroutines, after.openFDs = -1, -1
		if v, ok := m["go_goroutines"]; ok {
			after.goroutines = int(v)
		}
		if v, ok := m["process_open_fds"]; ok {
			after.openFDs = int(v)
		}
		if after.goroutines <= base.goroutines {
			grBack = time.Since(t1)
			break
		}
		if time.Now().After(deadline) {
			break
		}
		pause(ctx, 250*time.Millisecond)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if after.rss, err = proc.StatusKB(pid, "VmRSS"); err != nil {
		return nil, err
	}
	// Once metrics requests have been made (and allocated), the fds again.
	pause(ctx, time.Second)
	laterKinds, laterFDs, err := proc.FDCounts(pid)
	if err != nil {
		return nil, err
	}
	later := idleSnapshot{kinds: laterKinds, fds: laterFDs}
	fmt.Fprintf(c.stderr, "idle: after closing, RSS %d KiB, fds %s (back: %v), goroutines %d (back: %v); fds after the metrics requests %s\n",
		after.rss>>10, after.fdString(), fdsBack, after.goroutines, grBack, later.fdString())

	perConn := float64(loaded.rss-base.rss) / float64(max(held, 1)) / 1024
	s.Setup = fmt.Sprintf("one run, %s connections opened 64 at a time", benchmd.Count(int64(n)))
	s.Notes = append(s.Notes, fmt.Sprintf("portkit runs as `%s` to `bench/cmd/fwdtarget -echo %s`. "+
		"Each connection is held open once one byte has been echoed back through it (so it is established through "+
		"to the server); the snapshot is taken 1 s after the last is open. A hundred connections are opened and "+
		"closed before the baseline, and tell the fds per connection. RSS is VmRSS from /proc/PID/status; fds are /proc/PID/fd by kind; goroutines are "+
		"`go_goroutines` from `GET http://%s/metrics`. After all are closed, the fds are polled every 250 ms "+
		"from /proc alone (no metrics request, which opens a socket of its own) until they are back to the baseline "+
		"(portkit may keep up to 8 splice pipes in its pool for the next connections), then the goroutines, for up to %v in all.", commandLine(p.argv), local(echoPort), metrics, c.settle))
	t := &benchmd.Table{Head: []string{"", "baseline", fmt.Sprintf("%s open", benchmd.Count(int64(held))), "after closing", "per connection"},
		Align: []string{"", "---:"}}
	t.Row("RSS", fmt.Sprintf("%.1f MiB", float64(base.rss)/(1<<20)), fmt.Sprintf("%.1f MiB", float64(loaded.rss)/(1<<20)),
		fmt.Sprintf("%.1f MiB", float64(after.rss)/(1<<20)), fmt.Sprintf("%.1f KiB", perConn))
	t.Row("open fds (/proc/PID/fd)", base.fdString(), loaded.fdString(), after.fdString(),
		benchmd.Num(float64(loaded.fds-base.fds)/float64(max(held, 1))))
	t.Row("goroutines", benchmd.Count(int64(base.goroutines)), benchmd.Count(int64(loaded.goroutines)), benchmd.Count(int64(after.goroutines)),
		benchmd.Num(float64(loaded.goroutines-base.goroutines)/float64(max(held, 1))))
	if loaded.openFDs >= 0 {
		t.Row("`process_open_fds`, a moment later", benchmd.Count(int64(base.openFDs)), benchmd.Count(int64(loaded.openFDs)), benchmd.Count(int64(after.openFDs)), "")
	}
	s.Tables = append(s.Tables, t.String())
	s.Notes = append(s.Notes, fmt.Sprintf("Opening the %s connections took %v; %s failed.",
		benchmd.Count(int64(held)), openTime.Round(time.Millisecond), benchmd.Count(int64(failed))))

	if n < c.conns {
		// The target asked for is not what was run: say so, not PASS.
		s.AddTarget(false, fmt.Sprintf("%s connections held through portkit", benchmd.Count(int64(c.conns))),
			fmt.Sprintf("not run: the open-file limit leaves room for %s", benchmd.Count(int64(n))))
	}
	s.AddTarget(held == n && openErr == nil, fmt.Sprintf("all %s connections established through portkit", benchmd.Count(int64(n))),
		fmt.Sprintf("%s established%s", benchmd.Count(int64(held)), errDetail(openErr)))
	s.AddTarget(perConn <= 20, "portkit RSS <= 20 KiB per forwarded connection", fmt.Sprintf("%.1f KiB", perConn))
	backWhen := func(d time.Duration) string {
		if d < 0 {
			return fmt.Sprintf("not within %v", c.settle)
		}
		return fmt.Sprintf("after %v", d.Round(10*time.Millisecond))
	}
	s.AddTarget(fdsBack >= 0, fmt.Sprintf("portkit's open fds back to the baseline once all are closed (pipes: at most %d more, portkit's splice pool)", maxPooledPipeFDs),
		fmt.Sprintf("%s, baseline %s, %s", after.fdString(), benchmd.Count(int64(base.fds)), backWhen(fdsBack)))
	s.AddTarget(base.goroutines >= 0 && grBack >= 0, "portkit's goroutines back to the baseline once all are closed",
		fmt.Sprintf("%d, baseline %d, %s, checked once the fds were back or their wait was over",
			after.goroutines, base.goroutines, backWhen(grBack)))
	if fdsBack < 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("The fds left over %v after the last connection closed were %s; "+
			"1 s after the metrics requests of the goroutine check, %s. Pipes left over beyond the 8 "+
			"that portkit's splice pool keeps (16 descriptors) would be a leak.",
			c.settle, after.fdString(), later.fdString()))
	}
	return s, nil
}

func errDetail(err error) string {
	if err == nil {
		return ""
	}
	return "; first error: " + err.Error()
}

// maxOpenFiles reads the soft limit on open files of pid from
// /proc/PID/limits.
func maxOpenFiles(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				if f[0] == "unlimited" {
					return math.MaxInt32, nil
				}
				return strconv.Atoi(f[0])
			}
		}
	}
	return 0, fmt.Errorf("/proc/%d/limits has no Max open files", pid)
}
