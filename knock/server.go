package knock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/bpf"

	"github.com/portkit/portkit/internal/packetring"
	"github.com/portkit/portkit/knock/replay"
	"github.com/portkit/portkit/knock/spa"
)

// DefaultOpenTimeout bounds one call of Opener.Open.
const DefaultOpenTimeout = 5 * time.Second

// Reason is why an attempt was refused; it is the "reason" of the log
// line and, with spaces as underscores, of the metric.
type Reason string

// The reasons of refusals.
const (
	ReasonBadPacket     Reason = "bad packet"         // truncated, too short or long, not base64
	ReasonSource        Reason = "source not allowed" // no stanza takes the source address
	ReasonBadHMAC       Reason = "bad HMAC"           // no stanza's key gives the packet's HMAC
	ReasonBadMessage    Reason = "bad message"        // the HMAC matched but what it covers is malformed
	ReasonReplay        Reason = "replay"
	ReasonStale         Reason = "stale"           // older than the stanza's max_age
	ReasonFuture        Reason = "from the future" // dated beyond the clock skew allowed
	ReasonNotAllowed    Reason = "not allowed"     // a port, an address or a message type the stanza does not allow
	ReasonUnsupported   Reason = "unsupported"     // command and NAT messages
	ReasonWrongSequence Reason = "wrong sequence"
	ReasonSeqTimeout    Reason = "sequence timed out"
	ReasonInternal      Reason = "internal error" // the replay cache could not be written
)

func (r Reason) label() string { return strings.ReplaceAll(string(r), " ", "_") }

// Options configure a Server.
type Options struct {
	Opener Opener       // required
	Logger *slog.Logger // slog.Default() when nil
	// Replay remembers accepted SPA packets; required when the config has
	// SPA rules. Its window must span every rule's MaxAge.
	Replay      *replay.Cache
	Metrics     *Metrics         // nil: not counted
	Now         func() time.Time // the clock; time.Now when nil
	OpenTimeout time.Duration    // DefaultOpenTimeout when 0
	// Skew is how far in the future an SPA packet may be dated;
	// replay.DefaultSkew when 0.
	Skew time.Duration
}

// Server watches for knock sequences and SPA packets and opens what they
// earn through its Opener. HandlePacket is its whole logic; Run does the
// same, packets from a packet ring checked as they are read and what they
// earn granted (recorded, opened) by a goroutine of its own, so that the
// reader does not wait for the disk or the firewall. It is safe for
// concurrent use.
type Server struct {
	opts Options

	mu  sync.Mutex // held while a packet is handled
	cfg *Config
	tr  *tracker
	// dec is a decoder for each of cfg.SPA's rules, in order: a packet
	// refused before decryption costs it no allocation.
	dec []*spa.Decoder

	logs *logLimiter // which refusals get a line
}

// NewServer returns a server acting on cfg.
func NewServer(cfg *Config, opts Options) (*Server, error) {
	if opts.Opener == nil {
		return nil, errors.New("knock: no Opener")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.OpenTimeout <= 0 {
		opts.OpenTimeout = DefaultOpenTimeout
	}
	s := &Server{opts: opts, logs: newLogLimiter(opts.Now())}
	if err := s.Reload(cfg); err != nil {
		return nil, err
	}
	opts.Metrics.setSources(func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.tr.Len()
	})
	return s, nil
}

// Reload replaces the config whole. Sequences in progress start over.
func (s *Server) Reload(cfg *Config) error {
	if len(cfg.SPA) > 0 && s.opts.Replay == nil {
		return errors.New("knock: SPA rules need a replay cache")
	}
	dec := make([]*spa.Decoder, len(cfg.SPA))
	for i, r := range cfg.SPA {
		d, err := spa.NewDecoder(r.Keys)
		if err != nil {
			return fmt.Errorf("knock: spa rule %s: %w", r.Name, err)
		}
		dec[i] = d
	}
	tr := newTracker(cfg.Doors, cfg.MaxSources)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tr != nil {
		// A TOTP step spent stays spent across a reload, for a door of the
		// same name and secret: else a reload would let a recorded
		// sequence open again within its window.
		for old, step := range s.tr.usedStep {
			for _, d := range cfg.Doors {
				if d.TOTP != nil && d.Name == old.Name && bytes.Equal(d.TOTP.Secret, old.TOTP.Secret) {
					tr.usedStep[d] = step
				}
			}
		}
	}
	s.cfg, s.tr, s.dec = cfg, tr, dec
	return nil
}

// Config is the config in use.
func (s *Server) Config() *Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// HandlePacket acts on one packet, from its IP header on: once it
// returns, what the packet earned is recorded and open.
func (s *Server) HandlePacket(ctx context.Context, pkt []byte) {
	for _, g := range s.check(ctx, pkt) {
		s.grant(ctx, g)
	}
}

