package report

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portkit/portkit/internal/testtool"
)

const nmapDTD = "/usr/share/nmap/nmap.dtd"

// TestXMLValidates runs xmllint on reports with nmap's DTD as Debian's
// nmap package installs it (CI installs nmap and libxml2-utils).
func TestXMLValidates(t *testing.T) {
	xmllint := testtool.Need(t, "xmllint")
	testtool.NeedFile(t, nmapDTD, "nmap")
	dir := t.TempDir()
	ours := nmapDTD
	for name, out := range map[string][]byte{
		"open":        write(t, "xml", Options{}, results, Success),
		"all":         write(t, "xml", Options{All: true}, results, Success),
		"empty":       write(t, "xml", Options{}, nil, Success),
		"interrupted": write(t, "xml", Options{All: true}, results[:4], Interrupted),
		"failed":      write(t, "xml", Options{All: true}, results[:4], Failed),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".xml")
			if err := os.WriteFile(path, out, 0o644); err != nil {
				t.Fatal(err)
			}
			msg, err := exec.Command(xmllint, "--noout", "--dtdvalid", ours, path).CombinedOutput()
			if err != nil {
				t.Errorf("xmllint: %v\n%s\n%s", err, msg, out)
			}
		})
	}
}

// TestXMLEscapes reads a report back: what was written escaped must read
// as it was given.
func TestXMLEscapes(t *testing.T) {
	var doc struct {
		Args  string `xml:"args,attr"`
		Hosts []struct {
			Address struct {
				Addr string `xml:"addr,attr"`
			} `xml:"address"`
		} `xml:"host"`
		Finished struct {
			Exit     string `xml:"exit,attr"`
			ErrorMsg string `xml:"errormsg,attr"`
		} `xml:"runstats>finished"`
	}
	if err := xml.Unmarshal(write(t, "xml", Options{}, results, Interrupted), &doc); err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, h := range doc.Hosts {
		addrs = append(addrs, h.Address.Addr)
	}
	if got, want := doc.Args, strings.Join(info.Args, " "); got != want {
		t.Errorf("args = %q, want %q", got, want)
	}
	if got, want := strings.Join(addrs, " "), "198.18.0.2 198.18.0.10 2001:db8::1"; got != want {
		t.Errorf("hosts = %s, want %s", got, want)
	}
	if doc.Finished.Exit != "error" || doc.Finished.ErrorMsg != "interrupted" {
		t.Errorf("finished exit=%q errormsg=%q, want error, interrupted", doc.Finished.Exit, doc.Finished.ErrorMsg)
	}
}
