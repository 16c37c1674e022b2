package main

import (
	"fmt"
	"syscall"
)

// rawSender sends whole IPv4 packets, header included (IPPROTO_RAW implies
// IP_HDRINCL), so that their source can be any address.
type rawSender struct{ fd int }

func newRawSender() (*rawSender, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
	if err != nil {
		return nil, fmt.Errorf("raw socket (needs CAP_NET_RAW): %w", err)
	}
	return &rawSender{fd: fd}, nil
}

// send sends pkt to dst; ENOBUFS and EAGAIN (a full queue) come back as
// errors for the caller to count.
func (s *rawSender) send(pkt []byte, dst [4]byte) error {
	return syscall.Sendto(s.fd, pkt, 0, &syscall.SockaddrInet4{Addr: dst})
}

func (s *rawSender) close() error { return syscall.Close(s.fd) }
