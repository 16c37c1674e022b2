package cli

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/portkit/portkit/knock"
	"github.com/portkit/portkit/knock/replay"
)

// TestKnockdReload: SIGHUP's reload takes a good config whole and leaves
// a bad one (or one whose max_age outgrows the replay cache) unapplied.
func TestKnockdReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "knockd.toml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("[[sequence]]\nsequence = \"7000,8000\"\nopen_ports = [\"tcp/22\"]\n")
	cmd := &cobra.Command{}
	kf := &knockdFlags{configPath: path}
	cmd.Flags().IntVar(&kf.spaPort, "spa-port", knock.DefaultSPAPort, "")
	cfg, err := kf.load(cmd)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := replay.Open(filepath.Join(dir, "replay"), replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	srv, err := knock.NewServer(cfg, knock.Options{Replay: cache, Opener: knock.OpenerFunc(func(context.Context, netip.Addr, uint16, string, time.Duration) error { return nil })})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	window := replayWindow(cfg)

	// A broken file: the running config stays.
	write("[[sequence]]\nsequence = \"7000,8000:sctp\"\nopen_ports = [\"tcp/22\"]\n[[sequence]]\nsequence = \"1,2\"\nopen_ports = [\"tcp/23\"]\n")
	reloadKnockd(srv, kf, cmd, window, log)
	if srv.Config() != cfg || !strings.Contains(logs.String(), "reload failed, the running config stays") || !strings.Contains(logs.String(), "sctp") {
		t.Fatalf("a bad file was applied, or not said: %s", logs.String())
	}
	// A max_age the replay cache does not cover: refused.
	logs.Reset()
	write("[[spa]]\nsource = [\"ANY\"]\nkey_base64 = \"KbRtXCp1ZZtm4AFLuYDsNW2Dy7OFLbMlnmQxmR8TYXk=\"\nhmac_key_base64 = \"OIpymFtWsfbAf3nZT9hB8SP3l+k2aCyzbUbcXotTjJ8=\"\nmax_age = \"1h\"\n")
	reloadKnockd(srv, kf, cmd, window, log)
	if srv.Config() != cfg || !strings.Contains(logs.String(), "needs a restart") {
		t.Fatalf("a longer max_age was applied, or not said: %s", logs.String())
	}
	// A good one: applied whole.
	logs.Reset()
	write("[[sequence]]\nsequence = \"1,2\"\nopen_ports = [\"tcp/23\"]\n[[sequence]]\nsequence = \"3,4\"\nopen_ports = [\"tcp/24\"]\n")
	reloadKnockd(srv, kf, cmd, window, log)
	if got := srv.Config(); got == cfg || len(got.Doors) != 2 || !strings.Contains(logs.String(), "msg=reloaded") {
		t.Fatalf("not reloaded: %s", logs.String())
	}
}
