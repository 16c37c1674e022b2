//go:build !linux

package main

import (
	"errors"
	"io"
)

// The fixture relies on Pdeathsig and on network namespaces, both Linux.
var errLinuxOnly = errors.New("sockfixture runs on Linux only")

func runParent(config, io.Writer) error { return errLinuxOnly }

func runChild(childConfig) error { return errLinuxOnly }
