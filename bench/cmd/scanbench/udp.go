package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/portkit/portkit/bench/harness"
)

// The UDP benchmark (issue 11): `portkit scan -U` against `nmap -sU` on a
// target with a DNS responder on 53, UDP echo on 7 and 777, port 161 bound
// and silent, every other port closed, under each of the rows below.

// udpRow is one row: the target's state, the ports, and what portkit is
// held to.
type udpRow struct {
	name    string
	ports   string // -p of both tools
	lifted  bool   // the target's ICMP limits lifted; else the kernel's defaults
	drop    bool   // nftables drops every UDP packet to the target
	silent  bool   // 161 bound and silent; else closed
	sources string // portkit's --source-addrs; "" for none
	slow    bool   // minutes a run: runs -slow-runs times, no warmup
	nmap    bool   // nmap runs this row
	vsRow   int    // the row whose nmap runs portkit is compared with; -1: its own
	target  float64
	why     string // what the target says, for the report
}

// udpServices are the fixture's answering ports and their state.
var udpServices = map[uint16]string{7: "open", 53: "open", 777: "open"}

// udpRows are the benchmark's rows; sources is the scanner's extra
// addresses (-source-addrs).
func udpRows(sources string) []udpRow {
	return []udpRow{
		{name: "ICMP limit lifted", ports: "1-1000", lifted: true, silent: true, nmap: true, vsRow: -1, target: 0.5},
		{name: "the same without the silent port 161", ports: "1-1000", lifted: true, nmap: true, vsRow: -1, target: 0.5},
		{name: "port 161 alone", ports: "161", lifted: true, silent: true, nmap: true, vsRow: -1, target: 0.5},
		{name: "every UDP packet dropped by nftables", ports: "1-1000", lifted: true, drop: true, silent: true, nmap: true, vsRow: -1, target: 0.5},
		{name: "Linux default ICMP limit (capped at ports 1-100)", ports: "1-100", silent: true, slow: true, nmap: true, vsRow: -1,
			why: "no target: one address's ICMP budget bounds both tools"},
		{name: "the same, portkit from 16 source addresses", ports: "1-100", silent: true, sources: sources, vsRow: 4, target: 0.1},
	}
}

// truth is the state every port of the row should be reported in.
func (r udpRow) truth() (map[uint16]string, error) {
	ports, err := parsePortRanges(r.ports)
	if err != nil {
		return nil, err
	}
	t := map[uint16]string{}
	for _, p := range ports {
		st := "closed"
		switch {
		case r.drop:
			st = "open|filtered"
		case udpServices[p] != "":
			st = udpServices[p]
		case p == 161 && r.silent:
			st = "open|filtered"
		}
		t[p] = st
	}
	return t, nil
}

// udpRun is one run of a tool on a row.
type udpRun struct {
	wall  time.Duration
	wrong []string // ports in another state than the truth's: "161 closed (want open|filtered)"
	err   error
}

// udpResult is a row's runs.
type udpResult struct {
	row            udpRow
	portkit, nmap  harness.Command
	pkRuns, nmRuns []udpRun
}

// udpFixture runs bench/cmd/udpfixture in the target namespace, with 161
// silent or not, until stop.
type udpFixture struct {
	cmd *exec.Cmd
}

func (c *config) startUDPFixture(ctx context.Context, silent bool) (*udpFixture, error) {
	ready := filepath.Join(c.tmp, fmt.Sprintf("udpfixture-%d.ready", time.Now().UnixNano()))
	silentPorts := ""
	if silent {
		silentPorts = "161"
	}
	cmd := exec.Command("ip", "netns", "exec", c.targetNS, c.udpFixture, "-host", c.udpHost,
		"-silent", silentPorts, "-ready", ready, "-max-lifetime", "40m")
	cmd.Stderr = c.log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %v", c.udpFixture, err)
	}
	f := &udpFixture{cmd: cmd}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			return f, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			f.stop()
			return nil, fmt.Errorf("%s was not ready within 10 s", c.udpFixture)
		}
	}
}

// stop ends the fixture (`ip netns exec` has become it: the signal is its).
func (f *udpFixture) stop() {
	f.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { f.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		f.cmd.Process.Kill()
		<-done
	}
}

// inTarget runs a command in the target namespace.
func (c *config) inTarget(ctx context.Context, stdin string, args ...string) error {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", c.targetNS}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s in %s: %v: %s", strings.Join(args, " "), c.targetNS, err, bytes.TrimSpace(out))
	}
	return nil
}

// The kernel's ICMP settings of the target namespace: limits lifted, and
// its defaults, read before the first row.
var icmpKeys = []string{"net.ipv4.icmp_ratelimit", "net.ipv4.icmp_msgs_per_sec", "net.ipv4.icmp_msgs_burst"}

