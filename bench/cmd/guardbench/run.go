//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/portkit/portkit/bench/harness"
)

// alert is one detector's report as guardbench received it.
type alert struct {
	at   time.Time
	trig time.Time // guard's: the time of the packet that set it off
	src  string
	kind string // the type guard named; scanlogd's TCP flags
	// guard's alert: its phase and scan id and the number of sources (a
	// source may first appear in an update of a scan it joined)
	phase   string
	id      int
	sources int
	line    string
}

// log collects the alerts of one detector.
type log struct {
	mu     sync.Mutex
	alerts []alert
}

func (l *log) add(a alert) { l.mu.Lock(); l.alerts = append(l.alerts, a); l.mu.Unlock() }

// first returns the first alert from src at or after t.
func (l *log) first(src string, t time.Time) (alert, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.alerts {
		if a.src == src && !a.at.Before(t) {
			return a, true
		}
	}
	return alert{}, false
}

func (l *log) from(src string) []alert {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []alert
	for _, a := range l.alerts {
		if a.src == src {
			out = append(out, a)
		}
	}
	return out
}

type config struct {
	sns, tns, sIface, mac, plan, portkit, self, devdir, md, section, command string
	psadConf, psadLog                                                        string
	floodCount                                                               int
	floodFor                                                                 time.Duration
	// repeat runs every scan that many times, each from a new source;
	// scansOnly leaves out the benign traffic and the flood (and the
	// markdown file: the section is a whole run's).
	repeat    int
	scansOnly bool
}

// row is one scan: a tool's command from its own source address.
type row struct {
	name, want string
	argv       []string // {SRC} is replaced by the source, {PORTS} by the ports
}

// maxRepeat bounds -repeat: each run of each of the 13 scans has its own
// source address, 198.18.0.10 on.
const maxRepeat = 18

