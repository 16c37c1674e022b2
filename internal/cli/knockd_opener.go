package cli

import (
	"errors"

	"github.com/portkit/portkit/knock"
)

// newOpener is the firewall backend of `portkit knockd`: what lets a
// source in to a port for a time. It is the one place where knockd meets
// the firewall package (nftables, portkit's own table named table).
//
// MERGE POINT: the firewall package is built on another branch; until it
// is merged here, this build has no backend and knockd refuses to start
// rather than pretend to open anything.
func newOpener(table string) (knock.Opener, error) {
	_ = table
	return nil, errors.New("firewall backend not available in this build")
}
