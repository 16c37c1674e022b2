//go:build unix

package cli

import (
	"net"
	"syscall"
)

// shrinkBacklog makes l's accept queue as short as it goes: listen(2) on a
// listening socket sets its backlog anew.
func shrinkBacklog(l *net.TCPListener) error {
	rc, err := l.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = syscall.Listen(int(fd), 0) }); err != nil {
		return err
	}
	return lerr
}
