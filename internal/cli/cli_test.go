package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"portkit": func() { os.Exit(Main(context.Background(), os.Args[1:], OSStreams())) },
		"status":  statusMain,
	})
}

// statusMain runs `status N CMD ARGS...`: CMD with its streams passed
// through, succeeding only if CMD exits with code N. Scripts use it to pin
// exit codes, which testscript's `! exec` does not tell apart.
func statusMain() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: status CODE CMD [ARGS...]")
		os.Exit(2)
	}
	want, err := strconv.Atoi(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "status:", err)
		os.Exit(2)
	}
	cmd := exec.Command(os.Args[2], os.Args[3:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	got := cmd.ProcessState.ExitCode()
	if got != want {
		fmt.Fprintf(os.Stderr, "status: %s exited with %d (%v), want %d\n", os.Args[2], got, err, want)
		os.Exit(1)
	}
	os.Exit(0)
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			// Scripts see IANA's data alone unless they name an overlay.
			env.Setenv(servicesEnv, "")
			return nil
		},
	})
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{&exitError{code: 3}, ExitPartial},
		{&commandError{context.DeadlineExceeded}, ExitTimeout},
		{&commandError{context.Canceled}, ExitInterrupted},
		{&commandError{fmt.Errorf("x: %w", &exitError{code: 1})}, ExitNegative},
		{&commandError{os.ErrPermission}, ExitNegative},
		{fmt.Errorf("unknown flag: --x"), ExitUsage},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}
