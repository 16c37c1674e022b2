package cli

import (
	"testing"

	"github.com/portkit/portkit/evict"
	"github.com/portkit/portkit/sockets"
)

// TestKillSummary: a holder kill never signals is named with the reason,
// and KILL is suggested only for a holder a signal reached.
func TestKillSummary(t *testing.T) {
	init1 := evict.Action{Process: sockets.Process{PID: 1, Name: "systemd"}, Signal: 15, Err: evict.Refusal(sockets.Process{PID: 1})}
	worker := evict.Action{Process: sockets.Process{PID: 4242, Name: "app"}, Signal: 15}
	rep := func(actions ...evict.Action) evict.Report {
		r := evict.Report{Target: evict.Target{Port: 3000}, Actions: actions}
		for _, a := range actions {
			r.Holders = append(r.Holders, a.Process)
		}
		return r
	}
	for _, tt := range []struct {
		name string
		rep  evict.Report
		want string
	}{
		{"init alone, with --force", rep(init1, init1), "3000/tcp+udp: still held; pid 1 is init: portkit never signals it"},
		{"a worker that outlived TERM", rep(worker), "3000/tcp+udp: still held; --force sends KILL"},
		{"both", rep(worker, init1), "3000/tcp+udp: still held; pid 1 is init: portkit never signals it; --force sends KILL"},
		{"a range, free already", evict.Report{Target: evict.Target{Port: 8000, PortEnd: 8005, Proto: sockets.TCP}, WasFree: true, Free: true},
			"8000-8005/tcp: already free, nothing listens on any of its ports"},
	} {
		if got := killSummary(newKillRow(tt.rep, "", false)); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
	if got := killSummary(newKillRow(evict.Report{Target: evict.Target{Port: 5432}, Holders: []sockets.Process{{PID: 9}}}, "postgresql", true)); got != "postgresql (5432/tcp+udp): held by 1 process(es); nothing signalled (--dry-run)" {
		t.Errorf("named dry run: %q", got)
	}
}