const udpDropTable = "pkudpbench"

func (c *config) icmpDefaults(ctx context.Context) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", c.targetNS, "sysctl", "-n"}, icmpKeys...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("sysctl in %s: %v", c.targetNS, err)
	}
	vals := strings.Fields(string(out))
	if len(vals) != len(icmpKeys) {
		return nil, fmt.Errorf("sysctl in %s: %q", c.targetNS, out)
	}
	settings := make([]string, len(vals))
	for i, v := range vals {
		settings[i] = icmpKeys[i] + "=" + v
	}
	return settings, nil
}

// setRow puts the target in the row's state.
func (c *config) setRow(ctx context.Context, r udpRow, defaults []string) error {
	settings := defaults
	if r.lifted {
		settings = []string{"net.ipv4.icmp_ratelimit=0", "net.ipv4.icmp_msgs_per_sec=1000000", "net.ipv4.icmp_msgs_burst=1000000"}
	}
	if err := c.inTarget(ctx, "", append([]string{"sysctl", "-qw"}, settings...)...); err != nil {
		return err
	}
	// The drop table, removed if there (an error when it is not is fine).
	_ = c.inTarget(ctx, "", "nft", "delete", "table", "inet", udpDropTable)
	if r.drop {
		return c.inTarget(ctx, "table inet "+udpDropTable+" {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t\tmeta l4proto udp drop\n\t}\n}\n", "nft", "-f", "-")
	}
	return nil
}

// udpOnce runs one command and compares its states with the truth.
func (c *config) udpOnce(ctx context.Context, t tool, truth map[uint16]string) udpRun {
	f, err := os.CreateTemp(c.tmp, "udp-*")
	if err != nil {
		return udpRun{err: err}
	}
	defer os.Remove(f.Name())
	defer f.Close()
	runCtx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	cmd := toolCommand(runCtx, t, c.tmp)
	cmd.Stdout = f
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 3 * time.Second
	t0 := time.Now()
	err = cmd.Run()
	wall := time.Since(t0)
	if runCtx.Err() != nil {
		return udpRun{wall: wall, err: fmt.Errorf("timed out after %v", t.timeout)}
	}
	var exitErr *exec.ExitError
	if err != nil && (!errors.As(err, &exitErr) || !slices.Contains(t.allowExit, exitErr.ExitCode())) {
		return udpRun{wall: wall, err: fmt.Errorf("%v: %s", err, lastLine(stderr.String()))}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return udpRun{wall: wall, err: err}
	}
	res, err := t.parse(f)
	if err != nil {
		return udpRun{wall: wall, err: err}
	}
	got := map[uint16]string{}
	for k, st := range res.states {
		if k.addr.String() == c.udpHost {
			got[k.port] = st
		}
	}
	for st, n := range res.unlisted {
		// nmap folds ports without listing them only before 7.80.
		return udpRun{wall: wall, err: fmt.Errorf("%d ports %s not listed", n, st)}
	}
	run := udpRun{wall: wall}
	ports := slices.Sorted(func(yield func(uint16) bool) {
		for p := range truth {
			if !yield(p) {
				return
			}
		}
	})
	for _, p := range ports {
		if got[p] != truth[p] {
			run.wrong = append(run.wrong, fmt.Sprintf("%d %s (want %s)", p, cmpOr(got[p], "missing"), truth[p]))
		}
	}
	if len(got) > len(truth) {
		run.wrong = append(run.wrong, fmt.Sprintf("%d ports not scanned reported", len(got)-len(truth)))
	}
	return run
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// udp: the rows, each with its fixture and kernel settings; portkit and
// nmap alternate within a row.
func udp(ctx context.Context, c *config) (*report, error) {
	if c.targetNS == "" || c.udpFixture == "" {
		return nil, errors.New("udp needs -target-ns and -udp-fixture")
	}
	defaults, err := c.icmpDefaults(ctx)
	if err != nil {
		return nil, err
	}
	start, load0 := time.Now(), loadAverage()
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.setRow(cctx, udpRow{}, defaults)
	}()
	var results []*udpResult
	for _, row := range udpRows(c.udpSources) {
		truth, err := row.truth()
		if err != nil {
			return nil, err
		}
		if err := c.setRow(ctx, row, defaults); err != nil {
			return nil, err
		}
		fx, err := c.startUDPFixture(ctx, row.silent)
		if err != nil {
			return nil, err
		}
		res := c.udpRow(ctx, row, truth)
		fx.stop()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		results = append(results, res)
	}
	r := c.newReport("scan UDP: portkit scan -U vs nmap -sU", nil)
	r.start = start
	r.udpMD, r.pass = c.udpMarkdown(results, start, load0, loadAverage(), defaults)
	return r, nil
}

