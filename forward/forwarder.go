package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Options configure a Forwarder. The zero value works: no logging, private
// metrics, no drain bound beyond the caller's context.
type Options struct {
	// Logger gets one line per listener start and stop and one per
	// connection or UDP session end.
	Logger *slog.Logger
	// Metrics receives the counters; nil keeps them private.
	Metrics *Metrics
	// DrainTimeout bounds how long a removed rule's connections may go on
	// after a reload before they are closed; 0 closes them at once, as a
	// Shutdown whose context has ended does.
	DrainTimeout time.Duration
	// PortHolder, when set, names what holds a port that could not be
	// bound, for the error message (the CLI asks the sockets package).
	PortHolder func(p Protocol, addr string) string
}

// Forwarder runs a set of rules. Its methods are safe for concurrent use.
type Forwarder struct {
	opts    Options
	log     *slog.Logger
	metrics *Metrics

	mu      sync.Mutex
	runners map[listenKey]runner
	closed  bool
	wg      sync.WaitGroup // draining runners of removed rules
	// drains is the parent of removed rules' drains: Shutdown cancels it
	// when its own context ends, so a stop cuts them short too.
	drains      context.Context
	cancelDrain context.CancelFunc

	loopEnv loopEnv   // what the loop check asks of the system
	hops    *hopGuard // connections that come back to us
	exhaust exhaustion
	pipes   pipePool // splice pipes the TCP relays share
}

type listenKey struct {
	proto  Protocol
	listen string
}

// runner is one listening socket and the connections or sessions it owns.
type runner interface {
	addr() net.Addr
	// current is the rule's state new connections get.
	current() *ruleState
	// update makes the rule's new settings apply to new connections.
	update(r Rule)
	// serve accepts until stop.
	serve()
	// stop closes the listener; then drain waits for the connections
	// until ctx is done and closes what is left.
	stop()
	drain(ctx context.Context)
}

// ListenError is a rule whose port could not be bound.
type ListenError struct {
	Rule   string
	Addr   string
	Holder string // who holds the port, when known
	Err    error
}

func (e *ListenError) Error() string {
	msg := fmt.Sprintf("rule %s: listen %s: %v", e.Rule, e.Addr, e.Err)
	if e.Holder != "" {
		msg += " (held by " + e.Holder + ")"
	}
	return msg
}

func (e *ListenError) Unwrap() error { return e.Err }

// New returns a Forwarder running no rules; Reload gives it its rules.
func New(opts Options) *Forwarder {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m := opts.Metrics
	if m == nil {
		m = NewMetrics()
	}
	drains, cancel := context.WithCancel(context.Background())
	return &Forwarder{opts: opts, log: log, metrics: m, runners: map[listenKey]runner{}, drains: drains, cancelDrain: cancel,
		loopEnv: systemLoopEnv(), hops: newHopGuard()}
}

// ErrClosed is returned by Reload after Shutdown.
var ErrClosed = errors.New("forwarder shut down")

