package report

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portkit/portkit/internal/testtool"
	"github.com/portkit/portkit/service"
)

// identified is what service detection found on some of results' ports.
var identified = map[int]*service.Result{
	0: {Service: "http", Product: "nginx", Version: "1.22.1", Info: `title "a <b> & \x01"`, Confidence: 10, Evidence: "Server: nginx/1.22.1",
		CPE: []string{"cpe:2.3:a:f5:nginx:1.22.1:*:*:*:*:*:*:*"},
		TLS: &service.TLSInfo{Version: "TLSv1.3", Cipher: "TLS_AES_128_GCM_SHA256", Chain: 1,
			Cert: &service.Certificate{Subject: "CN=portkit-test", Issuer: "CN=portkit-test", NotAfter: time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC), DaysLeft: 84, SelfSigned: true, KeyType: "ECDSA", KeyBits: 256}}},
	3: {Service: "ssh", Product: "OpenSSH", Version: "9.2p1", Info: "protocol 2.0, Debian-2+deb12u3", Confidence: 10, Evidence: `"SSH-2.0-OpenSSH_9.2p1"`},
	8: {Service: "unknown", Banner: `\x00\x01hi`, Evidence: "replied with bytes no detector recognised"},
}

func writeService(t *testing.T, format string, opts Options) []byte {
	t.Helper()
	var b bytes.Buffer
	opts.Getenv, opts.Service = noEnv, true
	w, err := New(format, &b, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Begin(info); err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		if err := w.(ServiceWriter).ResultService(r, identified[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.End(summary(Success)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestServiceFields(t *testing.T) {
	t.Run("jsonl", func(t *testing.T) {
		// The result lines, without the scan line first and the summary last.
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(string(writeService(t, "jsonl", Options{}))), "\n") {
			if !strings.HasPrefix(l, `{"type":`) {
				lines = append(lines, l)
			}
		}
		var first map[string]any
		if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
			t.Fatal(err)
		}
		if first["service"] != "http" || first["product"] != "nginx" || first["version"] != "1.22.1" || first["confidence"] != 10.0 {
			t.Errorf("first line %s: want the identified fields", lines[0])
		}
		tls, _ := first["tls"].(map[string]any)
		if tls == nil || tls["version"] != "TLSv1.3" || tls["certificate"].(map[string]any)["subject"] != "CN=portkit-test" {
			t.Errorf("tls %v", first["tls"])
		}
		if strings.Contains(lines[1], `"product"`) || strings.Contains(lines[1], `"confidence"`) {
			t.Errorf("a port not identified has no detection fields: %s", lines[1])
		}
	})
	t.Run("json", func(t *testing.T) {
		var doc struct{ Results []map[string]any }
		if err := json.Unmarshal(writeService(t, "json", Options{}), &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Results[0]["product"] != "nginx" {
			t.Errorf("results[0] %v", doc.Results[0])
		}
	})
	t.Run("table", func(t *testing.T) {
		out := string(writeService(t, "table", Options{}))
		for _, want := range []string{"VERSION", "TLS", "nginx 1.22.1", "TLSv1.3 CN=portkit-test 84d self-signed", "OpenSSH 9.2p1 (protocol 2.0", `banner \x00\x01hi`} {
			if !strings.Contains(out, want) {
				t.Errorf("table lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("grep", func(t *testing.T) {
		out := string(writeService(t, "grep", Options{}))
		if !strings.Contains(out, "22/open/tcp//ssh//OpenSSH 9.2p1 (protocol 2.0  Debian-2+deb12u3)/") {
			t.Errorf("grep lacks the version field:\n%s", out)
		}
	})
	t.Run("csv", func(t *testing.T) {
		out := string(writeService(t, "csv", Options{}))
		if !strings.Contains(out, ",product,version,info,tls_version,tls_subject,tls_not_after,confidence,cpe,banner\n") ||
			!strings.Contains(out, ",nginx,1.22.1,") || !strings.Contains(out, ",TLSv1.3,CN=portkit-test,2027-03-01T00:00:00Z,10,cpe:2.3:a:f5:nginx") {
			t.Errorf("csv:\n%s", out)
		}
	})
}

// TestServiceXMLValidates: the probed service elements hold to nmap.dtd.
func TestServiceXMLValidates(t *testing.T) {
	xmllint := testtool.Need(t, "xmllint")
	testtool.NeedFile(t, nmapDTD, "nmap")
	out := writeService(t, "xml", Options{All: true})
	for _, want := range []string{`<service name="http" method="probed" conf="10" version="1.22.1" product="nginx"`, `tunnel="ssl"`, `<cpe>cpe:2.3:a:f5:nginx:1.22.1`, `extrainfo="banner \x00\x01hi"`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("xml lacks %s:\n%s", want, out)
		}
	}
	path := filepath.Join(t.TempDir(), "service.xml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command(xmllint, "--noout", "--dtdvalid", nmapDTD, path).CombinedOutput(); err != nil {
		t.Errorf("xmllint: %v\n%s\n%s", err, msg, out)
	}
}
