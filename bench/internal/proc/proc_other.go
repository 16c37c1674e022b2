//go:build !unix

package proc

import "os/exec"

// The benchmark needs Linux (network namespaces, /proc); elsewhere it
// builds, and stops what it started as best it can.

func setProcessGroup(*exec.Cmd) {}

func signalGroup(cmd *exec.Cmd, _ bool) { _ = cmd.Process.Kill() }
