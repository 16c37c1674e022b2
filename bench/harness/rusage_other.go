//go:build !linux

package harness

import "os"

// peakRSS reports 0 (unknown) outside Linux: the unit of ru_maxrss differs
// between Unix systems and Windows has no rusage at all, so the report shows
// "n/a" rather than a number of doubtful scale.
func peakRSS(*os.ProcessState) int64 { return 0 }

// spawnFloor is 0 (unknown) where peak RSS is not reported.
func spawnFloor() int64 { return 0 }
