//go:build unix

package cli

import (
	"strconv"
	"syscall"
)

// dropTo makes the process run as uid (and the same gid), without
// supplementary groups.
func dropTo(uid string) error {
	id, err := strconv.Atoi(uid)
	if err != nil {
		return err
	}
	if err := syscall.Setgroups(nil); err != nil {
		return err
	}
	if err := syscall.Setgid(id); err != nil {
		return err
	}
	return syscall.Setuid(id)
}
