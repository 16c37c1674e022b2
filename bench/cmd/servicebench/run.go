//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/portkit/portkit/bench/harness"
)

// finding is what a tool said about one port.
type finding struct {
	State, Service, Product, Version, Info string
}

// key names a port: "tcp/22", "udp/53".
func key(proto string, port int) string { return fmt.Sprintf("%s/%d", proto, port) }

// timed runs argv (output in out, read by parse) and measures it; a run
// that goes past timeout is killed and says so.
type timed struct {
	sample   harness.Sample
	found    map[string]finding
	timedOut bool
}

func runTool(ctx context.Context, argv []string, out string, timeout time.Duration, parse func(string) (map[string]finding, error)) (timed, error) {
	var t timed
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	t.sample.Wall = time.Since(start)
	if ps := cmd.ProcessState; ps != nil {
		t.sample.CPU = ps.UserTime() + ps.SystemTime()
		t.sample.PeakRSS = harness.PeakRSS(ps)
	}
	if ctx.Err() == context.DeadlineExceeded {
		t.timedOut = true
		return t, nil
	}
	if err != nil {
		// portkit exits 1 when nothing is open: still a result.
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			return t, fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, lastLines(stderr.String()))
		}
	}
	t.found, err = parse(out)
	return t, err
}

func lastLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " / ")
}

// parsePortkit reads `portkit scan -o jsonl`: result lines have no "type".
func parsePortkit(file string) (map[string]finding, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	found := map[string]finding{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r struct {
			Type, IP, Protocol, State, Service, Product, Version, Info string
			Port                                                       int
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s: %v", file, err)
		}
		if r.Type != "" || r.IP == "" {
			continue
		}
		found[r.IP+" "+key(r.Protocol, r.Port)] = finding{State: r.State, Service: r.Service, Product: r.Product, Version: r.Version, Info: r.Info}
	}
	return found, sc.Err()
}

// parseNmap reads nmap's XML report.
func parseNmap(file string) (map[string]finding, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var run struct {
		Hosts []struct {
			Addrs []struct {
				Addr string `xml:"addr,attr"`
			} `xml:"address"`
			Ports []struct {
				Protocol string `xml:"protocol,attr"`
				Port     int    `xml:"portid,attr"`
				State    struct {
					State string `xml:"state,attr"`
				} `xml:"state"`
				Service struct {
					Name      string `xml:"name,attr"`
					Product   string `xml:"product,attr"`
					Version   string `xml:"version,attr"`
					ExtraInfo string `xml:"extrainfo,attr"`
					Tunnel    string `xml:"tunnel,attr"`
				} `xml:"service"`
			} `xml:"ports>port"`
		} `xml:"host"`
	}
	if err := xml.Unmarshal(b, &run); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	found := map[string]finding{}
	for _, h := range run.Hosts {
		if len(h.Addrs) == 0 {
			continue
		}
		for _, p := range h.Ports {
			s := p.Service
			found[h.Addrs[0].Addr+" "+key(p.Protocol, p.Port)] = finding{State: p.State.State, Service: s.Name, Product: s.Product, Version: s.Version, Info: s.ExtraInfo}
		}
	}
	return found, nil
}

// median of the runs' wall and CPU times.
func median(ts []timed) (wall, cpu time.Duration) {
	var ws, cs []time.Duration
	for _, t := range ts {
		ws = append(ws, t.sample.Wall)
		cs = append(cs, t.sample.CPU)
	}
	return mid(ws), mid(cs)
}

func mid(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}
