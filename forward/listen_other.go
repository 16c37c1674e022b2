//go:build !linux

package forward

import "net"

// listenTCP listens on addr; Go sets keep-alives on each accepted
// connection.
func listenTCP(addr string) (*net.TCPListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return ln.(*net.TCPListener), nil
}
