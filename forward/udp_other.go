//go:build !unix

package forward

// readReply reads into a pooled buffer that the blocked read holds.
func (s *udpSession) readReply() (int, *[]byte, error) {
	bp := s.u.bufs.Get().(*[]byte)
	n, err := s.up.Read(*bp)
	if err != nil {
		s.u.bufs.Put(bp)
		return 0, nil, err
	}
	return n, bp, nil
}
