package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/portkit/portkit/scan"
	"github.com/portkit/portkit/scan/report"
	"github.com/portkit/portkit/service"
)

// serviceFlags are scan's service detection options (--service, -sV).
type serviceFlags struct {
	on          bool
	timeout     time.Duration
	concurrency int
	snmp        bool
}

// add registers the flags on scan's flag set.
func (sf *serviceFlags) add(fl *pflag.FlagSet) {
	fl.BoolVar(&sf.on, "service", false, "identify what answers on each open port: protocol, product, version, TLS (nmap's -sV)")
	durationVarP(fl, &sf.timeout, "service-timeout", "", service.DefaultTimeout, "with --service, the most time spent identifying one port")
	fl.IntVar(&sf.concurrency, "service-concurrency", service.DefaultConcurrency, "with --service, identify at most `N` ports at once")
	fl.BoolVar(&sf.snmp, "service-snmp", false, `with --service, send SNMP's community "public" to UDP port 161`)
}

// check refuses values that would be read silently as a default.
func (sf *serviceFlags) check(fl *pflag.FlagSet) error {
	if !sf.on {
		for _, name := range []string{"service-timeout", "service-concurrency", "service-snmp"} {
			if fl.Changed(name) {
				return fmt.Errorf("--%s: only with --service", name)
			}
		}
	}
	switch {
	case sf.timeout <= 0:
		return fmt.Errorf("--service-timeout %v: must be positive", sf.timeout)
	case sf.concurrency < 1:
		return fmt.Errorf("--service-concurrency %d: want at least 1", sf.concurrency)
	}
	return nil
}

// wrap (after check) returns w unchanged without --service; with it, a writer that
// identifies each open port before writing its result. rate (probes a
// second, 0 for none) paces the identification's connections as it paces
// the scan's probes.
func (sf *serviceFlags) wrap(ctx context.Context, w report.Writer, rate float64) (report.Writer, error) {
	if !sf.on {
		return w, nil
	}
	sw, ok := w.(report.ServiceWriter)
	if !ok {
		return nil, errors.New("scan: this output format cannot hold services")
	}
	id := &service.Identifier{Options: service.Options{Timeout: sf.timeout, SNMP: sf.snmp}}
	if rate > 0 {
		id.Dial = pacedDialer(rate)
	}
	s := &serviceWriter{Writer: w, sw: sw, ctx: ctx, id: id, sem: make(chan struct{}, sf.concurrency)}
	if u, ok := w.(report.Unwritten); ok {
		return &serviceLineWriter{s, u}, nil
	}
	return s, nil
}

// serviceWriter identifies the services of open ports while the scan
// goes on, at most cap(sem) at once, and writes each open port's result
// once its service is known; other results pass at once. The writer
// underneath is called by one goroutine at a time, under mu.
type serviceWriter struct {
	report.Writer
	sw  report.ServiceWriter
	ctx context.Context
	id  *service.Identifier
	sem chan struct{}
	wg  sync.WaitGroup

	mu  sync.Mutex
	err error // the first failed write of an identified result
}

// serviceLineWriter is a serviceWriter over a line format, whose
// unwritten lines a resume file keeps.
type serviceLineWriter struct {
	*serviceWriter
	u report.Unwritten
}

func (s *serviceLineWriter) Unwritten() []byte { return s.u.Unwritten() }

// identifies reports whether r's port is asked what it runs: open TCP
// ports, and UDP ports that answered or may be silent services.
func identifies(r *scan.Result) bool {
	return r.State == scan.Open || r.Proto == scan.UDP && r.State == scan.OpenFiltered
}

func (s *serviceWriter) Result(r scan.Result) error {
	if !identifies(&r) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.err != nil {
			return s.err
		}
		return s.Writer.Result(r)
	}
	// Waiting here for a free slot holds the scan back while the
	// identifications are behind.
	select {
	case s.sem <- struct{}{}:
	case <-s.ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.Writer.Result(r)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.sem }()
		var svc service.Result
		if r.Proto == scan.UDP {
			svc = s.id.UDP(s.ctx, r.AddrPort())
		} else {
			svc = s.id.TCP(s.ctx, r.AddrPort())
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		var err error
		switch {
		case r.State == scan.OpenFiltered && !svc.Known():
			err = s.Writer.Result(r) // silent still: nothing learnt
		case s.ctx.Err() != nil && !svc.Known():
			err = s.Writer.Result(r) // cut short: nothing learnt
		default:
			err = s.sw.ResultService(r, &svc)
		}
		if err != nil && s.err == nil {
			s.err = err
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *serviceWriter) Begin(info report.ScanInfo) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Writer.Begin(info)
}

// End waits for the identifications still running (an interrupt ends
// them at once), then ends the report.
func (s *serviceWriter) End(summary report.Summary) error {
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.Writer.End(summary)
	if s.err != nil {
		return s.err
	}
	return err
}

func (s *serviceWriter) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Writer.Flush()
}

// pacedDialer dials at most rate connections a second, each waiting for
// its turn.
func pacedDialer(rate float64) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var (
		mu   sync.Mutex
		next time.Time
	)
	gap := time.Duration(float64(time.Second) / rate)
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		now := time.Now()
		if next.Before(now) {
			next = now
		}
		at := next
		next = next.Add(gap)
		mu.Unlock()
		if wait := time.Until(at); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			}
		}
		return d.DialContext(ctx, network, addr)
	}
}
