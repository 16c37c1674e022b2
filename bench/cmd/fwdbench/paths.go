package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/portkit/portkit/bench/internal/proc"
)

// Ports in the benchmark's own network namespace, all on 127.0.0.1.
const (
	iperfPort   = 5201 // iperf3 -s
	httpPort    = 8080 // fwdtarget -http
	echoPort    = 7007 // fwdtarget -echo (TCP) and -udp-echo (UDP)
	metricsPort = 9100 // portkit forward --metrics in the idle benchmark

	// Forwarders listen on base+1 (portkit), base+2 (socat), base+3
	// (rinetd), base+4 (splicefloor), a base per benchmark.
	tcpBase   = 9000
	churnBase = 9010
	idleBase  = 9020
	udpBase   = 9030
)

// path is one way from the load to a server: direct, or through a
// forwarder.
type path struct {
	name string
	port int        // where the load goes
	argv []string   // the forwarder's command line; nil for direct
	p    *proc.Proc // the running forwarder
	// shown, when set, is what the reports show for the command line
	// (rinetd's, whose configuration file is a temporary one).
	shown string
}

func (p *path) addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

// cmdLine is the forwarder's command line for the reports, or what direct
// means.
func (p *path) cmdLine() string {
	if p.argv == nil {
		return "(no forwarder: the load reaches the server itself)"
	}
	if p.shown != "" {
		return p.shown
	}
	return "`" + commandLine(p.argv) + "`"
}

func local(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// portkitPath is `portkit forward [extra] [udp/]127.0.0.1:LISTEN 127.0.0.1:TARGET`.
func portkitPath(c *config, proto string, listen, target int, extra ...string) *path {
	l := local(listen)
	if proto == "udp" {
		l = "udp/" + l
	}
	argv := append([]string{c.portkit, "forward"}, extra...)
	argv = append(argv, l, local(target))
	return &path{name: "portkit", port: listen, argv: argv}
}

// floorPath is bench/cmd/splicefloor from 127.0.0.1:LISTEN to
// 127.0.0.1:TARGET, with its flags.
func floorPath(c *config, listen, target int, flags ...string) *path {
	argv := append(append([]string{c.floor}, flags...), "-listen", local(listen), "-target", local(target))
	return &path{name: "splicefloor", port: listen, argv: argv}
}

// socatPath forks a child per connection (TCP) or per client address (UDP),
// as issue 5 describes it; opts are added to the listening address.
func socatPath(proto string, listen, target int, opts ...string) *path {
	if proto == "udp" {
		return &path{name: "socat", port: listen, argv: []string{"socat",
			fmt.Sprintf("UDP-LISTEN:%d,fork,reuseaddr", listen), "UDP:" + local(target)}}
	}
	return &path{name: "socat", port: listen, argv: []string{"socat",
		fmt.Sprintf("TCP-LISTEN:%d,fork,reuseaddr", listen) + strings.Join(append([]string{""}, opts...), ","),
		"TCP:" + local(target)}}
}

// rinetdPath writes rinetd's one-rule configuration file into dir.
func rinetdPath(dir string, listen, target int) (*path, error) {
	conf := filepath.Join(dir, "rinetd.conf")
	// rinetd keeps its pid in /var/run/rinetd.pid unless told otherwise.
	rule := fmt.Sprintf("pidlogfile %s\n127.0.0.1 %d 127.0.0.1 %d\n", filepath.Join(dir, "rinetd.pid"), listen, target)
	if err := os.WriteFile(conf, []byte(rule), 0o644); err != nil {
		return nil, err
	}
	return &path{name: "rinetd", port: listen, argv: []string{"rinetd", "-f", "-c", conf},
		shown: fmt.Sprintf("`rinetd -f -c FILE`, FILE holding `127.0.0.1 %d 127.0.0.1 %d`", listen, target)}, nil
}

// startPaths starts the forwarders of paths and waits until each listens.
// On error, those already started are stopped.
func startPaths(ctx context.Context, c *config, proto string, paths []*path) error {
	for _, p := range paths {
		if p.argv == nil {
			continue
		}
		var err error
		p.p, err = proc.Start(p.name+"-"+proto, p.argv, c.tmp)
		if err == nil {
			err = proc.WaitListening(ctx, p.p, proto, p.port, 10*time.Second)
		}
		if err != nil {
			stopPaths(paths)
			return err
		}
	}
	return nil
}

func stopPaths(paths []*path) {
	for _, p := range paths {
		p.p.Stop()
	}
}

// startServer starts fwdtarget with the given server flags and waits until
// it reports ready.
func startServer(ctx context.Context, c *config, args ...string) (*proc.Proc, error) {
	ready := filepath.Join(c.tmp, "target.ready")
	argv := append([]string{c.target, "-ready", ready, "-max-lifetime", "30m"}, args...)
	p, err := proc.Start("fwdtarget", argv, c.tmp)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			return p, nil
		}
		if p.Exited() || time.Now().After(deadline) {
			p.Stop()
			return nil, p.Failure("was not ready within 10 s")
		}
		select {
		case <-ctx.Done():
			p.Stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// pause lets the previous run's leftovers (sockets closing, forks exiting)
// settle before the next run.
func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
