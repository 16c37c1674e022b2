package cli

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func TestPlainWords(t *testing.T) {
	tests := []struct {
		msg         string
		interrupted bool
		want        string
	}{
		{"dial tcp 127.0.0.1:1: operation was canceled", true, "dial tcp 127.0.0.1:1: interrupted"},
		{"wait: 1 target(s) not ready (context canceled)", true, "wait: 1 target(s) not ready (interrupted)"},
		{"lookup db: context canceled", false, "lookup db: cancelled"},
		{"read: context deadline exceeded", true, "read: timed out"},
		{"connection refused", true, "connection refused"},
	}
	for _, tt := range tests {
		if got := plainWords(tt.msg, tt.interrupted); got != tt.want {
			t.Errorf("plainWords(%q, %v) = %q, want %q", tt.msg, tt.interrupted, got, tt.want)
		}
	}
}

// TestMainInterrupted runs commands whose context is already cancelled, as
// after Ctrl-C: exit 130, and no Go words on either stream.
func TestMainInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, args := range [][]string{
		{"check", "127.0.0.1:1"},
		{"check", "--json", "127.0.0.1:1", "unix:/nonexistent/x.sock"},
		{"wait", "127.0.0.1:1"},
		{"wait", "--json", "127.0.0.1:1"},
		{"free", "-n", "3"},
		{"scan", "--connect", "--no-progress", "-p", "1", "--resume-file", filepath.Join(t.TempDir(), "resume"), "127.0.0.1"},
	} {
		var out, errb bytes.Buffer
		code := Main(ctx, args, Streams{In: strings.NewReader(""), Out: &out, Err: &errb,
			Getenv: func(string) string { return "" }, LookupEnv: func(string) (string, bool) { return "", false }})
		if code != ExitInterrupted {
			t.Errorf("%v: exit %d, want %d; stderr %q", args, code, ExitInterrupted, errb.String())
		}
		if !strings.Contains(errb.String(), "interrupted") {
			t.Errorf("%v: stderr %q does not say interrupted", args, errb.String())
		}
		for _, w := range []string{"context", "canceled", "deadline"} {
			if strings.Contains(out.String()+errb.String(), w) {
				t.Errorf("%v: output says %q:\nstdout %s\nstderr %s", args, w, out.String(), errb.String())
			}
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"15", 15 * time.Second, ""},
		{"0", 0, ""},
		{"0.25", 250 * time.Millisecond, ""},
		{"1e1", 10 * time.Second, ""},
		{"500ms", 500 * time.Millisecond, ""},
		{"1m30s", 90 * time.Second, ""},
		{" 2m ", 2 * time.Minute, ""},
		{"-1", 0, "must not be negative"},
		{"-1s", 0, "must not be negative"},
		{"", 0, "not a duration"},
		{"abc", 0, "not a duration"},
		{"NaN", 0, "not a duration"},
		{"Inf", 0, "not a duration"},
		{"1e300", 0, "not a duration"},
		{"15 s", 0, "not a duration"},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("parseDuration(%q) = %v, %v; want error %q", tt.in, got, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("parseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

// TestEveryDurationFlagReadsSeconds walks the command tree: every duration
// flag takes a bare number as seconds (`wait -t 15`, `knock --timeout 15`)
// and refuses a negative one, as the README says of all of them, and none
// shows "(default 0s)" in --help, which would contradict the usage of a
// flag whose zero means "the command's own default".
func TestEveryDurationFlagReadsSeconds(t *testing.T) {
	root := newRoot(&env{})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		check := func(f *pflag.Flag) {
			if f.Value.Type() != "duration" {
				return
			}
			if _, ok := f.Value.(*durationValue); !ok {
				t.Errorf("%s --%s: a %T, which does not read a bare number as seconds; define it with durationVarP", c.CommandPath(), f.Name, f.Value)
			}
		}
		c.LocalFlags().VisitAll(check)
		if strings.Contains(c.LocalFlags().FlagUsages(), "(default 0s)") {
			t.Errorf("%s --help says (default 0s):\n%s", c.CommandPath(), c.LocalFlags().FlagUsages())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// TestReportStdinInterrupted: `report -` waits on stdin (a terminal waits
// for ^D); Ctrl-C ends it at once with 130 and "interrupted", not after
// the input ends with "stdin is empty".
func TestReportStdinInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	stdin, w := io.Pipe() // a writer that never writes nor ends
	defer w.Close()
	var out, errb bytes.Buffer
	code := make(chan int, 1)
	go func() {
		code <- Main(ctx, []string{"report", "-"}, Streams{In: stdin, Out: &out, Err: &errb,
			Getenv: func(string) string { return "" }, LookupEnv: func(string) (string, bool) { return "", false }})
	}()
	cancel()
	select {
	case c := <-code:
		if c != ExitInterrupted || errb.String() != "portkit: interrupted\n" {
			t.Errorf("exit %d, stderr %q; want %d and \"portkit: interrupted\"", c, errb.String(), ExitInterrupted)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("report - still reads stdin 30s after the interrupt")
	}
}
