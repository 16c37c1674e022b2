// Package hostports reads this host's port policy: the range the kernel
// hands out ephemeral ports from, and the first port an unprivileged process
// may bind.
package hostports

import (
	"errors"
	"fmt"
	"runtime"
)

// Policy is the host's port policy.
type Policy struct {
	// EphemeralLow and EphemeralHigh bound the ports the kernel picks for
	// outgoing connections and for binds to port 0, inclusive.
	EphemeralLow, EphemeralHigh uint16
	// UnprivilegedStart is the first port a process without privileges
	// (CAP_NET_BIND_SERVICE on Linux) may bind; 0 when all may.
	UnprivilegedStart uint16
}

// Ephemeral reports whether port is inside the ephemeral range.
func (p Policy) Ephemeral(port uint16) bool {
	return p.EphemeralLow <= port && port <= p.EphemeralHigh
}

// Privileged reports whether binding port needs privileges.
func (p Policy) Privileged(port uint16) bool { return port < p.UnprivilegedStart }

// ErrUnsupported is returned where reading the policy is not implemented.
var ErrUnsupported = errors.New("reading the port policy is not supported on " + runtime.GOOS)

// Reader reads the policy. Its zero value reads the running system; Root
// points it at another tree (a test fixture, or a container's /proc).
type Reader struct {
	Root string
}

// Read returns the policy of the running system.
func Read() (Policy, error) { return Reader{}.Read() }

// Error is a policy source that could not be read.
type Error struct {
	Path string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("read port policy %s: %v", e.Path, e.Err) }
func (e *Error) Unwrap() error { return e.Err }
