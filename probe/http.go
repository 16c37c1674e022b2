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
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, bodyLimit))
	resp.Body.Close()
	return resp.StatusCode, nil
}
