package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// A release build's stamped version, commit and date are what version
// says, in both formats.
func TestVersionStamped(t *testing.T) {
	defer func(v, c, d string) { stampedVersion, stampedCommit, stampedDate = v, c, d }(stampedVersion, stampedCommit, stampedDate)
	stampedVersion, stampedCommit, stampedDate = "1.2.3", "0123456789abcdef0123", "2026-12-07T14:00:00Z"

	var out, errb bytes.Buffer
	s := Streams{In: strings.NewReader(""), Out: &out, Err: &errb, Getenv: func(string) string { return "" }, LookupEnv: os.LookupEnv}
	if code := Main(context.Background(), []string{"version"}, s); code != 0 {
		t.Fatalf("version: exit %d: %s", code, errb.String())
	}
	if got := out.String(); !strings.HasPrefix(got, "portkit 1.2.3 0123456789ab built 2026-12-07T14:00:00Z go") {
		t.Errorf("version = %q", got)
	}
	out.Reset()
	if code := Main(context.Background(), []string{"--version", "--json"}, s); code != 0 {
		t.Fatalf("--version --json: exit %d: %s", code, errb.String())
	}
	var v map[string]any
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatalf("--version --json: %v: %s", err, out.String())
	}
	for k, want := range map[string]string{"version": "1.2.3", "commit": "0123456789abcdef0123", "build_date": "2026-12-07T14:00:00Z"} {
		if v[k] != want {
			t.Errorf("--json %s = %v, want %s", k, v[k], want)
		}
	}
	if v["go"] == "" || v["platform"] == "" {
		t.Errorf("--json lacks go or platform: %v", v)
	}
}
