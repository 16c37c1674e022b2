// Command tlsfloor is gohello with crypto/tls linked: the floor under any
// single binary that detects services, since service detection needs TLS
// (handshakes, certificates) and Go runs every linked package's
// initialisers before main. Timed by bench/lookup.sh beside gohello, it
// shows what one static binary pays at start-up for TLS alone.
package main

import (
	"crypto/tls"
	"os"
)

func main() {
	// Never true (no command is started with a thousand arguments); the
	// call keeps crypto/tls linked.
	if len(os.Args) > 1000 {
		_ = tls.Client(nil, nil)
	}
	os.Stdout.WriteString("hello\n")
}
