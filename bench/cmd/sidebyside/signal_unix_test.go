//go:build unix

package main

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/portkit/portkit/internal/testtool"
)

// asMain makes the test binary behave as sidebyside, for tests that need a
// whole process.
const asMain = "SIDEBYSIDE_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		main()
	}
	os.Exit(m.Run())
}

// Interrupted, sidebyside must die of SIGINT so that a calling script stops.
func TestInterruptKillsBySIGINT(t *testing.T) {
	testtool.Need(t, "sleep")
	cmd := exec.Command(os.Args[0], "-runs", "1", "-warmup", "0", "-cmd", "sleep=sleep 30")
	cmd.Env = append(os.Environ(), asMain+"=1")
	// Its own process group, so that the test can interrupt sidebyside and
	// its child together, as ctrl-C in a terminal does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let it install its handler and start sleep
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("sidebyside still running 10s after SIGINT")
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Errorf("sidebyside ended with %v, want death by SIGINT", cmd.ProcessState)
	}
}