// Reload makes rules the running set, all or nothing: every rule is checked
// and every new listener bound before anything changes, so on error the
// old set runs on untouched. A rule whose protocol and listen address are
// unchanged keeps its socket and its connections, and its new settings
// apply to new connections; the listeners of removed rules close and their
// connections drain for up to Options.DrainTimeout.
func (f *Forwarder) Reload(rules []Rule) error {
	rules, err := prepare(rules, f.loopEnv)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrClosed
	}
	next := make(map[listenKey]runner, len(rules))
	var opened []runner
	abort := func(err error) error {
		for _, o := range opened {
			o.stop()
		}
		return err
	}
	var blocked []Rule // in use by a TCP listener this reload removes
	for _, r := range rules {
		k := listenKey{r.Protocol, r.Listen}
		if old, ok := f.runners[k]; ok {
			next[k] = old
			continue
		}
		ru, err := f.open(r)
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) && len(f.leaving(rules, r)) > 0 {
				blocked = append(blocked, r)
				continue
			}
			return abort(err)
		}
		opened = append(opened, ru)
		next[listenKey{r.Protocol, r.Listen}] = ru
	}
	if len(blocked) > 0 {
		// A rule moved to an address that overlaps its old one (a host
		// address to the wildcard, say) can only bind once the old
		// listener has closed: close those, bind, and on failure listen
		// again where they did.
		var paused []*tcpRunner
		for _, r := range blocked {
			for _, old := range f.leaving(rules, r) {
				if !slices.Contains(paused, old) {
					old.pause()
					paused = append(paused, old)
				}
			}
		}
		for _, r := range blocked {
			ru, err := f.open(r)
			if err != nil {
				// The new listeners close first: one may hold an old one's
				// address. An old one that cannot listen again is dropped,
				// its connections draining, so that the next reload opens
				// it anew rather than keep a rule that accepts nothing.
				err = abort(err)
				for _, old := range paused {
					if rerr := old.resume(); rerr != nil {
						err = fmt.Errorf("%w; and the listener it replaced could not listen again at %v: %v", err, old.addr(), rerr)
						for k, ru := range f.runners {
							if ru == old {
								delete(f.runners, k)
								f.retire(old)
							}
						}
					}
				}
				return err
			}
			opened = append(opened, ru)
			next[listenKey{r.Protocol, r.Listen}] = ru
		}
	}
	// Every bind succeeded: only now do the rules' settings (and their
	// metrics) change.
	for _, r := range rules {
		next[listenKey{r.Protocol, r.Listen}].update(r)
	}
	for k, old := range f.runners {
		if _, kept := next[k]; !kept {
			f.retire(old)
			if st := old.current(); !slices.ContainsFunc(rules, func(r Rule) bool { return r.Name == st.rule.Name }) {
				st.m.setTargets(nil) // no target_up for a rule that is gone
			}
		}
	}
	for _, ru := range opened {
		go ru.serve()
	}
	f.runners = next
	return nil
}

// retire closes a listener the rules no longer have and lets its
// connections drain for Options.DrainTimeout, or until Shutdown.
func (f *Forwarder) retire(old runner) {
	old.stop()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		ctx, cancel := context.WithTimeout(f.drains, f.opts.DrainTimeout)
		defer cancel()
		old.drain(ctx)
	}()
}

// leaving returns the TCP listeners that the set rules removes and that are
// on r's port, so may hold the address r wants.
func (f *Forwarder) leaving(rules []Rule, r Rule) []*tcpRunner {
	if r.Protocol != TCP {
		return nil
	}
	_, port, err := net.SplitHostPort(r.Listen)
	if err != nil || port == "0" {
		return nil
	}
	var out []*tcpRunner
	for k, ru := range f.runners {
		t, ok := ru.(*tcpRunner)
		if !ok || strconv.Itoa(t.addr().(*net.TCPAddr).Port) != port ||
			slices.ContainsFunc(rules, func(n Rule) bool { return listenKey{n.Protocol, n.Listen} == k }) {
			continue
		}
		out = append(out, t)
	}
	return out
}

// prepare applies defaults and checks the set: each rule valid, names and
// listeners unique, no rule's targets leading back into it.
func prepare(rules []Rule, env loopEnv) ([]Rule, error) {
	out := make([]Rule, len(rules))
	names := map[string]bool{}
	listens := map[listenKey]string{}
	for i, r := range rules {
		if err := r.Validate(); err != nil {
			return nil, err
		}
		r = r.WithDefaults()
		if names[r.Name] {
			return nil, &FieldError{Rule: r.Name, Field: "name", Value: r.Name, Err: errors.New("two rules have this name")}
		}
		names[r.Name] = true
		k := listenKey{r.Protocol, r.Listen}
		if other, dup := listens[k]; dup {
			return nil, &FieldError{Rule: r.Name, Field: "listen", Value: r.Listen, Err: fmt.Errorf("rule %s listens there too", other)}
		}
		listens[k] = r.Name
		out[i] = r
	}
	if err := checkLoops(out, env); err != nil {
		return nil, err
	}
	return out, nil
}

