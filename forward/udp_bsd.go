//go:build unix && !linux

package forward

import (
	"golang.org/x/sys/unix"
)

// readReply waits for the session's socket to be readable without holding a
// buffer, then reads into a pooled one: ten thousand idle sessions cost ten
// thousand goroutines, not ten thousand 64 KiB buffers.
func (s *udpSession) readReply() (int, *[]byte, error) {
	rc, err := s.up.SyscallConn()
	if err != nil {
		return 0, nil, err
	}
	var (
		n    int
		bp   *[]byte
		rerr error
	)
	err = rc.Read(func(fd uintptr) bool {
		b := s.u.bufs.Get().(*[]byte)
		n, rerr = unix.Read(int(fd), *b)
		if rerr == unix.EAGAIN || rerr == unix.EINTR {
			s.u.bufs.Put(b)
			return false
		}
		if rerr != nil {
			s.u.bufs.Put(b)
			return true
		}
		bp = b
		return true
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return 0, nil, err
	}
	return n, bp, nil
}
