//go:build linux

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/portkit/portkit/bench/harness"
	"github.com/portkit/portkit/bench/internal/scanplan"
)

func sweep(ctx context.Context, cfg *config) (string, bool, error) {
	if cfg.plan == "" {
		return "", false, fmt.Errorf("sweep needs -plan: %w", errUsage)
	}
	plan, err := scanplan.Read(cfg.plan)
	if err != nil {
		return "", false, err
	}
	if plan.Sweep == nil {
		return "", false, fmt.Errorf("the plan %s has no sweep: %w", cfg.plan, errUsage)
	}
	sw := plan.Sweep
	open := 0
	for _, ps := range sw.Open {
		open += len(ps)
	}
	var ports []string
	for _, p := range sw.Ports {
		ports = append(ports, strconv.Itoa(int(p)))
	}
	prefix := sw.Prefix.String()
	out := filepath.Join(cfg.tmp, "sweep.jsonl")
	plain := []string{cfg.portkit, "scan", "--syn", "--top", strconv.Itoa(len(sw.Ports)), "--no-progress", "-o", "jsonl", "--out", out, prefix}
	withService := append(append([]string{}, plain[:len(plain)-1]...), "--service", prefix)

	load0 := loadavg()
	var pl, sv []timed
	for round := range cfg.runs {
		for j := range 2 {
			argv, into, name := plain, &pl, "portkit scan"
			if (round+j)%2 == 1 {
				argv, into, name = withService, &sv, "portkit scan --service"
			}
			fmt.Fprintf(cfg.log, "servicebench: sweep, %s, run %d/%d\n", name, round+1, cfg.runs)
			t, err := runTool(ctx, argv, out, 5*time.Minute, parsePortkit)
			if err != nil {
				return "", false, err
			}
			*into = append(*into, t)
		}
	}
	var nm *timed
	nmArgv := []string{cfg.nmap, "-sS", "-sV", "-Pn", "-n", "-p", strings.Join(ports, ","), "-oX", filepath.Join(cfg.tmp, "sweep.xml"), prefix}
	if cfg.nmapTimeout > 0 {
		fmt.Fprintf(cfg.log, "servicebench: sweep, nmap -sV once, at most %v\n", cfg.nmapTimeout)
		t, err := runTool(ctx, nmArgv, filepath.Join(cfg.tmp, "sweep.xml"), cfg.nmapTimeout, parseNmap)
		if err != nil {
			return "", false, err
		}
		nm = &t
	}
	load1 := loadavg()

	// found counts the plan's open ports a run reported open; named, those
	// of them it named a protocol on: none, here, as the listeners say
	// nothing ("unknown" for portkit, "tcpwrapped" for nmap).
	score := func(t timed) (found, named int) {
		for addr, ps := range sw.Open {
			for _, p := range ps {
				f, ok := t.found[addr.String()+" "+key("tcp", int(p))]
				if ok && f.State == "open" {
					found++
					if f.Service != "" && f.Service != "unknown" && f.Service != "tcpwrapped" {
						named++
					}
				}
			}
		}
		return found, named
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %s %s, %d CPUs shared with other jobs (load average %s before, %s after), %d runs of each, order alternated. %s × portkit's top %d ports, %d open (bench/cmd/scanfixture: each listener accepts and closes every connection). Produced by `%s`.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), load0, load1, cfg.runs, prefix, len(sw.Ports), open, cfg.command)
	b.WriteString("| command | command line | median | min | max | CPU (median) | open ports found (each run) |\n| --- | --- | ---: | ---: | ---: | ---: | --- |\n")
	met := true
	row := func(name string, argv []string, ts []timed) time.Duration {
		wall, cpu := median(ts)
		lo, hi := ts[0].sample.Wall, ts[0].sample.Wall
		var founds []string
		for _, t := range ts {
			lo, hi = min(lo, t.sample.Wall), max(hi, t.sample.Wall)
			if t.timedOut {
				founds = append(founds, "stopped at the limit")
				met = false
				continue
			}
			f, n := score(t)
			if f != open {
				met = false
			}
			if strings.Contains(name, "-sV") || strings.Contains(name, "--service") {
				founds = append(founds, fmt.Sprintf("%d/%d (%d named)", f, open, n))
			} else {
				founds = append(founds, fmt.Sprintf("%d/%d", f, open))
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", name, harness.CodeSpan(strings.Join(argv, " ")), harness.FormatDuration(wall),
			harness.FormatDuration(lo), harness.FormatDuration(hi), harness.FormatDuration(cpu), strings.Join(founds, ", "))
		return wall
	}
	pw := row("portkit scan", plain, pl)
	sw2 := row("portkit scan --service", withService, sv)
	if nm != nil {
		row("nmap -sV (once)", nmArgv, []timed{*nm})
	} else {
		b.WriteString("\nnmap -sV was not run (-nmap-timeout 0).\n")
	}
	if open > 0 {
		_, cpuPl := median(pl)
		_, cpuSv := median(sv)
		fmt.Fprintf(&b, "\nIdentification's cost per open port, from the medians' difference over %d open ports: %s of CPU; %s\n",
			open, harness.FormatDuration(max((cpuSv-cpuPl)/time.Duration(open), 0)), wallCost(sw2-pw, open))
	}
	return b.String(), met, nil
}

// wallCost says what identification added to the sweep's wall time per
// open port; it runs while the scan goes on, so it may add nothing
// measurable.
func wallCost(d time.Duration, open int) string {
	if d <= 0 {
		return fmt.Sprintf("no measurable wall time (the scan with --service took %s less: identification overlaps the scan, and the difference is noise).", harness.FormatDuration(-d))
	}
	return fmt.Sprintf("%s of wall time.", harness.FormatDuration(d/time.Duration(open)))
}
