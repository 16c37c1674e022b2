//go:build linux

// Command guardbench is the side-by-side benchmark of `portkit guard`
// against scanlogd (bench/guard.sh): every scan type from its own source
// address, the time from the scanner's start to each detector's first
// alert, false alerts on benign traffic, and the cost of a spoofed SYN
// flood. bench/guard.sh makes the namespaces and starts the fixture;
// guardbench starts the detectors in the target namespace and the traffic
// in the scanner's (through `ip netns exec`), and writes the section of
// docs/BENCHMARKS.md.
//
//	guardbench run -scanner-ns S -target-ns T -plan FILE -portkit BIN -devdir DIR -md FILE -section NAME -command LINE
//	guardbench benign -plan FILE        (in the scanner namespace)
//	guardbench flood -count N -for D    (in the scanner namespace)
//	guardbench metrics URL              (in the target namespace)
//
// Exit codes: 0 done, 1 failure, 2 bad usage.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: guardbench run|benign|flood|metrics [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runBench(os.Args[2:])
	case "benign":
		err = benign(os.Args[2:])
	case "flood":
		err = flood(os.Args[2:])
	case "metrics":
		err = metrics(os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "guardbench: unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "guardbench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
