package sockets

import (
	"bytes"
	"strings"
)

// containerID returns the container id that a /proc/PID/cgroup file puts
// the process in, or "" when it is in none. Every container runtime names
// the container's cgroup after its 64-hex-digit id, bare or with a prefix
// and a systemd suffix:
//
//	12:memory:/docker/ID                                  docker, cgroupfs driver
//	0::/system.slice/docker-ID.scope                      docker, systemd driver
//	0::/kubepods.slice/…/cri-containerd-ID.scope          containerd (CRI)
//	0::/kubepods.slice/…/crio-ID.scope                    CRI-O
//	11:cpu:/kubepods/burstable/podUID/ID                  kubelet, cgroupfs driver
//	0::/user.slice/…/libpod-ID.scope/container            podman
//
// The innermost id wins, for containers in containers. The monitor
// processes runtimes keep beside a container (conmon) are outside it.
func containerID(cgroup []byte) string {
	for len(cgroup) > 0 {
		var line []byte
		line, cgroup, _ = bytes.Cut(cgroup, []byte{'\n'})
		// hierarchy-ID:controllers:path, and the path may hold colons.
		_, rest, ok1 := bytes.Cut(line, []byte{':'})
		_, path, ok2 := bytes.Cut(rest, []byte{':'})
		if !ok1 || !ok2 {
			continue
		}
		if id := containerIDInPath(string(path)); id != "" {
			return id
		}
	}
	return ""
}

func containerIDInPath(path string) string {
	for path != "" {
		i := strings.LastIndexByte(path, '/')
		seg := path[i+1:]
		path = path[:max(i, 0)]
		if strings.Contains(seg, "conmon-") {
			continue
		}
		seg = strings.TrimSuffix(seg, ".scope")
		seg = seg[strings.LastIndexByte(seg, '-')+1:] // docker-, cri-containerd-, crio-, libpod-
		if isContainerID(seg) {
			return seg
		}
	}
	return ""
}

func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