// udpRow runs one row: rounds of portkit then nmap, the order alternating.
func (c *config) udpRow(ctx context.Context, row udpRow, truth map[uint16]string) *udpResult {
	args := []string{"-U", "-p", row.ports, "--rate", "0"}
	if row.sources != "" {
		args = append(args, "--source-addrs", row.sources)
	}
	pk := c.portkitTool("portkit", append(args, c.udpHost)...)
	pk.parse = portkitParser("udp")
	nm := c.nmapTool("nmap", "-sU", "-p", row.ports, "-n", "-Pn", c.udpHost)
	nm.parse = nmapParser("udp")
	runs, warmup := c.runs, c.warmup
	if row.slow {
		runs, warmup = c.slowRuns, 0
		pk.timeout, nm.timeout = c.slowTimeout, c.slowTimeout
	}
	res := &udpResult{row: row, portkit: pk.Command, nmap: nm.Command}
	tools := []tool{pk}
	if row.nmap {
		tools = append(tools, nm)
	}
	for round := range warmup + runs {
		for j := range tools {
			t := tools[(round+j)%len(tools)]
			o := c.udpOnce(ctx, t, truth)
			if ctx.Err() != nil {
				return res
			}
			label := "warmup"
			if round >= warmup {
				label = fmt.Sprintf("run %d/%d", round-warmup+1, runs)
				if t.Name == "portkit" {
					res.pkRuns = append(res.pkRuns, o)
				} else {
					res.nmRuns = append(res.nmRuns, o)
				}
			}
			state := "states as expected"
			switch {
			case o.err != nil:
				state = "FAILED: " + o.err.Error()
			case len(o.wrong) > 0:
				state = "WRONG: " + strings.Join(o.wrong, ", ")
			}
			fmt.Fprintf(c.log, "%-48s %-8s %-9s %9s  %s\n", row.name, t.Name, label, harness.FormatDuration(o.wall), state)
		}
	}
	return res
}

// runStats is the median, least and most wall time of the runs that
// succeeded, and whether every run succeeded with the right states.
func runStats(runs []udpRun) (med, lo, hi time.Duration, n int, right bool) {
	var walls []time.Duration
	right = len(runs) > 0
	for _, o := range runs {
		if o.err != nil || len(o.wrong) > 0 {
			right = false
		}
		if o.err == nil {
			walls = append(walls, o.wall)
		}
	}
	if len(walls) == 0 {
		return 0, 0, 0, 0, false
	}
	sort.Slice(walls, func(i, j int) bool { return walls[i] < walls[j] })
	return median(walls), walls[0], walls[len(walls)-1], len(walls), right
}

func median(ds []time.Duration) time.Duration {
	n := len(ds)
	if n%2 == 1 {
		return ds[n/2]
	}
	return (ds[n/2-1] + ds[n/2]) / 2
}

// roundRatios are portkit's time over nmap's within each round, sorted:
// on a busy machine they say more than the medians.
func roundRatios(pk, nm []udpRun) []float64 {
	var rs []float64
	for i := range min(len(pk), len(nm)) {
		if pk[i].err == nil && nm[i].err == nil && nm[i].wall > 0 {
			rs = append(rs, pk[i].wall.Seconds()/nm[i].wall.Seconds())
		}
	}
	sort.Float64s(rs)
	return rs
}

func timeCell(runs []udpRun) string {
	med, lo, hi, n, _ := runStats(runs)
	if n == 0 {
		return "n/a"
	}
	if n == 1 {
		return harness.FormatDuration(med)
	}
	return fmt.Sprintf("%s (%s–%s)", harness.FormatDuration(med), harness.FormatDuration(lo), harness.FormatDuration(hi))
}

func statesCell(runs []udpRun) string {
	if len(runs) == 0 {
		return "—"
	}
	var bad []string
	for i, o := range runs {
		switch {
		case o.err != nil:
			bad = append(bad, fmt.Sprintf("run %d failed: %v", i+1, o.err))
		case len(o.wrong) > 0:
			w := o.wrong
			if len(w) > 5 {
				w = append(w[:5:5], fmt.Sprintf("and %d more", len(o.wrong)-5))
			}
			bad = append(bad, fmt.Sprintf("run %d: %s", i+1, strings.Join(w, ", ")))
		}
	}
	if len(bad) == 0 {
		return fmt.Sprintf("right, %s", plural(len(runs), "run"))
	}
	return strings.Join(bad, "; ")
}

