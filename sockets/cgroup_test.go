package sockets

import (
	"os"
	"path/filepath"
	"testing"
)

func TestContainerID(t *testing.T) {
	const id = "3f4ac1d2e5b6078a9c0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d"
	want := map[string]string{
		"docker-v1-cgroupfs":     id,
		"docker-v2-cgroupfs":     id,
		"docker-v2-systemd":      id,
		"docker-in-docker":       id, // the innermost
		"k8s-containerd-systemd": id,
		"k8s-v1-cgroupfs":        id,
		"k8s-crio":               id,
		"k8s-crio-conmon":        "", // the monitor, outside the container
		"podman-root":            id,
		"podman-rootless":        id,
		"podman-v1-cgroupfs":     id,
		"podman-conmon":          "",
		"host-session":           "",
		"host-dockerd":           "",
		"host-root":              "",
		"sandbox-v1":             "", // 32 hex digits: not a container id
		"short-id":               "",
		"upper-case-not-id":      "",
	}
	files, err := filepath.Glob("testdata/cgroup/*")
	if err != nil || len(files) != len(want) {
		t.Fatalf("%d fixtures (%v), want %d", len(files), err, len(want))
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(file)
		if got := containerID(b); got != want[name] {
			t.Errorf("%s: %q, want %q", name, got, want[name])
		}
	}
	for _, s := range []string{"", "\n", "garbage", "0:", "::", id, "0:" + id} {
		if got := containerID([]byte(s)); got != "" {
			t.Errorf("%q: %q, want none", s, got)
		}
	}
}
