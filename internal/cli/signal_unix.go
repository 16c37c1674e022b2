//go:build unix

package cli

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// signalNumber is the signal that ended a child, for the shell's 128+N.
func signalNumber(ee *exec.ExitError) int {
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return int(ws.Signal())
	}
	return 0
}

// parseSignal reads a signal by name (TERM, SIGTERM, any case) or number.
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, usagef("--signal %q: no such signal (try TERM, INT, HUP, KILL or a number)", s)
}

// signalName is the short name of sig: TERM, KILL.
func signalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return strings.TrimPrefix(n, "SIG")
	}
	return strconv.Itoa(int(sig))
}

// reloadSignals are the signals that make `forward` re-read its rules.
func reloadSignals() []os.Signal { return []os.Signal{syscall.SIGHUP} }

func isReload(s os.Signal) bool { return s == syscall.SIGHUP }

// execProcess is how portkit replaces itself with the program at path.
func execProcess() func(path string, argv, env []string) error { return syscall.Exec }