func (c *config) udpMarkdown(results []*udpResult, start time.Time, load0, load1 string, defaults []string) (string, bool) {
	var b strings.Builder
	pass := true
	fmt.Fprintf(&b, "**scan UDP: `portkit scan -U` vs `nmap -sU`, states compared per port** — %s, %s %s, %d CPUs, %d runs per tool and row (+%d warmup) unless the table says fewer, the order alternating each round; load average %s at the start, %s at the end\n\n",
		start.UTC().Format("2006-01-02 15:04 UTC"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), c.runs, c.warmup, load0, load1)
	b.WriteString(c.producedBy() + "\n\n")
	fmt.Fprintf(&b, "Fixture: two network namespaces joined by a veth pair, scanner 198.18.0.1/24 with the extra addresses %s (each a /32 on its veth), target %s/24, "+
		"where `bench/cmd/udpfixture` answers DNS queries on port 53, echoes datagrams on 7 and 777, and holds 161 bound without answering (no port unreachable: silent); "+
		"every other port is closed. The truth of every port is known, and every run of either tool is compared with it port by port. "+
		"\"ICMP limit lifted\" is `sysctl net.ipv4.icmp_ratelimit=0` and the global limit raised (`net.ipv4.icmp_msgs_per_sec=1000000`, `net.ipv4.icmp_msgs_burst=1000000`): "+
		"with the global default of 1,000 a second, 50 at once, a scan of 1,000 closed ports outruns it. The default-limit rows use the kernel's defaults (%s). "+
		"\"Every UDP packet dropped\" is an nftables table in the target's input hook, `meta l4proto udp drop`.\n\n",
		c.udpSources, c.udpHost, strings.Join(defaults, ", "))
	b.WriteString("portkit runs as `portkit scan -U -p PORTS --rate 0 -o jsonl --no-progress 198.18.0.2` (`--rate 0`: no rate bound, as the scan-full rows have it; -T3's 1,000 probes a second at first would make 1,000 ports take most of a second on any target), " +
		"nmap as `nmap -sU -p PORTS -n -Pn -oX - 198.18.0.2`; both from inside the scanner's namespace. " +
		"The default-limit rows are capped at ports 1-100 for both tools: at one ICMP error a second per peer the whole 1-1000 takes either tool about 1,000 s; they run " +
		times(c.slowRuns) + " each (nmap alone takes about 100 s).\n\n")
	b.WriteString("| target | ports | portkit: median (min–max) | nmap -sU: median (min–max) | portkit / nmap (medians) | portkit / nmap within each round | portkit's states | nmap's states | target |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | --- | --- | --- | --- |\n")
	var targets []string
	for i, res := range results {
		row := res.row
		nmRuns := res.nmRuns
		vs := "its own row's"
		if row.vsRow >= 0 {
			nmRuns = results[row.vsRow].nmRuns
			vs = fmt.Sprintf("row %d's", row.vsRow+1)
		}
		pkMed, _, _, _, pkRight := runStats(res.pkRuns)
		nmMed, _, _, _, _ := runStats(nmRuns)
		ratio := "n/a"
		if pkMed > 0 && nmMed > 0 {
			ratio = harness.FormatRatio(pkMed.Seconds() / nmMed.Seconds())
		}
		within := "—"
		if row.vsRow < 0 && row.nmap {
			var ws []string
			for _, x := range roundRatios(res.pkRuns, res.nmRuns) {
				ws = append(ws, strconv.FormatFloat(x, 'f', 3, 64))
			}
			within = strings.Join(ws, ", ")
		}
		pkCell := timeCell(res.pkRuns)
		if row.sources != "" {
			pkCell += fmt.Sprintf(" with `--source-addrs %s`", row.sources)
		}
		nmCell, nmStates := timeCell(res.nmRuns), statesCell(res.nmRuns)
		if !row.nmap {
			nmCell, nmStates = "(row "+strconv.Itoa(row.vsRow+1)+")", "—"
		}
		tgt := row.why
		if row.target > 0 {
			ok := pkRight && pkMed > 0 && nmMed > 0 && pkMed.Seconds() <= row.target*nmMed.Seconds()
			pass = pass && ok
			verdict := "met"
			if !ok {
				verdict = "MISSED"
			}
			tgt = fmt.Sprintf("≤ %s of %s nmap, states right every run: %s", harness.FormatRatio(row.target), vs, verdict)
			targets = append(targets, fmt.Sprintf("- row %d, %s: portkit %s, nmap %s, ratio %s (≤ %s): %s",
				i+1, row.name, harness.FormatDuration(pkMed), harness.FormatDuration(nmMed), ratio, harness.FormatRatio(row.target), verdict))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", row.name, row.ports, pkCell, nmCell, ratio, within,
			statesCell(res.pkRuns), nmStates, tgt)
	}
	b.WriteString("\n" + strings.Join(targets, "\n") + "\n")
	return b.String(), pass
}

// times says how many times: "once", "twice", "3 times".
func times(n int) string {
	switch n {
	case 1:
		return "once"
	case 2:
		return "twice"
	}
	return plural(n, "time")
}

// loadAverage is the one-minute load average, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "unknown"
}
