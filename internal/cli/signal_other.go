//go:build !unix

package cli

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

func signalNumber(*exec.ExitError) int { return 0 }

var signalNames = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT,
	"KILL": syscall.SIGKILL, "TERM": syscall.SIGTERM,
}

func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return syscall.Signal(n), nil
	}
	if sig, ok := signalNames[strings.TrimPrefix(strings.ToUpper(s), "SIG")]; ok {
		return sig, nil
	}
	return 0, usagef("--signal %q: no such signal (try TERM, INT, HUP or KILL)", s)
}

func signalName(sig syscall.Signal) string {
	for n, s := range signalNames {
		if s == sig {
			return n
		}
	}
	return strconv.Itoa(int(sig))
}

// reloadSignals: no SIGHUP here, so `forward` has no reload signal.
func reloadSignals() []os.Signal { return nil }

func isReload(os.Signal) bool { return false }

// execProcess is nil: this system cannot replace a process with another,
// so `wait -- CMD` runs the command as a child.
func execProcess() func(path string, argv, env []string) error { return nil }
