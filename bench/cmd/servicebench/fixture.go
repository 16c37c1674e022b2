//go:build linux

package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/portkit/portkit/bench/harness"
	"github.com/portkit/portkit/internal/servicefixture"
)

// truthPort is one port of the fixture and what must be said about it.
type truthPort struct {
	server  servicefixture.Server
	proto   string
	port    uint16
	odd     bool   // not the server's default port
	version string // expected version; empty: the protocol does not reveal it
}

func (t truthPort) key() string {
	return key(t.proto, int(t.port))
}

// started is a server process of the fixture.
type started struct {
	cmd  *exec.Cmd
	done chan struct{}
	name string
	log  string
}

func fixture(ctx context.Context, cfg *config) (string, bool, error) {
	if cfg.targetNS == "" {
		return "", false, fmt.Errorf("fixture needs -target-ns: %w", errUsage)
	}
	target, err := netip.ParseAddr(cfg.target)
	if err != nil || !netip.MustParsePrefix("198.18.0.0/15").Contains(target) {
		return "", false, fmt.Errorf("-target %q must be an address of 198.18.0.0/15: %w", cfg.target, errUsage)
	}
	certDir := filepath.Join(cfg.tmp, "certs")
	if err := os.Mkdir(certDir, 0o755); err != nil {
		return "", false, err
	}
	certs, err := servicefixture.MakeCert(certDir, target)
	if err != nil {
		return "", false, err
	}
	os.Chmod(cfg.tmp, 0o755) // the servers' own users (postgres) read their files under it

	var (
		truth   []truthPort
		missing []string
		procs   []*started
		oddOf   = map[string]uint16{}
	)
	defer func() {
		for _, p := range procs {
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}()
	next := uint16(cfg.odd)
	for _, s := range servicefixture.Servers() {
		if _, err := os.Stat(s.Binary); err != nil {
			missing = append(missing, fmt.Sprintf("%s (%s)", s.Name, s.Pkg))
			continue
		}
		want := ""
		if s.Version {
			if want, err = servicefixture.Upstream(s.Pkg); err != nil {
				return "", false, err
			}
		}
		proto := "tcp"
		if s.UDP {
			proto = "udp"
		}
		odd, shared := oddOf[s.StartedBy]
		if !shared {
			odd = next
			next++
			oddOf[s.Name] = odd
		}
		for _, port := range []uint16{s.Port, odd} {
			truth = append(truth, truthPort{server: s, proto: proto, port: port, odd: port == odd, version: want})
			if shared {
				continue
			}
			dir := filepath.Join(cfg.tmp, fmt.Sprintf("%s-%d", s.Name, port))
			if err := os.Mkdir(dir, 0o755); err != nil {
				return "", false, err
			}
			cmd, err := s.Start(dir, target, port, certs)
			if err != nil {
				return "", false, fmt.Errorf("setting up %s on port %d: %w", s.Name, port, err)
			}
			logName := filepath.Join(dir, "server.log")
			log, err := os.Create(logName)
			if err != nil {
				return "", false, err
			}
			full := servicefixture.InNetns(cfg.targetNS, cmd, dir, log)
			if err := full.Start(); err != nil {
				log.Close()
				return "", false, fmt.Errorf("starting %s on port %d: %w", s.Name, port, err)
			}
			p := &started{cmd: full, done: make(chan struct{}), name: fmt.Sprintf("%s on %d", s.Name, port), log: logName}
			go func() { full.Wait(); log.Close(); close(p.done) }()
			procs = append(procs, p)
		}
	}
	if len(truth) == 0 {
		return "", false, fmt.Errorf("no server of the fixture is installed: %w", errUsage)
	}
	fmt.Fprintf(cfg.log, "servicebench: %d servers started on %d ports; waiting for them\n", len(procs), len(truth))
	if err := waitReady(ctx, target, truth, procs); err != nil {
		return "", false, err
	}

	var tcp, udp []string
	for _, t := range truth {
		if t.proto == "tcp" {
			tcp = append(tcp, strconv.Itoa(int(t.port)))
		} else {
			udp = append(udp, strconv.Itoa(int(t.port)))
		}
	}
	ports := "T:" + strings.Join(tcp, ",")
	if len(udp) > 0 {
		ports += ",U:" + strings.Join(udp, ",")
	}
	pkOut, nmOut := filepath.Join(cfg.tmp, "portkit.jsonl"), filepath.Join(cfg.tmp, "nmap.xml")
	pkArgv := []string{cfg.portkit, "scan", "--syn", "--udp", "--service", "--service-snmp", "-p", ports, "--no-progress", "-o", "jsonl", "--out", pkOut, cfg.target}
	nmArgv := []string{cfg.nmap, "-sS", "-sU", "-sV", "-Pn", "-n", "-p", ports, "-oX", nmOut, cfg.target}
	load0 := loadavg()
	var pk, nm []timed
	for round := range cfg.runs {
		for j := range 2 {
			if (round+j)%2 == 0 {
				fmt.Fprintf(cfg.log, "servicebench: portkit, run %d/%d\n", round+1, cfg.runs)
				t, err := runTool(ctx, pkArgv, pkOut, 3*time.Minute, parsePortkit)
				if err != nil {
					return "", false, err
				}
				pk = append(pk, t)
			} else {
				fmt.Fprintf(cfg.log, "servicebench: nmap -sV, run %d/%d\n", round+1, cfg.runs)
				t, err := runTool(ctx, nmArgv, nmOut, 15*time.Minute, parseNmap)
				if err != nil {
					return "", false, err
				}
				nm = append(nm, t)
			}
			if ctx.Err() != nil {
				return "", false, ctx.Err()
			}
		}
	}
	load1 := loadavg()
	for _, p := range procs {
		select {
		case <-p.done:
			return "", false, fmt.Errorf("%s stopped during the benchmark: the figures are not valid (log %s)", p.name, p.log)
		default:
		}
	}
	body, met := fixtureReport(cfg, truth, missing, pkArgv, nmArgv, pk, nm, load0, load1)
	return body, met, nil
}

// waitReady waits until every TCP port accepts connections, at most 90 s
// (two database set-ups on a busy machine), and gives the UDP servers, which
// have no handshake to wait for, a few seconds to bind.
func waitReady(ctx context.Context, target netip.Addr, truth []truthPort, procs []*started) error {
	deadline := time.Now().Add(90 * time.Second)
	for _, t := range truth {
		if t.proto != "tcp" {
			continue
		}
		addr := netip.AddrPortFrom(target, t.port).String()
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			for _, p := range procs {
				select {
				case <-p.done:
					b, _ := os.ReadFile(p.log)
					return fmt.Errorf("%s stopped while starting: %s", p.name, lastLines(string(b)))
				default:
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s (%s) never opened", addr, t.server.Name)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(3 * time.Second):
	}
	return nil
}

// loadavg is the 1-minute load average, for the report's word on noise.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// marks is one tool's verdict on one port.
type marks struct {
	service, product, version bool
	said                      string
}

// judge scores what a tool said about t. The same rules for both tools:
// the service name equal (or a known alias: nmap's "domain" for DNS); the
// expected product a part of the product (case aside: nmap's "Redis
// key-value store"); the expected version a whole token of the version
// (nmap's "9.2p1 Debian 2+deb12u3"). A port reported closed or filtered,
// or open|filtered with no service, is wrong on every count.
func judge(t truthPort, f finding, ok bool) marks {
	// A UDP port silent to the scan's own probe stays open|filtered in
	// portkit's report even when identification got an answer (the scan's
	// state is kept; the service says it answered): judged on its service.
	if !ok || f.State != "open" && (f.State != "open|filtered" || f.Service == "") {
		state := "not reported"
		if ok {
			state = f.State
		}
		return marks{said: state}
	}
	m := marks{said: strings.TrimSpace(strings.Join([]string{f.Service, f.Product, f.Version}, " "))}
	m.service = sameService(t.server.Service, f.Service)
	m.product = t.server.Product == "" || strings.Contains(strings.ToLower(f.Product), strings.ToLower(t.server.Product))
	m.version = t.version == "" || hasToken(f.Version, t.version)
	return m
}

func sameService(want, got string) bool {
	got = strings.TrimPrefix(got, "ssl/")
	if got == want {
		return true
	}
	alias := map[string][]string{"dns": {"domain"}, "http": {"https"}}
	for _, a := range alias[want] {
		if got == a {
			return true
		}
	}
	return false
}

// hasToken says whether v holds tok not inside a longer version: the
// characters either side are neither digits, letters nor dots.
func hasToken(v, tok string) bool {
	for i := 0; ; {
		j := strings.Index(v[i:], tok)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(tok)
		if (j == 0 || !versionChar(v[j-1])) && (end == len(v) || !versionChar(v[end])) {
			return true
		}
		i = j + 1
	}
}

func versionChar(c byte) bool {
	return c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// tally counts one run's marks over the fixture.
type tally struct {
	ports, service           int
	productPorts, product    int
	versionPorts, version    int
	revealPorts, revealRight int // ports revealing product or version; both right where revealed
}

func count(truth []truthPort, found map[string]finding, target string) (tally, []marks) {
	var c tally
	var ms []marks
	for _, t := range truth {
		f, ok := found[target+" "+t.key()]
		m := judge(t, f, ok)
		ms = append(ms, m)
		c.ports++
		if m.service {
			c.service++
		}
		if t.server.Product != "" {
			c.productPorts++
			if m.service && m.product {
				c.product++
			}
		}
		if t.version != "" {
			c.versionPorts++
			if m.service && m.version {
				c.version++
			}
		}
		if t.server.Product != "" || t.version != "" {
			c.revealPorts++
			if m.service && m.product && m.version {
				c.revealRight++
			}
		}
	}
	return c, ms
}

func fixtureReport(cfg *config, truth []truthPort, missing []string, pkArgv, nmArgv []string, pk, nm []timed, load0, load1 string) (string, bool) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %s %s, %d CPUs shared with other jobs (load average %s before, %s after), %d runs of each tool, order alternated. Produced by `%s`.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), load0, load1, cfg.runs, cfg.command)
	if len(missing) > 0 {
		fmt.Fprintf(&b, "Not installed, left out: %s.\n\n", strings.Join(missing, ", "))
	}
	b.WriteString("| tool | command line | median | min | max | CPU (median) | ratio |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |\n")
	pkWall, pkCPU := median(pk)
	nmWall, nmCPU := median(nm)
	row := func(name string, argv []string, ts []timed, wall, cpu time.Duration) {
		lo, hi := ts[0].sample.Wall, ts[0].sample.Wall
		for _, t := range ts {
			lo, hi = min(lo, t.sample.Wall), max(hi, t.sample.Wall)
		}
		ratio := "1.00x"
		if name != "portkit" && pkWall > 0 {
			ratio = fmt.Sprintf("%.2fx", float64(wall)/float64(pkWall))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", name, harness.CodeSpan(strings.Join(argv, " ")),
			harness.FormatDuration(wall), harness.FormatDuration(lo), harness.FormatDuration(hi), harness.FormatDuration(cpu), ratio)
	}
	row("portkit", pkArgv, pk, pkWall, pkCPU)
	row("nmap", nmArgv, nm, nmWall, nmCPU)
	for _, t := range append(append([]timed{}, pk...), nm...) {
		if t.timedOut {
			b.WriteString("\nA run was stopped at its time limit: its figures are its limit.\n")
			break
		}
	}

	b.WriteString("\nRight, of the fixture's ports (each run; a range where runs differ). Product and version count where the server reveals them, and only with the service right:\n\n")
	b.WriteString("| tool | service | product | version | product and version, where revealed |\n| --- | ---: | ---: | ---: | ---: |\n")
	worst := map[string]tally{}
	var lastMarks [2][]marks
	for i, set := range [][]timed{pk, nm} {
		name := []string{"portkit", "nmap"}[i]
		var cs []tally
		for _, t := range set {
			if t.timedOut {
				continue
			}
			c, ms := count(truth, t.found, cfg.target)
			cs = append(cs, c)
			lastMarks[i] = ms
		}
		if len(cs) == 0 {
			fmt.Fprintf(&b, "| %s | no run finished | | | |\n", name)
			continue
		}
		span := func(get func(tally) int, of int) string {
			lo, hi := get(cs[0]), get(cs[0])
			for _, c := range cs {
				lo, hi = min(lo, get(c)), max(hi, get(c))
			}
			if lo == hi {
				return fmt.Sprintf("%d/%d", lo, of)
			}
			return fmt.Sprintf("%d–%d/%d", lo, hi, of)
		}
		c0 := cs[0]
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", name,
			span(func(c tally) int { return c.service }, c0.ports),
			span(func(c tally) int { return c.product }, c0.productPorts),
			span(func(c tally) int { return c.version }, c0.versionPorts),
			span(func(c tally) int { return c.revealRight }, c0.revealPorts))
		w := cs[0]
		for _, c := range cs {
			if c.revealRight < w.revealRight || c.service < w.service {
				w = c
			}
		}
		worst[name] = w
	}

	b.WriteString("\nPer port, the last run of each (✓ right, ✗ wrong, – not revealed by the server):\n\n")
	b.WriteString("| port | server | truth | portkit | nmap |\n| --- | --- | --- | --- | --- |\n")
	idx := make([]int, len(truth))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return truth[idx[a]].server.Name < truth[idx[b]].server.Name })
	for _, i := range idx {
		t := truth[i]
		want := strings.TrimSpace(strings.Join([]string{t.server.Service, t.server.Product, t.version}, " "))
		cell := func(ms []marks) string {
			if ms == nil {
				return "no run"
			}
			m := ms[i]
			return fmt.Sprintf("%s %s%s%s", harness.CodeSpan(orDash(m.said)), tick(m.service, true), tick(m.product, t.server.Product != ""), tick(m.version, t.version != ""))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", t.key(), t.server.Name, want, cell(lastMarks[0]), cell(lastMarks[1]))
	}

	pw := worst["portkit"]
	nameMet := pw.ports > 0 && pw.service == pw.ports
	revealMet := pw.revealPorts > 0 && float64(pw.revealRight) >= 0.9*float64(pw.revealPorts)
	timeMet := pkWall > 0 && nmWall > 0 && pkWall*5 <= nmWall
	fmt.Fprintf(&b, "\nTargets (portkit's worst run): service named right on every port: %s (%d/%d); product and version right where revealed, ≥ 90%%: %s (%d/%d); median wall time ≤ 1/5 of nmap -sV's: %s (%s vs %s).\n",
		yes(nameMet), pw.service, pw.ports, yes(revealMet), pw.revealRight, pw.revealPorts, yes(timeMet), harness.FormatDuration(pkWall), harness.FormatDuration(nmWall))
	return b.String(), nameMet && revealMet && timeMet
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func tick(ok, revealed bool) string {
	switch {
	case !revealed:
		return "–"
	case ok:
		return "✓"
	}
	return "✗"
}

func yes(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**missed**"
}
