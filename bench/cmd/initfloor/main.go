// Command initfloor is portkit's binary with nothing run: it links every
// package portkit links (its code is kept by a call that never happens), so
// it pays for the runtime's start-up on a binary of portkit's size and for
// every package initialiser, then exits. Timed by bench/lookup.sh between
// gohello (the Go floor) and portkit lookup, it tells start-up from work.
package main

import (
	"context"
	"os"

	"github.com/portkit/portkit/internal/cli"
)

func main() {
	// Never true (no command is started with a thousand arguments), but
	// the linker cannot know, so portkit's whole command line is linked.
	if len(os.Args) > 1000 {
		os.Exit(cli.Main(context.Background(), os.Args[1:], cli.OSStreams()))
	}
	os.Stdout.WriteString("hello\n")
}
