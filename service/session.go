package service

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"sync"
	"time"
)

// target is one port being identified: its address, the waits learnt
// from the first connection's round trip, and what the probes drew.
type target struct {
	// mu guards what the probes of one wave, which run at once, write:
	// rtt, first, dialErr, late.
	mu   sync.Mutex
	opts *Options
	addr netip.AddrPort
	host string // SNI and Host
	rtt  time.Duration
	// first is the first bytes any probe drew that no detector knew: the
	// banner of an unknown result.
	first []byte
	// tried are the detectors already run plainly, by name.
	tried map[string]bool
	// dialErr is the last dial's failure.
	dialErr error
	// all is the detectors in the order this port tries them.
	all []*detector
	// late is set once a late greeting was waited for: once is enough.
	late bool
}

// Bounds of the waits, which scale with the connection's round trip: a
// loopback or LAN peer is waited for a quarter of a second, a distant one
// longer, never more than the cap.
const (
	minBannerWait = 250 * time.Millisecond
	maxBannerWait = 1500 * time.Millisecond
	minReplyWait  = 500 * time.Millisecond
	maxReplyWait  = 2500 * time.Millisecond
	minQuiet      = 40 * time.Millisecond
	maxQuiet      = 300 * time.Millisecond
)

func clampDur(d, lo, hi time.Duration) time.Duration { return min(max(d, lo), hi) }

// bannerWait is how long a silent peer is given to speak first.
func (t *target) bannerWait() time.Duration {
	return clampDur(8*t.roundTrip(), minBannerWait, maxBannerWait)
}

// roundTrip is the first connection's connect time.
func (t *target) roundTrip() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rtt
}

// failed returns the last dial's error.
func (t *target) failed() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dialErr
}

// replyWait is how long a reply to a request is waited for.
func (t *target) replyWait() time.Duration {
	return clampDur(10*t.roundTrip(), minReplyWait, maxReplyWait)
}

// quiet is how long more bytes are waited for once some came and the
// protocol gives no length: the rest of a multi-line banner.
func (t *target) quiet() time.Duration { return clampDur(3*t.roundTrip(), minQuiet, maxQuiet) }

// session is one connection of one probe, plain or TLS.
type session struct {
	t   *target
	c   net.Conn
	buf []byte
	tls *TLSInfo
	// stop ends the watch that closes the connection on cancellation.
	stop func() bool
	ctx  context.Context
}

// open connects, and over TLS when alpn is not nil (an empty slice for a
// handshake without ALPN).
func (t *target) open(ctx context.Context, useTLS bool, alpn []string) (*session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dial := t.opts.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	start := time.Now()
	c, err := dial(ctx, "tcp", t.addr.String())
	t.mu.Lock()
	if err != nil {
		t.dialErr = err
		t.mu.Unlock()
		return nil, &Error{Op: "dial", Addr: t.addr.String(), Err: err}
	}
	if t.rtt == 0 {
		t.rtt = time.Since(start)
	}
	t.mu.Unlock()
	s := &session{t: t, c: c, ctx: ctx}
	// Cancelling the context (the port's deadline, an interrupt) ends any
	// read or handshake at once.
	s.stop = context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	if useTLS {
		if _, err := s.startTLS(alpn); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

func (s *session) close() {
	s.stop()
	s.c.Close()
}

// deadline is now+wait, or the port's deadline if sooner.
func (s *session) deadline(wait time.Duration) time.Time {
	d := time.Now().Add(wait)
	if cd, ok := s.ctx.Deadline(); ok && cd.Before(d) {
		return cd
	}
	return d
}

// send writes b whole within the reply wait.
func (s *session) send(b []byte) error {
	s.c.SetWriteDeadline(s.deadline(s.t.replyWait()))
	_, err := s.c.Write(b)
	return err
}

// read reads into the session's buffer until done says the reply is
// whole, the byte cap is reached, the peer closes, or the wait passes
// with nothing read. With done nil, once bytes came, it waits only a
// quiet interval more for the rest. It returns everything read on the
// session since the last reset.
func (s *session) read(wait time.Duration, done func([]byte) bool) []byte {
	limit := s.t.opts.maxBytes()
	s.c.SetReadDeadline(s.deadline(wait))
	var chunk [4096]byte
	start := len(s.buf)
	for len(s.buf) < limit {
		n, err := s.c.Read(chunk[:min(len(chunk), limit-len(s.buf))])
		s.buf = append(s.buf, chunk[:n]...)
		if done != nil && done(s.buf) {
			break
		}
		if err != nil {
			break
		}
		if done == nil && len(s.buf) > start {
			s.c.SetReadDeadline(s.deadline(s.t.quiet()))
		}
	}
	return s.buf
}

// exchange sends req and reads the reply until done.
func (s *session) exchange(req []byte, done func([]byte) bool) []byte {
	if err := s.send(req); err != nil {
		return s.buf
	}
	return s.read(s.t.replyWait(), done)
}

// reset forgets what was read, for the next exchange.
func (s *session) reset() { s.buf = s.buf[:0] }

// startTLS runs a TLS client handshake over the session's connection,
// which then carries TLS; the certificate is read whoever signed it.
func (s *session) startTLS(alpn []string) (*TLSInfo, error) {
	cfg := &tls.Config{
		InsecureSkipVerify: true, // to read whatever certificate is there; nothing is trusted
		NextProtos:         alpn,
		MinVersion:         tls.VersionTLS10,
	}
	if _, err := netip.ParseAddr(s.t.host); err != nil {
		cfg.ServerName = s.t.host
	}
	tc := tls.Client(s.c, cfg)
	tc.SetDeadline(s.deadline(s.t.replyWait()))
	if err := tc.HandshakeContext(s.ctx); err != nil {
		return nil, &Error{Op: "tls", Addr: s.t.addr.String(), Err: err}
	}
	tc.SetDeadline(time.Time{})
	s.c = tc
	s.buf = s.buf[:0]
	st := tc.ConnectionState()
	s.tls = tlsInfo(&st, time.Now())
	return s.tls, nil
}

// line reports whether b ends a line.
func lineDone(b []byte) bool { return len(b) > 0 && b[len(b)-1] == '\n' }
