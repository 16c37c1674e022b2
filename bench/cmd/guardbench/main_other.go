//go:build !linux

package main

import (
	"fmt"
	"os"
	"runtime"
)

// guardbench runs scanners and sensors in Linux network namespaces.
func main() {
	fmt.Fprintf(os.Stderr, "guardbench: not supported on %s (it needs Linux network namespaces)\n", runtime.GOOS)
	os.Exit(2)
}
