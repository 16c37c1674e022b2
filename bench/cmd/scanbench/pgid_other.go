//go:build !unix

package main

import "syscall"

// ownGroup is nil: no process groups to leave here.
func ownGroup() *syscall.SysProcAttr { return nil }
