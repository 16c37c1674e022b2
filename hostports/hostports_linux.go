package hostports

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

const (
	localPortRange       = "proc/sys/net/ipv4/ip_local_port_range"
	unprivilegedPortFile = "proc/sys/net/ipv4/ip_unprivileged_port_start"
)

// Read reads /proc/sys/net/ipv4 under r.Root ("/" when empty).
func (r Reader) Read() (Policy, error) {
	root := r.Root
	if root == "" {
		root = "/"
	}
	var p Policy
	nums, err := readUints(filepath.Join(root, localPortRange), 2)
	if err != nil {
		return p, err
	}
	p.EphemeralLow, p.EphemeralHigh = nums[0], nums[1]
	// Kernels before 4.11 have no such file; 1024 was fixed then.
	nums, err = readUints(filepath.Join(root, unprivilegedPortFile), 1)
	switch {
	case os.IsNotExist(err):
		p.UnprivilegedStart = 1024
	case err != nil:
		return p, err
	default:
		p.UnprivilegedStart = nums[0]
	}
	return p, nil
}

func readUints(path string, n int) ([]uint16, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, err
		}
		return nil, &Error{Path: path, Err: err}
	}
	fields := strings.Fields(string(data))
	if len(fields) != n {
		return nil, &Error{Path: path, Err: strconv.ErrSyntax}
	}
	out := make([]uint16, n)
	for i, f := range fields {
		v, err := strconv.ParseUint(f, 10, 16)
		if err != nil {
			return nil, &Error{Path: path, Err: err}
		}
		out[i] = uint16(v)
	}
	return out, nil
}
