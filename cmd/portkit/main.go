// Command portkit is everything you do with network ports, in one tool.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/portkit/portkit/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.OSStreams())
	stop()
	os.Exit(code)
}
