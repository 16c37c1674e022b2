package forward

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// writeProcessMetrics adds the process's open descriptors and resident
// memory, read from /proc: the figures an operator watches for leaks.
func writeProcessMetrics(w *bufio.Writer) {
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		fmt.Fprintf(w, "# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds %d\n", len(fds))
	}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		f := strings.Fields(string(b))
		if len(f) > 1 {
			if pages, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				fmt.Fprintf(w, "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %d\n",
					pages*int64(os.Getpagesize()))
			}
		}
	}
}
