// Command gohello is the floor under a Go command's start-up on this
// machine: a static hello world, timed beside portkit by bench/lookup.sh.
// It starts the Go runtime, runs the few package initialisers os needs,
// writes one line and exits.
package main

import "os"

func main() { os.Stdout.WriteString("hello\n") }
