// Command portkit is everything you do with network ports, in one tool.
package main

import (
	"context"
	"os"

	"github.com/portkit/portkit/internal/cli"
)

func main() {
	ctx, stop := cli.InterruptContext(context.Background())
	code := cli.Main(ctx, os.Args[1:], cli.OSStreams())
	stop()
	os.Exit(code)
}
