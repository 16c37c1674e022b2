// Command sockfixture fills the network namespace it runs in with TCP
// sockets for the socket benchmarks (bench/sockets.sh): PROCS child processes,
// each listening on one 127.0.0.1 port and holding CONNS established
// connections to itself, so that both ends of every connection, and the
// listener, belong to a real process the tools under test must find.
//
// With -busy N it adds the shape of a busy host: one more child listening
// on a port of its own with N accepted connections, whose client ends the
// fixture's parent process holds. (One process holding both ends would need
// 2N descriptors, more than the hard RLIMIT_NOFILE allows here.) Its port is
// not in FILE: the benchmark asks about a listener of another process, so
// that the search must read the busy process's descriptors for nothing.
//
//	sockfixture -procs 400 -conns 25 [-busy 10000] -ready FILE [-max-lifetime 10m]
//
// Once every child is listening and connected, the ports are written to FILE,
// one per line in ascending order (atomically, so that a reader never sees a
// partial list). The fixture then holds everything open until SIGTERM or
// SIGINT, or until -max-lifetime has passed, kills and reaps its children,
// removes FILE and exits. Children die with the parent even if it is killed
// outright.
//
// It binds only to 127.0.0.1, yet 400 × 25 connections take over 20,000
// ephemeral ports and as many file descriptors: run it in a network namespace
// of its own (ip netns exec), as bench/sockets.sh does.
//
// Exit codes: 0 stopped by a signal or by -max-lifetime, 1 failure, 2 bad
// usage.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

const usage = `usage: sockfixture -procs N -conns N [-busy N] -ready FILE [-max-lifetime D]`

// childFlag, as the first argument, selects the child role. It is not a
// registered flag, so that -h does not offer it to users.
const childFlag = "-child"

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

// config is what the parent is asked to set up.
type config struct {
	procs       int
	conns       int
	busy        int // accepted connections of the busy child; 0: none
	ready       string
	maxLifetime time.Duration
}

// run dispatches on the role and maps errors to exit codes.
func run(args []string, stderr io.Writer) int {
	if len(args) > 0 && args[0] == childFlag {
		ca, err := parseChildArgs(args[1:])
		if err == nil {
			err = runChild(ca)
		}
		if err != nil {
			fmt.Fprintf(stderr, "sockfixture child %d: %v\n", os.Getpid(), err)
			return 1
		}
		return 0
	}
	cfg, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "sockfixture: %v\n%s\n", err, usage)
		return 2
	}
	if err := runParent(cfg, stderr); err != nil {
		fmt.Fprintf(stderr, "sockfixture: %v\n", err)
		return 1
	}
	return 0
}

func parseArgs(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fl := flag.NewFlagSet("sockfixture", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fl.PrintDefaults()
	}
	fl.IntVar(&cfg.procs, "procs", 400, "child `processes`, one listener each")
	fl.IntVar(&cfg.conns, "conns", 25, "established `connections` each child holds to its own listener")
	fl.IntVar(&cfg.busy, "busy", 0, "`connections` accepted by one more, busy, child (0: none)")
	fl.StringVar(&cfg.ready, "ready", "", "`FILE` receiving the listening ports once all are set up")
	fl.DurationVar(&cfg.maxLifetime, "max-lifetime", 10*time.Minute, "stop by itself after this `duration`, set-up included")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		// The flag package has already printed the error.
		return cfg, errors.New("bad flags")
	}
	switch {
	case fl.NArg() > 0:
		return cfg, fmt.Errorf("unexpected argument %q", fl.Arg(0))
	case cfg.procs < 1:
		return cfg, errors.New("-procs must be at least 1")
	case cfg.conns < 0:
		return cfg, errors.New("-conns must be 0 or more")
	case cfg.busy < 0:
		return cfg, errors.New("-busy must be 0 or more")
	case cfg.ready == "":
		return cfg, errors.New("-ready FILE is required")
	case cfg.maxLifetime <= 0:
		return cfg, errors.New("-max-lifetime must be positive")
	}
	return cfg, nil
}

// childConfig is what a child is asked to set up: conns connections to
// itself, then accept more connections dialled by the parent.
type childConfig struct {
	conns    int
	accept   int
	lifetime time.Duration
}

// childArgs is the command line of a child; parseChildArgs reads it back.
func childArgs(c childConfig) []string {
	return []string{childFlag, "-conns", strconv.Itoa(c.conns), "-accept", strconv.Itoa(c.accept), "-max-lifetime", c.lifetime.String()}
}

func parseChildArgs(args []string) (childConfig, error) {
	var c childConfig
	fl := flag.NewFlagSet("sockfixture child", flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	fl.IntVar(&c.conns, "conns", 0, "")
	fl.IntVar(&c.accept, "accept", 0, "")
	fl.DurationVar(&c.lifetime, "max-lifetime", 0, "")
	if err := fl.Parse(args); err != nil {
		return c, err
	}
	if fl.NArg() > 0 || c.conns < 0 || c.accept < 0 || c.lifetime <= 0 {
		return c, fmt.Errorf("bad child arguments %q", args)
	}
	return c, nil
}

// parsePortLine reads one line a child wrote to the parent: its port.
func parsePortLine(line string) (int, error) {
	p, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("child sent %q, want a port number", line)
	}
	return p, nil
}

// formatPorts is the content of the ready file.
func formatPorts(ports []int) string {
	var b strings.Builder
	for _, p := range ports {
		b.WriteString(strconv.Itoa(p))
		b.WriteByte('\n')
	}
	return b.String()
}
