package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// bodyLimit is how much of a response body is read: enough for a small
// health response to arrive whole, so the server sees an orderly close; the
// status line is all that is judged.
const bodyLimit = 4 << 10

// exchange sends a GET for t.URL over conn, the connection Check already
// made, and returns the response's status code. Doing the exchange by hand
// rather than through http.Client keeps it on that one connection (the
// address and latency reported are the ones the request used), leaves no
// transport goroutines behind, and ignores proxy settings: the target itself
// is what is checked. HTTP/1.1 only.
func exchange(ctx context.Context, conn net.Conn, t Target, opts CheckOptions) (int, error) {
	code, err := exchangeOn(ctx, conn, t, opts)
	if err != nil && ctx.Err() != nil {
		// The error is that of the past deadline set below ("i/o
		// timeout"); the caller must still tell an interrupt from a
		// timeout.
		err = &endedError{ended: ctx.Err(), err: err}
	}
	return code, err
}

// endedError is an exchange cut short because its context ended: it reads
// as the I/O error and is also the context's error.
type endedError struct{ ended, err error }

func (e *endedError) Error() string   { return e.err.Error() }
func (e *endedError) Unwrap() []error { return []error{e.ended, e.err} }

func exchangeOn(ctx context.Context, conn net.Conn, t Target, opts CheckOptions) (int, error) {
	u, err := url.Parse(t.URL)
	if err != nil {
		return 0, err
	}
	// Reads and writes do not watch ctx; a past deadline unblocks them.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if strings.EqualFold(u.Scheme, "https") {
		host, _, _ := strings.Cut(t.Host, "%") // a zone is no part of a certificate
		tc := tls.Client(conn, &tls.Config{ServerName: host, InsecureSkipVerify: opts.InsecureSkipVerify})
		if err := tc.HandshakeContext(ctx); err != nil {
			return 0, err
		}
		conn = tc
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL, nil)
	if err != nil {
		return 0, err
	}
	req.Close = true
	req.Header.Set("User-Agent", "portkit-probe")
	if u.User != nil { // http.Client would do this; Request.Write does not
		pass, _ := u.User.Password()
		req.SetBasicAuth(u.User.Username(), pass)
	}
	if err := req.Write(conn); err != nil {
		return 0, err
	}
	br := bufio.NewReader(conn)
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return 0, err
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue // an interim response (103 Early Hints): the final one follows
		}
		// What of the body comes at once, so that a small health response
		// is read whole and the server sees an orderly close; a body that
		// streams on is not waited for.
		conn.SetReadDeadline(time.Now().Add(bodyWait))
		io.Copy(io.Discard, io.LimitReader(resp.Body, bodyLimit))
		resp.Body.Close()
		return resp.StatusCode, nil
	}
}

// bodyWait is how long the body is read for, after the headers.
const bodyWait = 50 * time.Millisecond
