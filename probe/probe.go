// Package probe checks whether network targets answer: once (Check), or
// again and again until they all do, or all stop (Wait).
//
// A Prober reaches the network only through its Resolver and Dial, so a test
// can put failures in their place without touching DNS or sending packets.
package probe

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Status is the outcome of one check.
type Status uint8

const (
	Open         Status = iota + 1 // connected (and, for HTTP, the status was one wanted)
	Closed                         // refused: the host is there, nothing listens
	Filtered                       // no answer before the timeout
	Unresolvable                   // the host name did not resolve
	Error                          // anything else: unreachable, TLS failure, wrong HTTP status…
)

var statusNames = [...]string{"unknown", "open", "closed", "filtered", "unresolvable", "error"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "status(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText writes the status as its name, for JSON output.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Result is the outcome of checking a target once.
type Result struct {
	Target Target
	Status Status
	// Addr is the address the reported attempt went to: ip:port, or the
	// socket path; empty when the host did not resolve.
	Addr string
	// Latency is how long the reported connect took, answered or not.
	Latency time.Duration
	// Connected tells that a connection was made, even if the check failed
	// after it (TLS, wrong HTTP status): something is still answering.
	Connected bool
	// HTTPStatus is the status code of an HTTP target's response, 0 if none.
	HTTPStatus int
	// Err says why the status is not Open; nil when it is.
	Err error
}

func (r Result) String() string {
	switch {
	case r.Status == Open:
		return fmt.Sprintf("%v: open (%s in %v)", r.Target, r.Addr, r.Latency.Round(time.Microsecond))
	case r.Err != nil:
		return fmt.Sprintf("%v: %v (%v)", r.Target, r.Status, r.Err)
	}
	return fmt.Sprintf("%v: %v", r.Target, r.Status)
}

// Resolver looks up host names; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Prober checks targets. Its zero value uses net.DefaultResolver and a plain
// net.Dialer.
type Prober struct {
	Resolver Resolver
	// Dial opens connections; it is given IP addresses ("tcp", "ip:port") or
	// socket paths ("unix", path), never host names.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// DefaultTimeout bounds a Check whose options name no timeout.
const DefaultTimeout = 2 * time.Second

// maxDials bounds the connects one check runs at once, for a name that
// resolves to many addresses.
const maxDials = 4

// CheckOptions tune one check.
type CheckOptions struct {
	// Timeout bounds the whole attempt: resolving, connecting and, for HTTP,
	// the exchange. Zero means DefaultTimeout.
	Timeout time.Duration
	// Status lists the HTTP status codes that count as open; empty means any
	// 2xx. Redirects are not followed: a 3xx is a status like the others.
	Status []int
	// InsecureSkipVerify skips the verification of an https target's
	// certificate, for self-signed test servers.
	InsecureSkipVerify bool
}

// Check checks t once with the zero Prober.
func Check(ctx context.Context, t Target, opts CheckOptions) Result {
	return new(Prober).Check(ctx, t, opts)
}

// Check checks t once. A host name is resolved afresh and every address is
// tried, a few at a time: the first to connect is reported; if none does, the
// most telling failure (refused over other errors over timeouts, as a refusal
// shows the host is up).
func (p *Prober) Check(ctx context.Context, t Target, opts CheckOptions) Result {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var a attempt
	switch t.Kind {
	case Unix:
		a = p.connect(ctx, "unix", t.Path)
	case TCP, HTTP:
		addrs, err := p.resolve(ctx, t.Host)
		if err != nil {
			status := Unresolvable
			if errors.Is(err, context.Canceled) {
				status = Error
			}
			return Result{Target: t, Status: status, Err: err}
		}
		a = p.connectAny(ctx, addrs, t.Port)
	default:
		return Result{Target: t, Status: Error, Err: errors.New("target of no known kind; build it with ParseTarget")}
	}
	r := a.res
	r.Target = t
	if a.conn == nil {
		return r
	}
	defer a.conn.Close()
	r.Connected = true
	if t.Kind == HTTP {
		r.HTTPStatus, r.Err = exchange(ctx, a.conn, t, opts)
		if r.Err == nil && !wanted(r.HTTPStatus, opts.Status) {
			r.Err = &statusError{got: r.HTTPStatus, want: opts.Status}
		}
		if r.Err != nil {
			r.Status = Error
		}
	}
	return r
}

func (p *Prober) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	var r Resolver = net.DefaultResolver
	if p.Resolver != nil {
		r = p.Resolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err == nil && len(addrs) == 0 {
		err = &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
	}
	return addrs, err
}

// attempt is one connect: its result, and the connection if it was made.
type attempt struct {
	res  Result
	conn net.Conn
}

func (p *Prober) connect(ctx context.Context, network, addr string) attempt {
	dial := p.Dial
	if dial == nil {
		dial = new(net.Dialer).DialContext
	}
	start := time.Now()
	conn, err := dial(ctx, network, addr)
	a := attempt{res: Result{Addr: addr, Latency: time.Since(start), Status: Open}, conn: conn}
	if err != nil {
		if !errors.As(err, new(*net.OpError)) {
			err = fmt.Errorf("dial %s %s: %w", network, addr, err) // an injected Dial may not say where
		}
		a.res.Status, a.res.Err, a.conn = dialStatus(err), err, nil
	}
	return a
}

func dialStatus(err error) Status {
	var ne net.Error
	switch {
	case refused(err) || errors.Is(err, fs.ErrNotExist): // no socket file is a closed Unix socket
		return Closed
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return Filtered
	}
	return Error
}

// telling ranks failures for the report when no address connects.
func telling(s Status) int {
	switch s {
	case Closed:
		return 3
	case Error:
		return 2
	case Filtered:
		return 1
	}
	return 0
}

// connectAny connects to addrs at port, up to maxDials at a time, and stops
// the others as soon as one connects.
func (p *Prober) connectAny(ctx context.Context, addrs []netip.Addr, port uint16) attempt {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	all := make([]attempt, len(addrs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(len(addrs), maxDials) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(addrs) {
					return
				}
				all[i] = p.connect(ctx, "tcp", netip.AddrPortFrom(addrs[i].Unmap(), port).String())
				if all[i].conn != nil {
					cancel()
				}
			}
		})
	}
	wg.Wait()

	var best attempt
	for _, a := range all {
		switch {
		case a.conn != nil && best.conn == nil:
			best = a
		case a.conn != nil:
			a.conn.Close() // connected in the same instant as the one kept
		case best.conn == nil && telling(a.res.Status) > telling(best.res.Status):
			best = a
		}
	}
	if best.res.Status == 0 { // ctx ended before any connect began
		err := ctx.Err()
		best.res = Result{Status: dialStatus(err), Err: err}
	}
	return best
}

func wanted(code int, want []int) bool {
	if len(want) == 0 {
		return 200 <= code && code <= 299
	}
	for _, w := range want {
		if code == w {
			return true
		}
	}
	return false
}

type statusError struct {
	got  int
	want []int
}

func (e *statusError) Error() string {
	if len(e.want) == 0 {
		return fmt.Sprintf("HTTP status %d, want 2xx", e.got)
	}
	return fmt.Sprintf("HTTP status %d, want one of %v", e.got, e.want)
}