func runBench(args []string) error {
	start, load0 := time.Now(), loadavg()
	var c config
	fl := flag.NewFlagSet("run", flag.ContinueOnError)
	fl.StringVar(&c.sns, "scanner-ns", "", "scanner namespace (its veth has its name)")
	fl.StringVar(&c.tns, "target-ns", "", "target namespace")
	fl.StringVar(&c.mac, "router-mac", "", "the target's MAC, for masscan")
	fl.StringVar(&c.plan, "plan", "", "the fixture's plan")
	fl.StringVar(&c.portkit, "portkit", "bin/portkit", "portkit binary")
	fl.StringVar(&c.self, "self", "bin/guardbench", "this binary")
	fl.StringVar(&c.devdir, "devdir", "", "directory bound over scanlogd's /dev; guardbench listens on DIR/log")
	fl.StringVar(&c.md, "md", "", "markdown file to update")
	fl.StringVar(&c.section, "section", "guard", "section name")
	fl.StringVar(&c.command, "command", "", "the command line that produced it")
	fl.StringVar(&c.psadConf, "psad-conf", "", "run psad with this config `FILE` (empty: no psad)")
	fl.StringVar(&c.psadLog, "psad-messages", "", "the `FILE` psad reads iptables lines from (its IPT_SYSLOG_FILE)")
	fl.IntVar(&c.floodCount, "flood-count", 2_000_000, "flood: at most N packets")
	fl.DurationVar(&c.floodFor, "flood-for", 20*time.Second, "flood: for at most this long")
	fl.IntVar(&c.repeat, "repeat", 1, "run every scan `N` times, each from a new source (1-18)")
	fl.BoolVar(&c.scansOnly, "scans-only", false, "only the scans: no benign traffic, no flood, no markdown")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if c.repeat < 1 || c.repeat > maxRepeat {
		return fmt.Errorf("-repeat %d: want 1 to %d (each run of a scan has its own address of 198.18.0.10-254)", c.repeat, maxRepeat)
	}
	c.sIface = c.sns
	p, err := readPlan(c.plan)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	// scanlogd's syslog: a datagram socket of ours at DIR/log, which
	// guard.sh binds over /dev/log of scanlogd's mount namespace.
	var slog, plog log
	sock := filepath.Join(c.devdir, "log")
	os.Remove(sock)
	uc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer uc.Close()
	go func() {
		buf := make([]byte, 8192)
		for {
			n, err := uc.Read(buf)
			if err != nil {
				return
			}
			at := time.Now()
			line := string(buf[:n])
			if strings.Contains(line, "psad") {
				if a, ok := parsePsad(at, line); ok {
					plog.add(a)
				}
				continue
			}
			if a, ok := parseScanlogd(at, line); ok {
				slog.add(a)
			}
		}
	}()

	// portkit guard with its defaults (end_after 30 s: the scans of the
	// rows, 4 s apart, each from its own source, must still be reported
	// each as its own), JSON Lines on stdout.
	var glog log
	guardCmd := exec.CommandContext(ctx, "ip", "netns", "exec", c.tns, c.portkit, "guard", "--metrics", "127.0.0.1:9102")
	guardCmd.Stderr = os.Stderr
	// A session of its own, as scanlogd has (it daemonizes) and as a
	// service has under systemd: with the kernel's autogroups (on by
	// default) a session is scheduled as one, so in this one guard would
	// share its CPU time with guardbench and the scanners.
	guardCmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	gout, err := guardCmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := guardCmd.Start(); err != nil {
		return err
	}
	defer func() { guardCmd.Process.Signal(syscall.SIGTERM); guardCmd.Wait() }()
	go func() {
		sc := bufio.NewScanner(gout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			at := time.Now()
			var e struct {
				Time               time.Time
				Event, Phase, Type string
				ID                 int
				Sources            []string
			}
			if json.Unmarshal(sc.Bytes(), &e) != nil || e.Event != "scan" {
				continue
			}
			for _, s := range e.Sources {
				glog.add(alert{at: at, trig: e.Time, src: s, kind: e.Type, line: sc.Text(), phase: e.Phase, id: e.ID, sources: len(e.Sources)})
			}
		}
	}()

	// scanlogd in the target namespace, /dev/log ours (see guard.sh).
	// `ip netns exec` gives it a mount namespace of its own (a slave of
	// this one): the mounts stay there. /run is a tmpfs there too, for the
	// empty directory scanlogd chroots to.
	sl := exec.CommandContext(ctx, "ip", "netns", "exec", c.tns, "sh", "-c",
		`set -e; for d in null zero urandom random; do : > "$1/$d"; mount --bind /dev/$d "$1/$d"; done; mount --bind "$1" /dev; mount -t tmpfs tmpfs /run; mkdir -p /run/scanlogd/empty; exec scanlogd`,
		"sh", c.devdir)
	sl.Stdout, sl.Stderr = os.Stderr, os.Stderr
	if err := sl.Run(); err != nil { // it forks into the background
		return fmt.Errorf("scanlogd: %w", err)
	}
	time.Sleep(2 * time.Second)
	slPid := pidOf(c.tns, "scanlogd")
	if slPid == 0 {
		return fmt.Errorf("scanlogd is not running in %s", c.tns)
	}
	gPid := guardCmd.Process.Pid
	if c.psadConf != "" {
		if err := c.psadRules(ctx, p.Ports); err != nil {
			return err
		}
		if err := copyKmsg(ctx, c.psadLog); err != nil {
			return err
		}
		pc, err := c.startPsad(ctx, filepath.Join(c.devdir, "..", "psad.out"))
		if err != nil {
			return err
		}
		defer func() { pc.Process.Signal(syscall.SIGTERM) }()
		time.Sleep(3 * time.Second)
		if pidOf(c.tns, "psad") == 0 {
			out, _ := os.ReadFile(filepath.Join(c.devdir, "..", "psad.out"))
			return fmt.Errorf("psad is not running in %s:\n%s", c.tns, out)
		}
	}

	ports := "20000-20099"
	for _, q := range p.Ports {
		ports += "," + strconv.Itoa(int(q))
	}
	host := p.Host.String()
	nm := func(flag string) []string {
		return []string{"nmap", flag, "-n", "-Pn", "-p", "{PORTS}", "--max-retries", "0", "-T4", host}
	}
	rows := []row{
		{"nmap -sS", "SYN", nm("-sS")}, {"nmap -sT", "connect", nm("-sT")},
		{"nmap -sF", "FIN", nm("-sF")}, {"nmap -sN", "NULL", nm("-sN")}, {"nmap -sX", "Xmas", nm("-sX")},
		{"nmap -sA", "ACK/Window", nm("-sA")}, {"nmap -sM", "Maimon", nm("-sM")}, {"nmap -sW", "ACK/Window", nm("-sW")},
		{"nmap -sU", "UDP", []string{"nmap", "-sU", "-n", "-Pn", "-p", "20000-20099", "--max-retries", "0", "-T4", host}},
		{"masscan", "SYN", []string{"timeout", "15", "masscan", "-p{PORTS}", "--rate", "2000", "--wait", "1", "--adapter", c.sIface,
			"--adapter-ip", "{SRC}", "--router-mac", c.mac, host}},
		{"portkit --syn", "SYN", []string{c.portkit, "scan", "--syn", "-p", "{PORTS}", "--retries", "0", "--no-progress", host}},
		{"portkit --connect", "connect", []string{c.portkit, "scan", "--connect", "-p", "{PORTS}", "--retries", "0", "--no-progress", host}},
		{"portkit --udp", "UDP", []string{c.portkit, "scan", "--udp", "-p", "20000-20099", "--retries", "0", "--no-progress", host}},
	}
	var results []result
	for run := range c.repeat {
		for i, r := range rows {
			src := fmt.Sprintf("198.18.0.%d", 10+run*len(rows)+i)
			res, err := c.scan(ctx, r, src, ports, host, run, &glog, &slog, &plog)
			if err != nil {
				return err
			}
			results = append(results, res)
			time.Sleep(4 * time.Second) // scanlogd: quiet past its 3 s gap, under its 5 logs in 20 s
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "**guard** — %s, %s, load average before the run: %s\n\n", start.UTC().Format("2006-01-02 15:04 UTC"), cpus(), load0)
	c.reportScans(&b, results, ports, len(p.Ports))
	if c.scansOnly {
		fmt.Fprint(os.Stdout, b.String())
		return nil
	}

	// Benign traffic from the scanner's first address.
	if out, err := exec.Command("ip", "-n", c.sns, "route", "replace", host, "dev", c.sIface, "src", "198.18.0.1").CombinedOutput(); err != nil {
		return fmt.Errorf("ip route replace: %s", out)
	}
	bt0 := time.Now()
	if out, err := exec.CommandContext(ctx, "ip", "netns", "exec", c.sns, c.self, "benign", "-plan", c.plan).CombinedOutput(); err != nil {
		return fmt.Errorf("benign: %v\n%s", err, out)
	}
	benignWall := time.Since(bt0)
	time.Sleep(5 * time.Second) // guard's answer_wait and more
	// False alerts: those naming the benign traffic's source.
	gFalse, sFalse, pFalse := glog.from("198.18.0.1"), slog.from("198.18.0.1"), plog.from("198.18.0.1")
	for _, a := range slices.Concat(gFalse, sFalse, pFalse) {
		fmt.Fprintf(os.Stderr, "benign alert: %s\n", a.line)
	}
	fmt.Fprintf(&b, "Benign traffic (%s, from 198.18.0.1: 1,000 HTTP/1.0 requests to one open port; a client of 5 open services; a monitor of 10 ports, 5 open and 5 closed, every 1 s instead of 10 s, 10 rounds; a forwarder's churn of 300 short connections over 2 ports): portkit guard %d false alerts, scanlogd %d, psad %s.\n\n",
		ms(benignWall), len(gFalse), len(sFalse), psadCount(c.psadConf != "", len(pFalse)))
	target(&b, len(gFalse) == 0, "no false alert from portkit guard on the benign traffic", strconv.Itoa(len(gFalse)))
	b.WriteString("\n")

	// The flood. psad's LOG rules go first: logged, the flood would fill
	// this host's kernel log (psad is not part of the flood's figures).
	if c.psadConf != "" {
		exec.Command("ip", "netns", "exec", c.tns, "iptables", "-F", "INPUT").Run()
	}
	anon0, rss0 := memOf(gPid, "RssAnon:"), memOf(gPid, "VmRSS:")
	m0 := c.scrape(ctx)
	gc0, sc0 := cpuOf(gPid), cpuOf(slPid)
	fout, err := exec.CommandContext(ctx, "ip", "netns", "exec", c.sns, c.self, "flood", "-target", host,
		"-count", strconv.Itoa(c.floodCount), "-for", c.floodFor.String()).Output()
	if err != nil {
		return fmt.Errorf("flood: %w", err)
	}
	time.Sleep(3 * time.Second) // guard decides the last attempts
	gc1, sc1 := cpuOf(gPid), cpuOf(slPid)
	m1 := c.scrape(ctx)
	var fl1 struct {
		Sent    int
		Seconds float64
		PPS     float64
	}
	json.Unmarshal(fout, &fl1)
	hwm, rss, anon := memOf(gPid, "VmHWM:"), memOf(gPid, "VmRSS:"), memOf(gPid, "RssAnon:")
	read := m1["portkit_guard_packets_total"] - m0["portkit_guard_packets_total"]
	drops := m1["portkit_guard_ring_dropped_total"] - m0["portkit_guard_ring_dropped_total"]
	fmt.Fprintf(os.Stderr, "flood: %+v; guard read %.0f, ring drops %.0f, cpu %v, scanlogd cpu %v, rss %d hwm %d, sources %v\n",
		fl1, read, drops, gc1-gc0, sc1-sc0, rss, hwm, m1["portkit_guard_sources_tracked"])
	fmt.Fprintf(&b, "SYN flood (guardbench flood: one raw-socket sender, %d spoofed sources of 198.18.1.0–198.19.255.255 in turn, to port 80, at most %d packets and %s): %d sent in %.1f s, **%.0f packets/s**. portkit guard read %.0f of them (%.0f packets/s) with %.0f ring drops; CPU %s (**%s per million packets read**); RSS before the flood %s (of it anonymous %s; the rest is mostly the capture ring's mapped pages), after %s (anonymous %s), peak %s; %.0f sources tracked (max_sources 65536). scanlogd on the same flood: CPU %s (%s per million packets sent).\n",
		100000, c.floodCount, c.floodFor, fl1.Sent, fl1.Seconds, fl1.PPS, read, read/fl1.Seconds, drops,
		ms(gc1-gc0), ms(perMillion(gc1-gc0, read)), mib(rss0), mib(anon0), mib(rss), mib(anon), mib(hwm), m1["portkit_guard_sources_tracked"],
		ms(sc1-sc0), ms(perMillion(sc1-sc0, float64(fl1.Sent))))
	fmt.Fprint(os.Stdout, b.String())
	if c.md != "" {
		if err := harness.WriteSection(c.md, c.section, b.String()); err != nil {
			return err
		}
	}
	return nil
}

// result is one run of one scan: each detector's first alert naming its
// source.
type result struct {
	row
	run                int
	src                string
	t0                 time.Time
	wall               time.Duration
	g, s, p            alert
	gok, sok, pok, udp bool
}

// scan runs one scan from src and waits for the detectors' first alerts.
func (c config) scan(ctx context.Context, r row, src, ports, host string, run int, glog, slog, plog *log) (result, error) {
	// Every run from its own address: the route's preferred source, so
	// that each detector sees a new source (scanlogd and guard keep
	// per-source state).
	if out, err := exec.Command("ip", "-n", c.sns, "addr", "add", src+"/24", "dev", c.sIface).CombinedOutput(); err != nil && !strings.Contains(string(out), "exists") {
		return result{}, fmt.Errorf("ip addr add %s: %s", src, out)
	}
	if out, err := exec.Command("ip", "-n", c.sns, "route", "replace", host, "dev", c.sIface, "src", src).CombinedOutput(); err != nil {
		return result{}, fmt.Errorf("ip route replace: %s", out)
	}
	argv := slices.Clone(r.argv)
	for j := range argv {
		argv[j] = strings.NewReplacer("{SRC}", src, "{PORTS}", ports).Replace(argv[j])
	}
	t0 := time.Now()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", c.sns}, argv...)...)
	out, err := cmd.CombinedOutput()
	wall := time.Since(t0)
	if err != nil && !(cmd.ProcessState != nil && (cmd.ProcessState.ExitCode() == 1 || (r.name == "masscan" && cmd.ProcessState.ExitCode() == 124))) {
		return result{}, fmt.Errorf("%s: %v\n%s", r.name, err, out)
	}
	// Wait for the detectors, at most 12 s after the scan (guard's
	// update_every is 10 s: a source that joins a scan going on is named
	// first in its next update).
	res := result{row: r, run: run, src: src, t0: t0, wall: wall, udp: r.want == "UDP"}
	for end := time.Now().Add(12 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		res.g, res.gok = glog.first(src, t0)
		res.s, res.sok = slog.first(src, t0)
		res.p, res.pok = plog.first(src, t0)
		if res.gok && (res.sok || res.udp) && (res.pok || c.psadConf == "") {
			break
		}
	}
	delta := "—"
	if res.gok && res.sok {
		delta = fmt.Sprintf("%+.2f ms (from guard's trigger packet: guard %.3f ms, scanlogd %.3f ms)", float64(res.g.at.Sub(res.s.at))/float64(time.Millisecond),
			float64(res.g.at.Sub(res.g.trig))/float64(time.Millisecond), float64(res.s.at.Sub(res.g.trig))/float64(time.Millisecond))
	}
	fmt.Fprintf(os.Stderr, "%-18s %s wall %v: guard %v %q, scanlogd %v %q, guard-scanlogd %s, psad %v %q\n", r.name, src, wall.Round(time.Millisecond),
		res.gok, res.g.kind, res.sok, res.s.line, delta, res.pok, res.p.line)
	return res, nil
}

// reportScans writes the detection table, a row per scan (the medians of
// its runs), and the targets on it.
func (c config) reportScans(b *strings.Builder, results []result, ports string, open int) {
	runs := "Each scan"
	if c.repeat > 1 {
		runs = fmt.Sprintf("Each scan %d times, each run", c.repeat)
	}
	fmt.Fprintf(b, "Command: `%s`. %s from its own source address of 198.18.0.0/24 against 198.18.0.2: TCP ports %s (%d of them open); UDP 20000-20099. Time to first alert: from the scanner's start (its `ip netns exec`) to the alert's arrival: portkit's `start` line on stdout, scanlogd's datagram on the syslog socket; with more than one run, the median of the runs. guard − scanlogd: the median of the runs' differences. Every detector with its defaults (guard's end_after is 30 s, so each scan, 4 s after the last, starts while guard still reports the one before: each must be named as a scan of its own).\n\n", c.command, runs, ports, open)
	b.WriteString("| scan | scan's wall time | portkit guard | type named | first alert | scanlogd | flags it logged | first alert | guard − scanlogd | psad |\n")
	b.WriteString("| --- | ---: | --- | --- | ---: | --- | --- | ---: | ---: | --- |\n")
	var gt, st []time.Duration
	var pg, ps, diff []time.Duration // the runs both detected
	var pt, pgp []time.Duration      // psad's, and guard's of the runs psad detected
	var joined []string
	allG, allType := true, true
	for _, name := range rowNames(results) {
		var rg, rs, rp, rd, walls []time.Duration
		var gkinds, skinds, pkinds []string
		udp := false
		for _, r := range results {
			if r.name != name {
				continue
			}
			udp = r.udp
			walls = append(walls, r.wall)
			if r.gok {
				gd := r.g.at.Sub(r.t0)
				rg, gt = append(rg, gd), append(gt, gd)
				mark := " ✓"
				if r.g.kind != r.want {
					mark = " ✗ (want " + r.want + ")"
					allType = false
				}
				gkinds = appendNew(gkinds, r.g.kind+mark)
				if r.g.phase != "start" || r.g.sources > 1 {
					joined = append(joined, fmt.Sprintf("%s (run %d: only in the %s of scan %d, %d sources)", r.name, r.run+1, r.g.phase, r.g.id, r.g.sources))
				}
			} else {
				allG = false
			}
			if r.sok && !r.udp {
				sd := r.s.at.Sub(r.t0)
				rs, st = append(rs, sd), append(st, sd)
				skinds = appendNew(skinds, "`"+r.s.kind+"`")
				if r.gok {
					d := r.g.at.Sub(r.s.at)
					pg, ps, diff, rd = append(pg, r.g.at.Sub(r.t0)), append(ps, sd), append(diff, d), append(rd, d)
				}
			}
			if r.pok {
				pd := r.p.at.Sub(r.t0)
				rp, pt = append(rp, pd), append(pt, pd)
				pkinds = appendNew(pkinds, "`"+r.p.kind+"`")
				if r.gok {
					pgp = append(pgp, r.g.at.Sub(r.t0))
				}
			}
		}
		n := len(walls)
		gcell, gtype, gtime := detected(len(rg), n), "—", "—"
		if len(rg) > 0 {
			gtype, gtime = strings.Join(gkinds, ", "), msFine(median(rg))
		}
		scell, sflags, stime, dcell := detected(len(rs), n), "—", "—", "—"
		if udp {
			scell = "n/a (TCP only)"
		}
		if len(rs) > 0 {
			sflags, stime = strings.Join(skinds, ", "), msFine(median(rs))
		}
		if len(rd) > 0 {
			dcell = fmt.Sprintf("%+.2f ms", float64(median(rd))/float64(time.Millisecond))
		}
		pcell := "not run"
		if c.psadConf != "" {
			pcell = detected(len(rp), n)
			if len(rp) > 0 {
				pcell += fmt.Sprintf(", %s, %s", strings.Join(pkinds, ", "), ms(median(rp)))
			}
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			name, ms(median(walls)), gcell, gtype, gtime, scell, sflags, stime, dcell, pcell)
	}
	fmt.Fprintf(b, "\nMedian time to first alert: portkit guard %s over %d runs; scanlogd %s over the %d runs of TCP scans it alerted on. portkit detected every run: %v; named every type: %v.\n\n",
		msFine(median(gt)), len(gt), msFine(median(st)), len(st), allG, allType)
	fmt.Fprintf(b, "Over the %d runs both detected: portkit guard's median %s, scanlogd's %s; the median of guard − scanlogd %+.2f ms, guard ahead in %d, behind in %d.\n\n",
		len(pg), msFine(median(pg)), msFine(median(ps)), float64(median(diff))/float64(time.Millisecond),
		countIf(diff, func(d time.Duration) bool { return d < 0 }), countIf(diff, func(d time.Duration) bool { return d > 0 }))
	target(b, allG && len(joined) == 0, "portkit guard detects every scan as a scan of its own", fmt.Sprintf("%d of %d runs, %d only as a source joined to another scan", len(gt), len(results), len(joined)))
	target(b, allType, "portkit guard names every scan's type", fmt.Sprintf("%v", allType))
	target(b, len(pg) > 0 && median(pg) <= median(ps), "portkit guard's median time to first alert ≤ scanlogd's (the runs both detected)",
		fmt.Sprintf("%s vs %s over %d runs", msFine(median(pg)), msFine(median(ps)), len(pg)))
	if c.psadConf != "" {
		target(b, len(pt) > 0 && median(pgp)*5 <= median(pt), "portkit guard's median time to first alert ≤ 1/5 of psad's (the runs psad detected)",
			fmt.Sprintf("%s vs %s over %d runs", msFine(median(pgp)), ms(median(pt)), len(pt)))
	}
	b.WriteString("\n")
	if c.psadConf != "" {
		fmt.Fprintf(b, "psad: median %s over the %d runs it alerted on; portkit guard's median over the same runs %s.\n\n", ms(median(pt)), len(pt), msFine(median(pgp)))
	}
	if len(joined) > 0 {
		fmt.Fprintf(b, "Not a scan of its own in guard's report: %s.\n\n", strings.Join(joined, "; "))
	}
}

// target writes a target's verdict.
func target(b *strings.Builder, ok bool, what, got string) {
	verdict := "FAIL"
	if ok {
		verdict = "PASS"
	}
	fmt.Fprintf(b, "- target %s: %s (%s)\n", what, verdict, got)
}

// rowNames is the scans' names in the order they first ran.
func rowNames(results []result) []string {
	var names []string
	for _, r := range results {
		names = appendNew(names, r.name)
	}
	return names
}

func appendNew(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// detected says whether a detector alerted on the runs of a scan: "yes",
// "no", or in how many of them.
func detected(k, n int) string {
	switch k {
	case n:
		return "yes"
	case 0:
		return "no"
	}
	return fmt.Sprintf("%d of %d runs", k, n)
}

func countIf(ds []time.Duration, f func(time.Duration) bool) int {
	n := 0
	for _, d := range ds {
		if f(d) {
			n++
		}
	}
	return n
}

func psadCount(ran bool, n int) string {
	if !ran {
		return "not run"
	}
	return strconv.Itoa(n)
}

// parseScanlogd reads scanlogd's syslog line "SRC[:PORT] to DST ports P,
// ..., FLAGS[, TOS T][, TTL N] @HH:MM:SS" into an alert.
func parseScanlogd(at time.Time, line string) (alert, bool) {
	i := strings.Index(line, "scanlogd")
	if i < 0 {
		return alert{}, false
	}
	body := line[i:]
	if j := strings.Index(body, ": "); j >= 0 {
		body = body[j+2:]
	}
	f := strings.Fields(body)
	if len(f) < 3 || f[1] != "to" {
		return alert{}, false
	}
	flags := ""
	for _, w := range strings.Split(body, ", ") {
		if len(w) == 8 && strings.Trim(strings.ToLower(w), "fsrpauxy?") == "" {
			flags = w
		}
	}
	src, _, _ := strings.Cut(f[0], ":")
	return alert{at: at, src: src, kind: flags, line: body}, true
}
