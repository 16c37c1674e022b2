//go:build !unix

package cli

import (
	"errors"
	"net"
)

func shrinkBacklog(*net.TCPListener) error {
	return errors.New("blackhole: a listener's backlog is set anew on Unix only")
}
