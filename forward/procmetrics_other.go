//go:build !linux

package forward

import "bufio"

// writeProcessMetrics has no /proc to read here.
func writeProcessMetrics(*bufio.Writer) {}
