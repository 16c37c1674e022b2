package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/portkit/portkit/internal/output"
	"github.com/portkit/portkit/probe"
)

// probeRow is a probe result as --json writes it.
type probeRow struct {
	Target     string `json:"target"`
	Kind       string `json:"kind"`
	Status     string `json:"status"`
	Address    string `json:"address,omitempty"`
	LatencyUS  int64  `json:"latency_us"`
	HTTPStatus int    `json:"http_status,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

func newProbeRow(r probe.Result) probeRow {
	row := probeRow{Target: r.Target.String(), Kind: r.Target.Kind.String(), Status: r.Status.String(),
		Address: r.Addr, LatencyUS: r.Latency.Microseconds(), HTTPStatus: r.HTTPStatus}
	switch {
	case interruptedResult(r):
		// Cut short: the attempt says nothing about the target.
		row.Status = "interrupted"
	case r.Err != nil:
		row.Reason = plainWords(r.Err.Error(), false)
	}
	return row
}

// interruptedResult tells a probe the interrupt cut short. The CLI's
// context is cancelled only by an interrupt; probe's own timeouts are
// deadlines.
func interruptedResult(r probe.Result) bool { return errors.Is(r.Err, context.Canceled) }

// parseTargets reads every target; the first bad one is the error.
func parseTargets(args []string) ([]probe.Target, error) {
	targets := make([]probe.Target, 0, len(args))
	for _, a := range args {
		t, err := probe.ParseTarget(a)
		if err != nil {
			return nil, err
		}
		targets = append(targets, t)
	}
	return targets, nil
}

// httpFlags are the options check and wait share for HTTP targets.
type httpFlags struct {
	status   []int
	insecure bool
}

func (h *httpFlags) add(cmd *cobra.Command) {
	cmd.Flags().IntSliceVar(&h.status, "status", nil, "HTTP status `CODES` that count as ready (default any 2xx)")
	cmd.Flags().BoolVarP(&h.insecure, "insecure", "k", false, "do not verify https certificates")
}

// options checks the flags and makes them CheckOptions. A flag no target
// would use is refused rather than ignored: `--status 200 host:80` would
// otherwise say open without any status read.
func (h *httpFlags) options(targets []probe.Target, timeout time.Duration) (probe.CheckOptions, error) {
	for _, code := range h.status {
		if code < 100 || code > 599 {
			return probe.CheckOptions{}, usagef("--status %d: not an HTTP status (100-599)", code)
		}
	}
	var web, tls bool
	for _, t := range targets {
		web = web || t.Kind == probe.HTTP
		tls = tls || t.Kind == probe.HTTP && len(t.URL) > 5 && strings.EqualFold(t.URL[:6], "https:")
	}
	switch {
	case len(h.status) > 0 && !web:
		return probe.CheckOptions{}, usagef("--status %s: no http(s):// target to read a status from", intList(h.status))
	case h.insecure && !tls:
		return probe.CheckOptions{}, usagef("--insecure: no https:// target whose certificate it would skip")
	}
	return probe.CheckOptions{Timeout: timeout, Status: h.status, InsecureSkipVerify: h.insecure}, nil
}

func newCheck(e *env) *cobra.Command {
	var (
		timeout time.Duration
		hf      httpFlags
	)
	cmd := &cobra.Command{
		Use:   "check TARGET...",
		Short: "Check once whether targets answer: open, closed, filtered or unresolvable",
		Long: `Try each TARGET once, all in parallel, and say whether it is open (connected),
closed (refused), filtered (no answer in time), unresolvable, or an error,
with the connect latency. A host name is resolved and every address tried.

TARGET is host:port or [v6]:port (TCP), unix:/path (a Unix socket), or an
http(s):// URL (open when the status is 2xx, or one of --status).

--timeout takes seconds (-t 5) or a number with a unit (500ms). --status and
-k apply to http(s):// targets, and are refused with none.

Exit status: 0 when every target is open, 1 when none is, 3 when some are,
2 on bad usage or a bad target, 130 when interrupted (the targets cut short
reported as interrupted).`,
		Example: `  portkit check localhost:5432
  portkit check db:5432 cache:6379 unix:/run/app.sock
  portkit check https://localhost:8443/health --status 200,204 -k --json`,
		Args: needArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			targets, err := parseTargets(args)
			if err != nil {
				return err
			}
			if timeout <= 0 {
				return usagef("--timeout %v: must be positive", timeout)
			}
			opts, err := hf.options(targets, timeout)
			if err != nil {
				return err
			}
			results := checkAll(cmd.Context(), targets, opts)
			if err := printProbe(e, results); err != nil {
				return err
			}
			if err := cmd.Context().Err(); err != nil {
				return err
			}
			var answered tally
			for _, r := range results {
				answered.add(r.Status == probe.Open)
			}
			return answered.err()
		}),
	}
	durationVarP(cmd.Flags(), &timeout, "timeout", "t", probe.DefaultTimeout, "limit for each target (seconds, or 500ms, 2m)")
	hf.add(cmd)
	return cmd
}

func checkAll(ctx context.Context, targets []probe.Target, opts probe.CheckOptions) []probe.Result {
	results := make([]probe.Result, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() { results[i] = probe.Check(ctx, t, opts) })
	}
	wg.Wait()
	return results
}

func printProbe(e *env, results []probe.Result) error {
	p := e.printer()
	if p.Format() == output.JSON {
		rows := make([]probeRow, len(results))
		for i, r := range results {
			rows[i] = newProbeRow(r)
		}
		return p.JSON(rows)
	}
	t := p.Table("TARGET", "STATUS", "ADDRESS", "LATENCY", "REASON")
	for _, r := range results {
		row := newProbeRow(r)
		style := output.Red
		if r.Status == probe.Open {
			style = output.Green
		}
		t.StyledRow(
			output.Cell{Text: row.Target},
			output.Cell{Text: row.Status, Style: style},
			output.Cell{Text: orDash(row.Address)},
			output.Cell{Text: latency(r.Latency)},
			output.Cell{Text: orDash(row.Reason)},
		)
	}
	return t.Flush()
}

func latency(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return d.Round(time.Millisecond).String()
}

func intList(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
