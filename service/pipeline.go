package service

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// detector recognises one protocol (or one family that shares a first
// exchange). A server-first protocol has banner; a client-first one has
// probe; a few have both (a banner, then a request on the same session).
type detector struct {
	name string
	// ports are where the protocol is usually found; the port a target
	// is on runs its detectors first.
	ports []uint16
	// banner recognises what the server sent unprompted.
	banner func(b []byte) (Result, bool)
	// after continues on the banner's session once banner matched: a
	// version command, STARTTLS.
	after func(s *session, r *Result)
	// probe sends its request on a fresh session and recognises the
	// reply. It reports false when the reply is not its protocol.
	probe func(s *session) (Result, bool)
	// plainOnly keeps the probe from being tried inside TLS, where the
	// protocol is not found.
	plainOnly bool
}

// detectors lists every detector: banner ones first, then the client-first
// probes in the order they are tried on a port that says nothing, most
// likely first. HTTP goes first: it draws a reply from many servers of
// other protocols too, which their own detectors then recognise.
func detectors() []*detector {
	return []*detector{
		sshDetector, ftpSMTPDetector, pop3Detector, imapDetector, mysqlDetector, vncDetector,
		rsyncDetector, natsDetector, ircDetector, telnetDetector,
		httpDetector, redisDetector, memcachedDetector, postgresDetector, mongoDetector,
		mqttDetector, amqpDetector, ldapDetector, dnsTCPDetector, xmppDetector,
		rtspDetector, sipDetector, mssqlDetector, rdpDetector, smbDetector, kafkaDetector,
		cassandraDetector, zookeeperDetector, stunDetector,
	}
}

// probeWave is how many client-first probes run at once on one port.
const probeWave = 4

// tlsPorts are the ports of protocols run inside TLS from the first byte
// (IANA's https, smtps/submissions, ldaps, imaps, pop3s, ircs, amqps,
// secure-mqtt, docker-s, the Kubernetes API, and the usual alternates).
var tlsPorts = []uint16{443, 465, 636, 853, 993, 995, 2376, 5061, 5671, 6443, 6697, 8443, 8883, 9443}

// run is the pipeline over one port.
func (t *target) run(ctx context.Context) Result {
	all := detectors()
	t.all = all
	port := t.addr.Port()
	hinted := func(d *detector) bool { return slices.Contains(d.ports, port) }
	// The port's own detectors go first, in both lists.
	slices.SortStableFunc(all, func(a, b *detector) int {
		ha, hb := hinted(a), hinted(b)
		switch {
		case ha && !hb:
			return -1
		case hb && !ha:
			return 1
		}
		return 0
	})
	t.tried = map[string]bool{}

	// 0. A port where TLS is the rule: the handshake first, since a
	// plain request there draws only an error.
	if slices.Contains(tlsPorts, port) {
		if r, ok := t.tlsStep(ctx, all); ok {
			return r
		}
		if t.failed() != nil {
			return t.unreachable()
		}
	}

	// 1. The port's client-first detector, when the port has one.
	for _, d := range all {
		if hinted(d) && d.probe != nil && d.banner == nil {
			t.tried[d.name] = true
			if r, ok := t.try(ctx, d, false, nil); ok {
				return r
			}
			if t.failed() != nil {
				return t.unreachable()
			}
		}
	}
	// 2. A banner.
	wait := t.bannerWait()
	for _, d := range all {
		if hinted(d) && d.banner != nil {
			wait = t.replyWait() // the port's protocol speaks first: give it the time
		}
	}
	if r, ok, spoke := t.bannerStep(ctx, all, false, nil, wait); ok || spoke {
		return r
	}
	if t.failed() != nil {
		return t.unreachable()
	}
	// 3. TLS, and the pipeline again inside it.
	if r, ok := t.tlsStep(ctx, all); ok {
		return r
	}
	// 4. Client-first probes, each on its own connection, a wave of a
	// few at once: a port that answers none costs a reply wait a wave,
	// not one a probe. The first in order of likelihood that recognises
	// its reply wins.
	var left []*detector
	for _, d := range all {
		if d.probe != nil && d.banner == nil && !t.tried[d.name] {
			left = append(left, d)
			t.tried[d.name] = true
		}
	}
	for len(left) > 0 && ctx.Err() == nil && t.failed() == nil {
		wave := left[:min(probeWave, len(left))]
		left = left[len(wave):]
		type answer struct {
			r  Result
			ok bool
		}
		answers := make([]answer, len(wave))
		var wg sync.WaitGroup
		for i, d := range wave {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, ok := t.try(ctx, d, false, nil)
				answers[i] = answer{r, ok}
			}()
		}
		wg.Wait()
		for _, a := range answers {
			if a.ok {
				return a.r
			}
		}
	}
	return t.unknown(ctx)
}

func (t *target) unreachable() Result {
	return Result{Service: Unknown, Evidence: "connect failed: " + plainErr(t.failed())}
}

// unknown is the result of a port nothing recognised.
func (t *target) unknown(ctx context.Context) Result {
	r := Result{Service: Unknown}
	switch {
	case len(t.first) > 0:
		r.Banner = escape(t.first, 96)
		r.Evidence = "replied with bytes no detector recognised"
	case ctx.Err() != nil:
		r.Evidence = "no reply to any probe before the deadline"
	default:
		r.Evidence = "no reply to any probe"
	}
	if err := t.failed(); err != nil {
		r.Evidence += "; a connect failed: " + plainErr(err)
	}
	return r
}