func (f *Forwarder) open(r Rule) (runner, error) {
	var (
		ru  runner
		err error
	)
	switch r.Protocol {
	case UDP:
		ru, err = newUDPRunner(f, r)
	default:
		ru, err = newTCPRunner(f, r)
	}
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) {
			err = oe.Err // "bind: address already in use"; the address is in ListenError
		}
		le := &ListenError{Rule: r.Name, Addr: r.Listen, Err: err}
		if errors.Is(err, syscall.EADDRINUSE) && f.opts.PortHolder != nil {
			le.Holder = f.opts.PortHolder(r.Protocol, r.Listen)
		}
		return nil, le
	}
	f.log.Info("listening", "rule", r.Name, "protocol", string(r.Protocol), "addr", ru.addr().String(), "targets", r.Targets)
	return ru, nil
}

// Addr returns the bound address of the rule listening on proto/listen,
// written as in the rule, or nil: how a caller learns the port of a rule
// that listens on port 0.
func (f *Forwarder) Addr(proto Protocol, listen string) net.Addr {
	if proto == "" {
		proto = TCP
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if ru, ok := f.runners[listenKey{proto, listen}]; ok {
		return ru.addr()
	}
	return nil
}

// Shutdown stops accepting on every rule, lets open connections finish
// until ctx is done, then closes what is left. It returns once everything
// is closed.
func (f *Forwarder) Shutdown(ctx context.Context) {
	f.mu.Lock()
	runners := f.runners
	f.runners = map[listenKey]runner{}
	f.closed = true
	f.mu.Unlock()
	for _, ru := range runners {
		ru.stop()
	}
	var wg sync.WaitGroup
	for _, ru := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ru.drain(ctx)
		}()
	}
	wg.Wait()
	// Rules removed by a reload may still be draining on their own time:
	// the caller's deadline bounds them too.
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			f.cancelDrain()
		case <-stopped:
		}
	}()
	f.wg.Wait()
	close(stopped)
	f.cancelDrain()
	f.pipes.close()
}

// clientAddr is the address of a connection's remote end as the rules see
// it (plainAddr).
func clientAddr(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	}
	return netip.AddrPortFrom(plainAddr(ap.Addr()), ap.Port())
}

// plainAddr is a as the allow, deny and trusted lists match it: unmapped,
// so that IPv4 clients of a dual-stack listener match IPv4 prefixes, and
// without a zone, which netip.Prefix.Contains would never match (a
// link-local client must not slip past a deny list).
func plainAddr(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// permits applies the rule's allow and deny lists to a client address:
// deny wins; a non-empty allow list refuses everyone outside it.
func (r *Rule) permits(a netip.Addr) bool {
	return !prefixesContain(r.Deny, a) && (len(r.Allow) == 0 || prefixesContain(r.Allow, a))
}

func prefixesContain(ps []netip.Prefix, a netip.Addr) bool {
	a = plainAddr(a)
	return slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Contains(a) })
}

// ruleState is a rule's settings with what goes with them, swapped as one
// on reload so that a connection sees one consistent version.
type ruleState struct {
	rule    Rule
	targets *targetSet
	m       *ruleMetrics
	// endLog is the log's handler with the rule's name and protocol, the
	// first attributes of every connection-end line, formatted once here
	// rather than on each line.
	endLog slog.Handler
}

// nextState is the state for rule r after old: old itself when a reload
// changed nothing, so the targets' health is kept.
func (f *Forwarder) nextState(old *ruleState, r Rule) *ruleState {
	if old != nil && reflect.DeepEqual(old.rule, r) {
		return old
	}
	ts := newTargetSet(r.Targets, r.Balance)
	m := f.metrics.rule(r.Name, r.Protocol)
	m.setTargets(func() []targetHealth {
		now := time.Now()
		out := make([]targetHealth, len(ts.addrs))
		for i, a := range ts.addrs {
			out[i] = targetHealth{addr: a, up: !ts.isDown(i, now)}
		}
		return out
	})
	endLog := f.log.Handler().WithAttrs([]slog.Attr{slog.String("rule", r.Name), slog.String("protocol", string(r.Protocol))})
	return &ruleState{rule: r, targets: ts, m: m, endLog: endLog}
}

// millis is d in milliseconds to the microsecond, for the log attributes
// that name their unit (duration_ms): slog would otherwise write a Duration
// as "1.302s" in text and as integer nanoseconds in JSON, and log consumers
// expect the unit in the key.
func millis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