// grant is what a packet earned once its checks passed: for an SPA packet,
// its digest to record in the replay cache first; then ports to open for
// allow. Making it waits for the disk (fsync) and the firewall, so Run
// makes it apart from the packet reader (see grants).
type grant struct {
	kind   string
	src    netip.Addr
	allow  netip.Addr
	ports  []spa.ProtoPort
	d      time.Duration
	spa    bool
	digest [32]byte // SPA
	attrs  []any
}

// check runs one packet through the checks and the knock sequences, under
// s.mu, and returns what it earned, to be granted in order.
func (s *Server) check(ctx context.Context, pkt []byte) []grant {
	p, ok := parsePacket(pkt)
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.proto == UDP && p.dport == s.cfg.SPAPort && s.cfg.SPAPort != 0 {
		if g, ok := s.checkSPA(p); ok {
			return []grant{g}
		}
		return nil
	}
	if p.proto == TCP && !p.syn {
		return nil // knockd's TCPFlags=syn: other TCP segments neither knock nor break
	}
	now := s.opts.Now()
	var (
		buf    [4]Outcome
		grants []grant
	)
	for _, o := range s.tr.knock(p.src, Knock{Port: p.dport, Proto: p.proto}, now, buf[:0]) {
		if !o.Accepted {
			if n, ok := s.refused("sequence", p.src, o.Reason); ok {
				s.logRefusal("sequence", p.src, o.Reason, n, nil, "door", o.Door.Name, "knocks", FormatSequence(o.Knocks))
			}
			continue
		}
		if o.Door.OneTime != nil {
			if err := o.Door.OneTime.UseCurrent(); err != nil {
				s.opts.Logger.Error("one-time sequence used, but the file could not be rewritten", "file", o.Door.OneTime.Path(), "err", err.Error())
			}
		}
		grants = append(grants, grant{kind: "sequence", src: p.src, allow: p.src, ports: o.Door.OpenPorts, d: o.Door.AccessTimeout,
			attrs: []any{"door", o.Door.Name}})
	}
	return grants
}

// grant records an SPA packet's digest, then opens the ports. It needs no
// lock: the replay cache, the metrics and the logger are safe for
// concurrent use, and the replay cache's Add is what refuses a packet seen
// twice (check's look-up only spares a replay the decryption).
func (s *Server) grant(ctx context.Context, g grant) {
	if g.spa {
		// The digest is on disk before anything opens: a crash right after
		// must not leave the packet replayable.
		if err := s.opts.Replay.Add(g.digest); err != nil && !errors.Is(err, replay.ErrCompact) {
			r := ReasonInternal
			if errors.Is(err, replay.ErrReplay) {
				r = ReasonReplay
			}
			s.refuse(g.kind, g.src, r, err, g.attrs...)
			return
		} else if err != nil {
			s.opts.Logger.Error("replay cache", "err", err.Error())
		}
	}
	s.open(ctx, g.kind, g.src, g.allow, g.ports, g.d, g.attrs...)
}

// refuse counts a refusal and logs it, if the log's rate limit lets it
// (see RefusalLogBurst).
func (s *Server) refuse(kind string, src netip.Addr, r Reason, err error, attrs ...any) {
	if n, ok := s.refused(kind, src, r); ok {
		s.logRefusal(kind, src, r, n, err, attrs...)
	}
}

// refused counts a refusal and tells whether it gets a log line, and how
// many refusals before it did not; a caller whose error costs formatting
// asks first, then formats only what is logged.
func (s *Server) refused(kind string, src netip.Addr, r Reason) (suppressed uint64, log bool) {
	s.opts.Metrics.refuse(kind, r)
	return s.logs.allow(src, s.opts.Now())
}

func (s *Server) logRefusal(kind string, src netip.Addr, r Reason, suppressed uint64, err error, attrs ...any) {
	args := append([]any{"kind", kind, "src", src.String(), "reason", string(r)}, attrs...)
	if err != nil {
		args = append(args, "err", err.Error())
	}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	s.opts.Logger.Warn("refused", args...)
}

// ReportSuppressed logs how many refusals were not logged since the last
// refusal line, if any were; Run calls it every RefusalLogReport and when
// it ends.
func (s *Server) ReportSuppressed() {
	if n := s.logs.takeSuppressed(); n > 0 {
		s.opts.Logger.Warn("refusals not logged", "suppressed", n, "why", "log rate limit: see the metrics for every refusal")
	}
}