// try runs d's probe on a new session, plain or TLS.
func (t *target) try(ctx context.Context, d *detector, useTLS bool, alpn []string) (Result, bool) {
	s, err := t.open(ctx, useTLS, alpn)
	if err != nil {
		return Result{}, false
	}
	defer s.close()
	r, ok := d.probe(s)
	if !ok {
		t.remember(s.buf)
		return t.lateBanner(ctx, s.buf, useTLS)
	}
	if r.TLS == nil {
		r.TLS = s.tls
	}
	return r, true
}

// bannerStep waits for the server to speak first on a new session. ok
// says a detector recognised the banner; spoke that the server sent
// bytes, recognised or not (a server that speaks first and is not known
// is reported as unknown with its banner: probing it further would only
// confuse it).
func (t *target) bannerStep(ctx context.Context, all []*detector, useTLS bool, s *session, wait time.Duration) (Result, bool, bool) {
	if s == nil {
		var err error
		if s, err = t.open(ctx, useTLS, nil); err != nil {
			return Result{}, false, false
		}
		defer s.close()
	}
	b := s.read(wait, nil)
	if len(b) == 0 {
		return Result{}, false, false
	}
	for _, d := range all {
		if d.banner == nil {
			continue
		}
		if r, ok := d.banner(b); ok {
			if d.after != nil {
				d.after(s, &r)
			}
			if r.TLS == nil {
				r.TLS = s.tls
			}
			return r, true, true
		}
	}
	t.remember(b)
	r := t.unknown(ctx)
	r.TLS = s.tls
	return r, false, true
}

// lateBanner recognises, in what a client-first probe drew, the greeting
// of a server that speaks first but was slower than the banner wait (a
// mail server looking the client up, a daemon still starting its
// workers). The greeting is then waited for on a new session for as long
// as the port's budget allows, so that what follows it (a version
// command, STARTTLS) runs on a clean session.
func (t *target) lateBanner(ctx context.Context, b []byte, useTLS bool) (Result, bool) {
	if len(b) == 0 {
		return Result{}, false
	}
	var match *detector
	for _, d := range t.all {
		if d.banner != nil {
			if _, ok := d.banner(b); ok {
				match = d
				break
			}
		}
	}
	if match == nil {
		return Result{}, false
	}
	t.mu.Lock()
	again := !t.late
	t.late = true
	t.mu.Unlock()
	if !again {
		// Another probe of this wave saw the greeting first and waits
		// for it on a clean session (STARTTLS, a version command): its
		// answer is the one to take, not this partial one, which would
		// win the wave whenever its probe comes first.
		return Result{}, false
	}
	wait := t.replyWait()
	if dl, ok := ctx.Deadline(); ok {
		wait = max(wait, time.Until(dl))
	}
	if r, ok, _ := t.bannerStep(ctx, t.all, useTLS, nil, wait); ok {
		return r, true
	}
	r, _ := match.banner(b)
	r.Evidence += " (greeting seen late, in reply to another protocol's probe)"
	return r, true
}

// remember keeps the first unrecognised bytes a probe drew.
func (t *target) remember(b []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.first) == 0 && len(b) > 0 {
		t.first = append([]byte(nil), b[:min(len(b), 256)]...)
	}
}

// tlsStep tries a TLS handshake, offering h2 and http/1.1; inside, the
// banner wait and the probes run again.
func (t *target) tlsStep(ctx context.Context, all []*detector) (Result, bool) {
	s, err := t.open(ctx, true, []string{"h2", "http/1.1"})
	if err != nil {
		return Result{}, false
	}
	info := s.tls
	inner := func(r Result) (Result, bool) {
		r.TLS = info
		return r, true
	}
	if info.ALPN == "h2" || info.ALPN == "http/1.1" {
		s.close()
		if r, ok := t.try(ctx, httpDetector, true, []string{"http/1.1"}); ok {
			return inner(r)
		}
		return inner(Result{Service: "http", Info: info.ALPN, Confidence: 8, Evidence: "TLS ALPN chose " + info.ALPN})
	}
	r, ok, spoke := t.bannerStep(ctx, all, true, s, t.bannerWait())
	s.close()
	if ok || spoke {
		return inner(r)
	}
	// The port's own protocol, then HTTP, then the rest that live in TLS.
	for _, d := range all {
		if d.probe == nil || d.banner != nil || d.plainOnly {
			continue
		}
		if r, ok := t.try(ctx, d, true, []string{}); ok {
			return inner(r)
		}
		if ctx.Err() != nil {
			break
		}
	}
	r = t.unknown(ctx)
	r.Service, r.Confidence = "tls", 8
	r.Evidence = "TLS handshake completed; nothing recognised inside"
	return inner(r)
}

// escape writes b's first n bytes as printable text: ASCII as it is,
// \r \n \t, and \xNN for the rest.
func escape(b []byte, n int) string {
	var sb strings.Builder
	for i, c := range b {
		if i >= n {
			sb.WriteString("…")
			break
		}
		switch {
		case c == '\r':
			sb.WriteString(`\r`)
		case c == '\n':
			sb.WriteString(`\n`)
		case c == '\t':
			sb.WriteString(`\t`)
		case c == '\\':
			sb.WriteString(`\\`)
		case c >= 0x20 && c < 0x7f:
			sb.WriteByte(c)
		default:
			sb.WriteString(`\x`)
			sb.WriteString(strconv.FormatUint(uint64(c)>>4, 16))
			sb.WriteString(strconv.FormatUint(uint64(c)&15, 16))
		}
	}
	return sb.String()
}

// firstLine is b's first line, without its end, as valid text.
func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	s = strings.TrimRight(s, "\r")
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	return s
}

// plainErr is an error's message without Go's wrapping of the address.
func plainErr(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg
}
