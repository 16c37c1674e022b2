package testtool

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder is a testing.TB that notes a skip or a failure instead of
// ending the test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                      {}
func (r *recorder) Skipf(f string, args ...any)  { r.skipped = fmt.Sprintf(f, args...) }
func (r *recorder) Fatalf(f string, args ...any) { r.failed = fmt.Sprintf(f, args...) }

func TestNeedMissingSkipsNamingTheTool(t *testing.T) {
	t.Setenv("CI", "")
	t.Setenv("PATH", t.TempDir())
	r := &recorder{TB: t}
	if path := Need(r, "xmllint"); path != "" {
		t.Errorf("Need = %q for a tool not in PATH", path)
	}
	if want := "needs xmllint (package libxml2-utils): not found"; r.skipped != want || r.failed != "" {
		t.Errorf("skipped %q, failed %q; want a skip %q", r.skipped, r.failed, want)
	}
}

func TestNeedMissingFailsUnderCI(t *testing.T) {
	t.Setenv("CI", "true")
	t.Setenv("PATH", t.TempDir())
	r := &recorder{TB: t}
	Need(r, "nft")
	if !strings.HasPrefix(r.failed, "needs nft (package nftables): not found") || r.skipped != "" {
		t.Errorf("skipped %q, failed %q; want a failure naming nft and nftables", r.skipped, r.failed)
	}
}

func TestNeedFile(t *testing.T) {
	t.Setenv("CI", "")
	r := &recorder{TB: t}
	missing := filepath.Join(t.TempDir(), "nmap.dtd")
	NeedFile(r, missing, "nmap")
	if want := "needs " + missing + " (package nmap): not found"; r.skipped != want {
		t.Errorf("skipped %q, want %q", r.skipped, want)
	}
	r = &recorder{TB: t}
	NeedFile(r, t.TempDir(), "nmap")
	if r.skipped != "" || r.failed != "" {
		t.Errorf("a file that is there: skipped %q, failed %q", r.skipped, r.failed)
	}
}

func TestNeedFound(t *testing.T) {
	t.Setenv("CI", "true")
	dir := t.TempDir()
	tool := filepath.Join(dir, "pktool")
	if err := os.WriteFile(tool, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	r := &recorder{TB: t}
	if path := Need(r, "pktool"); path != tool || r.failed != "" || r.skipped != "" {
		t.Errorf("Need = %q (skipped %q, failed %q), want %s", path, r.skipped, r.failed, tool)
	}
}

// TestHave: the testscript condition's answer: true when there, false
// when missing, and an error naming the tool and package under CI=true.
func TestHave(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("CI", "")
	if ok, err := Have("xmllint", false); ok || err != nil {
		t.Errorf("missing, not CI: %v, %v; want false, nil", ok, err)
	}
	t.Setenv("CI", "true")
	if ok, err := Have("xmllint", false); ok || err == nil || !strings.HasPrefix(err.Error(), "needs xmllint (package libxml2-utils): not found") {
		t.Errorf("missing under CI: %v, %v; want an error naming xmllint and libxml2-utils", ok, err)
	}
	missing := filepath.Join(t.TempDir(), "nmap.dtd")
	if ok, err := Have(missing, true); ok || err == nil {
		t.Errorf("missing file under CI: %v, %v", ok, err)
	}
	if ok, err := Have(t.TempDir(), true); !ok || err != nil {
		t.Errorf("a file that is there: %v, %v", ok, err)
	}
}