// open opens ports for allow and logs the attempt as accepted.
func (s *Server) open(ctx context.Context, kind string, src, allow netip.Addr, ports []spa.ProtoPort, d time.Duration, attrs ...any) {
	s.opts.Metrics.accept(kind)
	names := make([]string, len(ports))
	for i, p := range ports {
		names[i] = p.String()
	}
	args := append([]any{"kind", kind, "src", src.String(), "allow", allow.String(), "ports", strings.Join(names, ","), "timeout_ms", d.Milliseconds()}, attrs...)
	s.opts.Logger.Info("accepted", args...)
	for _, p := range ports {
		octx, cancel := context.WithTimeout(ctx, s.opts.OpenTimeout)
		err := s.opts.Opener.Open(octx, allow, p.Port, p.Proto, d)
		cancel()
		if err != nil {
			s.opts.Metrics.openError()
			s.opts.Logger.Error("open failed", "src", src.String(), "allow", allow.String(), "port", p.String(), "err", err.Error())
		}
	}
}

// checkSPA checks an SPA packet and returns what it earned, if anything.
func (s *Server) checkSPA(p packet) (grant, bool) {
	const kind = "spa"
	payload := bytes.TrimRight(p.payload, "\r\n") // the stock client sends none, a file saved by -B has one
	// The errors of the length checks are formatted only when they are
	// logged: a flood of them costs no allocation.
	badLength := func(format string, a, b int) (grant, bool) {
		if n, ok := s.refused(kind, p.src, ReasonBadPacket); ok {
			s.logRefusal(kind, p.src, ReasonBadPacket, n, fmt.Errorf(format, a, b))
		}
		return grant{}, false
	}
	switch {
	case p.udpLen > spa.MaxPacketLen:
		// Told by the UDP header, so that a datagram fragmented by its
		// size is refused for its size, not for the missing fragments.
		return badLength("%d bytes, more than %d", p.udpLen, spa.MaxPacketLen)
	case p.udpLen > len(p.payload):
		return badLength("truncated: %d of %d bytes", len(p.payload), p.udpLen)
	case len(payload) < spa.MinPacketLen:
		return badLength("%d bytes, fewer than %d", len(payload), spa.MinPacketLen)
	case len(payload) > spa.MaxPacketLen:
		return badLength("%d bytes, more than %d", len(payload), spa.MaxPacketLen)
	}
	// The alphabet before the replay digest: junk that is not base64
	// costs no hash.
	if i := spa.NotBase64(payload); i >= 0 {
		if n, ok := s.refused(kind, p.src, ReasonBadPacket); ok {
			s.logRefusal(kind, p.src, ReasonBadPacket, n, fmt.Errorf("not base64: byte %#02x at offset %d", payload[i], i))
		}
		return grant{}, false
	}
	digest := spa.ReplayDigest(payload)
	if s.opts.Replay.Seen(digest) {
		s.refuse(kind, p.src, ReasonReplay, nil)
		return grant{}, false
	}
	var (
		rule    *SPARule
		msg     *spa.Message
		lastErr error
		matched bool
	)
	for i := range s.cfg.SPA {
		r := &s.cfg.SPA[i]
		if !r.Matches(p.src) {
			continue
		}
		matched = true
		m, err := s.dec[i].Decode(payload)
		if err == nil {
			rule, msg = r, m
			break
		}
		if lastErr == nil || !errors.Is(err, spa.ErrBadHMAC) {
			lastErr = err // a stanza whose HMAC matched tells more than one whose did not
		}
	}
	if !matched {
		s.refuse(kind, p.src, ReasonSource, nil)
		return grant{}, false
	}
	if msg == nil {
		r := ReasonBadMessage
		switch {
		case errors.Is(lastErr, spa.ErrBadHMAC):
			r = ReasonBadHMAC
		case errors.Is(lastErr, spa.ErrTooShort), errors.Is(lastErr, spa.ErrTooLong), errors.Is(lastErr, spa.ErrNotBase64), errors.Is(lastErr, spa.ErrSaltedPrefix):
			r = ReasonBadPacket
		}
		s.refuse(kind, p.src, r, lastErr)
		return grant{}, false
	}
	where := []any{"stanza", rule.Name, "user", msg.Username}
	if err := (replay.Window{MaxAge: rule.MaxAge, Skew: s.opts.Skew}).Check(msg.Timestamp, s.opts.Now()); err != nil {
		r := ReasonStale
		if errors.Is(err, replay.ErrFromFuture) {
			r = ReasonFuture
		}
		s.refuse(kind, p.src, r, err, where...)
		return grant{}, false
	}
	if msg.Type == spa.CommandMsg || msg.Type.HasNAT() {
		s.refuse(kind, p.src, ReasonUnsupported, fmt.Errorf("%v messages are not supported", msg.Type), where...)
		return grant{}, false
	}
	acc, err := msg.Access()
	if err != nil {
		s.refuse(kind, p.src, ReasonBadMessage, err, where...)
		return grant{}, false
	}
	allow := acc.Addr.Unmap()
	switch {
	case allow.IsUnspecified() && rule.RequireSourceAddress:
		s.refuse(kind, p.src, ReasonNotAllowed, fmt.Errorf("the packet asks for %v (its source) and the stanza requires the address", allow), where...)
		return grant{}, false
	case allow.IsUnspecified():
		allow = p.src
	case rule.RequireSourceAddress && allow != p.src.Unmap():
		s.refuse(kind, p.src, ReasonNotAllowed, fmt.Errorf("the packet asks for %v, not its source address", allow), where...)
		return grant{}, false
	}
	for _, pp := range acc.Ports {
		if pp.Proto == "icmp" || !rule.Allows(pp) {
			s.refuse(kind, p.src, ReasonNotAllowed, fmt.Errorf("port %v is not in the stanza's open ports", pp), where...)
			return grant{}, false
		}
	}
	d := rule.FWAccessTimeout
	if msg.Type.HasClientTimeout() && msg.ClientTimeout > 0 {
		d = time.Duration(msg.ClientTimeout) * time.Second
	}
	return grant{kind: kind, src: p.src, allow: allow, ports: acc.Ports, d: d, spa: true, digest: digest, attrs: where}, true
}

