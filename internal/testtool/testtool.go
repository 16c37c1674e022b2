// Package testtool lets a test say which program or file from outside Go
// it needs. Where one is missing the test is skipped, naming the tool and
// the Debian package that installs it; with CI=true in the environment the
// test fails instead, so that a CI run cannot pass by quietly testing less.
// It is for tests only.
package testtool

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"testing"
)

// Need returns the path of the program tool, found in PATH, or skips (under
// CI=true: fails) the test with "needs TOOL (package PKG): not found".
func Need(t testing.TB, tool string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		missing(t, tool, Package(tool), "not found")
		return ""
	}
	return path
}

// NeedFile skips (under CI=true: fails) the test when the file at path,
// which package pkg installs, is not there.
func NeedFile(t testing.TB, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		why := err.Error()
		if errors.Is(err, fs.ErrNotExist) {
			why = "not found"
		}
		missing(t, path, pkg, why)
	}
}

// Have is Need for a testscript condition ([need:xmllint],
// [need-file:/usr/share/nmap/nmap.dtd]), where a false condition skips the
// lines it guards: it reports whether the program (or, with isFile, the
// file) is there; a missing one is an error under CI=true, which fails the
// script, so that a CI run cannot skip the lines quietly.
func Have(what string, isFile bool) (bool, error) {
	var err error
	pkg := Package(what)
	if isFile {
		_, err = os.Stat(what)
		pkg = FilePackage(what)
	} else {
		_, err = exec.LookPath(what)
	}
	if err == nil {
		return true, nil
	}
	if os.Getenv("CI") == "true" {
		need := "needs " + what
		if pkg != "" {
			need += " (package " + pkg + ")"
		}
		return false, errors.New(need + ": not found; CI=true, so this is a failure, not a skip")
	}
	return false, nil
}

// FilePackage is the Debian package that installs the file at path, or ""
// for one this package does not know.
func FilePackage(path string) string {
	if path == "/usr/share/nmap/nmap.dtd" {
		return "nmap"
	}
	return ""
}

func missing(t testing.TB, what, pkg, why string) {
	t.Helper()
	need := "needs " + what
	if pkg != "" {
		need += " (package " + pkg + ")"
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s: %s; CI=true, so this is a failure, not a skip", need, why)
		return
	}
	t.Skipf("%s: %s", need, why)
}

// Package is the Debian package that installs the program tool, or "" for
// one this package does not know.
func Package(tool string) string {
	switch tool {
	case "ip":
		return "iproute2"
	case "nft":
		return "nftables"
	case "xmllint":
		return "libxml2-utils"
	case "getent":
		return "libc-bin"
	case "sh":
		return "dash"
	case "fwknop":
		return "fwknop-client"
	case "fwknopd":
		return "fwknop-server"
	case "knock", "knockd":
		return "knockd"
	case "nmap":
		return "nmap"
	case "chromium":
		return "chromium"
	case "masscan":
		return "masscan"
	case "true", "false", "sleep", "cat", "echo":
		return "coreutils"
	}
	return ""
}
