package probe_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portkit/portkit/probe"
)

// All traffic in these tests goes to loopback. Names under .invalid are
// answered by a stub resolver, and "silent" addresses by a Dial that waits
// for its context to end: nothing reaches DNS or leaves the host.

// stubResolver answers from its map and says "no such host" to every other
// name.
type stubResolver map[string][]netip.Addr

func (r stubResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if addrs, ok := r[host]; ok {
		return addrs, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// silentDial dials for real except to the addresses in silent, where it
// behaves like a firewall that drops packets: nothing, until ctx ends. It
// sends nothing anywhere for those.
func silentDial(silent ...string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		for _, s := range silent {
			if addr == s {
				<-ctx.Done()
				return nil, ctx.Err()
			}
		}
		return new(net.Dialer).DialContext(ctx, network, addr)
	}
}

// listen opens a TCP listener on loopback for the length of the test.
func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// closedAddr is a loopback address whose listener was just closed.
func closedAddr(t *testing.T) string {
	t.Helper()
	l := listen(t)
	l.Close()
	return l.Addr().String()
}

func target(t *testing.T, s string) probe.Target {
	t.Helper()
	tg, err := probe.ParseTarget(s)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func hasIPv6() bool {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func TestCheckOpen(t *testing.T) {
	l := listen(t)
	r := probe.Check(t.Context(), target(t, l.Addr().String()), probe.CheckOptions{})
	if r.Status != probe.Open || r.Err != nil || !r.Connected {
		t.Fatalf("%v: want open", r)
	}
	if r.Addr != l.Addr().String() || r.Latency <= 0 {
		t.Errorf("addr %q latency %v; want %v and a positive latency", r.Addr, r.Latency, l.Addr())
	}
}

func TestCheckClosed(t *testing.T) {
	addr := closedAddr(t)
	r := probe.Check(t.Context(), target(t, addr), probe.CheckOptions{})
	if r.Status != probe.Closed || r.Connected || r.Addr != addr {
		t.Fatalf("%v: want closed at %s", r, addr)
	}
	if !strings.Contains(r.Err.Error(), "refused") {
		t.Errorf("error %q does not say refused", r.Err)
	}
}

func TestCheckFiltered(t *testing.T) {
	p := probe.Prober{Dial: silentDial("127.0.0.1:9")}
	start := time.Now()
	r := p.Check(t.Context(), target(t, "127.0.0.1:9"), probe.CheckOptions{Timeout: 100 * time.Millisecond})
	if r.Status != probe.Filtered || r.Addr != "127.0.0.1:9" {
		t.Fatalf("%v: want filtered at 127.0.0.1:9", r)
	}
	if el := time.Since(start); el < 100*time.Millisecond || el > 2*time.Second || r.Latency < 100*time.Millisecond {
		t.Errorf("took %v (latency %v), want about the 100ms timeout", el, r.Latency)
	}
	if !errors.Is(r.Err, context.DeadlineExceeded) {
		t.Errorf("error %v, want a deadline", r.Err)
	}
}

func TestCheckUnresolvable(t *testing.T) {
	p := probe.Prober{Resolver: stubResolver{}}
	r := p.Check(t.Context(), target(t, "db.invalid:5432"), probe.CheckOptions{})
	var de *net.DNSError
	if r.Status != probe.Unresolvable || r.Addr != "" || !errors.As(r.Err, &de) || !de.IsNotFound {
		t.Fatalf("%v: want unresolvable with a not-found DNS error", r)
	}
	// A resolver answering with no address at all is no better.
	p.Resolver = stubResolver{"empty.invalid": nil}
	if r := p.Check(t.Context(), target(t, "empty.invalid:1"), probe.CheckOptions{}); r.Status != probe.Unresolvable {
		t.Errorf("%v: want unresolvable", r)
	}
}

func TestCheckEveryAddress(t *testing.T) {
	l := listen(t)
	port := l.Addr().(*net.TCPAddr).Port
	closedPort := netip.MustParseAddrPort(closedAddr(t)).Port()
	silent := netip.MustParseAddr("127.0.0.2")
	addrs := []netip.Addr{silent, netip.MustParseAddr("127.0.0.1")}
	if hasIPv6() {
		addrs = []netip.Addr{silent, netip.IPv6Loopback(), netip.MustParseAddr("127.0.0.1")} // ::1 refuses: l is IPv4 only
	}
	p := probe.Prober{
		Resolver: stubResolver{"svc.invalid": addrs},
		Dial:     silentDial(fmt.Sprintf("127.0.0.2:%d", port), fmt.Sprintf("127.0.0.2:%d", closedPort)),
	}
	opts := probe.CheckOptions{Timeout: 300 * time.Millisecond}

	r := p.Check(t.Context(), target(t, fmt.Sprintf("svc.invalid:%d", port)), opts)
	if r.Status != probe.Open || r.Addr != l.Addr().String() {
		t.Errorf("%v: want open at %v", r, l.Addr())
	}

	// None open: the refusal tells more than the silence.
	r = p.Check(t.Context(), target(t, fmt.Sprintf("svc.invalid:%d", closedPort)), opts)
	if r.Status != probe.Closed || strings.HasPrefix(r.Addr, "127.0.0.2") {
		t.Errorf("%v: want closed, reported from a refusing address", r)
	}
}

func TestCheckHTTP(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, strings.Repeat("ok\n", 10000)) })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/hints", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints) // an interim response, then the final one
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "event 1\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // streams on until the client goes
	})
	mux.HandleFunc("/auth", func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "me" || p != "pw" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tls := httptest.NewTLSServer(mux)
	defer tls.Close()
	withAuth := strings.Replace(srv.URL, "http://", "http://me:pw@", 1)

	tests := []struct {
		url    string
		opts   probe.CheckOptions
		status probe.Status
		code   int
	}{
		{srv.URL + "/ok", probe.CheckOptions{}, probe.Open, 200},
		{srv.URL + "/fail", probe.CheckOptions{}, probe.Error, 503},
		{srv.URL + "/fail", probe.CheckOptions{Status: []int{503}}, probe.Open, 503},
		{srv.URL + "/ok", probe.CheckOptions{Status: []int{204}}, probe.Error, 200},
		{srv.URL + "/moved", probe.CheckOptions{}, probe.Error, 302}, // not followed
		{srv.URL + "/moved", probe.CheckOptions{Status: []int{301, 302}}, probe.Open, 302},
		{srv.URL + "/missing", probe.CheckOptions{}, probe.Error, 404},
		{withAuth + "/auth", probe.CheckOptions{}, probe.Open, 200},
		{srv.URL + "/hints", probe.CheckOptions{}, probe.Open, 200},
		{srv.URL + "/stream", probe.CheckOptions{Timeout: time.Minute}, probe.Open, 200}, // not held for the timeout
		{tls.URL + "/ok", probe.CheckOptions{InsecureSkipVerify: true}, probe.Open, 200},
		{tls.URL + "/fail", probe.CheckOptions{InsecureSkipVerify: true}, probe.Error, 503},
		{tls.URL + "/ok", probe.CheckOptions{}, probe.Error, 0}, // self-signed: verification fails
	}
	for _, tt := range tests {
		r := probe.Check(t.Context(), target(t, tt.url), tt.opts)
		if r.Status != tt.status || r.HTTPStatus != tt.code || !r.Connected {
			t.Errorf("%s %+v: %v (HTTP %d); want %v (HTTP %d), connected", tt.url, tt.opts, r, r.HTTPStatus, tt.status, tt.code)
		}
		if (r.Err == nil) != (tt.status == probe.Open) {
			t.Errorf("%s: error %v with status %v", tt.url, r.Err, r.Status)
		}
	}
	if r := probe.Check(t.Context(), target(t, "http://"+closedAddr(t)+"/"), probe.CheckOptions{}); r.Status != probe.Closed || r.Connected {
		t.Errorf("closed HTTP port: %v", r)
	}
}

