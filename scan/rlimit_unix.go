//go:build unix

package scan

import (
	"fmt"
	"os"
	"syscall"
)

// fileLimit raises the soft open-file limit to the hard one and returns
// how many sockets a scan may hold: the limit less reserve and the files
// already open. The Go runtime raises the limit too, at start, on most
// Unixes; raising it here again is for those where it does not, and is
// harmless where it did.
func fileLimit(reserve int) (n int, why string, err error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, "", fmt.Errorf("getrlimit: %w", err)
	}
	if rl.Cur < rl.Max {
		raised := rl
		raised.Cur = rl.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			rl = raised
		}
	}
	limit := uint64(rl.Cur)
	const sane = 1 << 20 // an unlimited hard limit is not a count of sockets
	if limit > sane {
		limit = sane
	}
	open := 0
	if ents, err := os.ReadDir("/dev/fd"); err == nil {
		open = len(ents)
	}
	n = int(limit) - reserve - open
	return n, fmt.Sprintf("open-file limit %d", limit), nil
}