// The packet ring's size: 8 MiB in blocks of 8 KiB. The kernel hands a
// block over a millisecond after its first packet, full or not, and drops
// what comes when every block waits for the reader: the default ring (64
// blocks of 64 KiB) held 64 ms of a junk flood of 37,000 packets a second
// that filled a block in a millisecond to a fifth, and the kernel dropped
// valid packets with them whenever knockd was kept off the CPU longer (a
// busy host). Small blocks hold about a second of such a flood, in the
// same memory per packet.
const (
	ringBlocks    = 1024
	ringBlockSize = 8 << 10
)

// grantQueue bounds the grants waiting for the granter; a reader that
// finds it full waits, as it did for each grant before there was a queue.
const grantQueue = 256

// RunOptions tune Run.
type RunOptions struct {
	// Interface is the index of the interface to watch; 0 watches all.
	Interface int
	// Reload tells Run that the config was reloaded: when the ports
	// watched changed, the packet reader is reopened with the new filter,
	// the new one opened before the old one closes.
	Reload <-chan struct{}
	// Started, when set, is called once the packet reader is open: from
	// then on no packet is missed.
	Started func()
}

// Run reads packets and handles each, until ctx ends; what packets earned
// but was not granted yet when it ends is dropped, unrecorded (the client
// may send again). It opens the packet reader in the calling thread's
// network namespace.
func (s *Server) Run(ctx context.Context, o RunOptions) error {
	iface, reload := o.Interface, o.Reload
	var (
		ring   *packetring.Ring
		filter []byte
		errc   = make(chan error, 2)
		wg     sync.WaitGroup
		grants = make(chan grant, grantQueue)
	)
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // before wg.Wait: it ends the granter
	// The granter makes what packets earned, in the order they earned it,
	// so that the reader never waits for the disk or the firewall: while
	// it did, the kernel dropped what came in, valid packets too.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case g := <-grants:
				s.grant(ctx, g)
			}
		}
	}()
	start := func() error {
		f, err := s.Config().Filter()
		if err != nil {
			return err
		}
		key := filterKey(f)
		if ring != nil && bytes.Equal(key, filter) {
			return nil
		}
		r, err := packetring.Open(packetring.Config{Filter: f, Interface: iface, Snaplen: SnapLen, Blocks: ringBlocks, BlockSize: ringBlockSize})
		if err != nil {
			return err
		}
		old := ring
		ring, filter = r, key
		if m := s.opts.Metrics; m != nil {
			m.SetDropped(func() uint64 { n, _ := r.Dropped(); return n })
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			handle := func(pkt []byte, _ packetring.Info) {
				for _, g := range s.check(ctx, pkt) {
					select {
					case grants <- g:
					case <-ctx.Done():
					}
				}
			}
			if err := r.Run(ctx, handle); err != nil {
				select {
				case errc <- err:
				default: // one error is enough to stop
				}
			}
		}()
		if old != nil {
			old.Close()
		}
		return nil
	}
	if err := start(); err != nil {
		return err
	}
	defer func() { ring.Close() }()
	if o.Started != nil {
		o.Started()
	}
	report := time.NewTicker(RefusalLogReport)
	defer report.Stop()
	defer s.ReportSuppressed()
	for {
		select {
		case <-report.C:
			s.ReportSuppressed()
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case <-reload:
			if err := start(); err != nil {
				s.opts.Logger.Error("reload: cannot reopen the packet reader with the new ports; the old ports are still watched", "err", err.Error())
			}
		}
	}
}

func filterKey(f []bpf.RawInstruction) []byte {
	var b []byte
	for _, i := range f {
		b = fmt.Appendf(b, "%d %d %d %d;", i.Op, i.Jt, i.Jf, i.K)
	}
	return b
}