func TestCheckUnix(t *testing.T) {
	dir, err := os.MkdirTemp("", "probe") // short: socket paths are limited to about 100 bytes
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Skipf("no Unix sockets here: %v", err)
	}
	tg := target(t, "unix:"+path)
	if r := probe.Check(t.Context(), tg, probe.CheckOptions{}); r.Status != probe.Open || r.Addr != path {
		t.Errorf("%v: want open at %s", r, path)
	}

	// A socket file nobody listens on refuses.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if r := probe.Check(t.Context(), tg, probe.CheckOptions{}); r.Status != probe.Closed {
		t.Errorf("stale socket: %v, want closed", r)
	}
	// No socket file at all is closed too.
	os.Remove(path)
	if r := probe.Check(t.Context(), tg, probe.CheckOptions{}); r.Status != probe.Closed {
		t.Errorf("no socket: %v, want closed", r)
	}
}

func TestCheckZeroTarget(t *testing.T) {
	if r := probe.Check(t.Context(), probe.Target{}, probe.CheckOptions{}); r.Status != probe.Error || r.Err == nil {
		t.Errorf("zero target: %v", r)
	}
}

// TestCheckHTTPCutShort: an HTTP exchange with a server that never answers,
// ended by its context, says which end it was: cancelled (an interrupt) or
// out of time, not only the I/O error the ending caused.
func TestCheckHTTPCutShort(t *testing.T) {
	l := listen(t) // connections complete in the kernel; nothing answers
	tg := target(t, "http://"+l.Addr().String()+"/")

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	r := probe.Check(ctx, tg, probe.CheckOptions{Timeout: time.Minute})
	if !r.Connected || !errors.Is(r.Err, context.Canceled) {
		t.Errorf("cancelled: %v (connected %v); want an error that is context.Canceled", r, r.Connected)
	}

	r = probe.Check(t.Context(), tg, probe.CheckOptions{Timeout: 50 * time.Millisecond})
	if !errors.Is(r.Err, context.DeadlineExceeded) || errors.Is(r.Err, context.Canceled) {
		t.Errorf("timed out: %v; want an error that is context.DeadlineExceeded alone", r)
	}
}
