package cli

import (
	"io"
	"slices"
	"testing"

	"github.com/portkit/portkit/forward"
	"github.com/portkit/portkit/registry"
	"github.com/portkit/portkit/scan/report"
)

// TestEnumFlagsExist: every entry of the completion table names a command
// and flag of the tree, and has values to offer.
func TestEnumFlagsExist(t *testing.T) {
	root := newRoot(&env{Streams: OSStreams()})
	for _, ef := range enumFlags() {
		cmd := findCommand(root, ef.path)
		if cmd == nil {
			t.Errorf("%s: no such command", ef.path)
			continue
		}
		if cmd.Flags().Lookup(ef.flag) == nil {
			t.Errorf("%s: no flag --%s", ef.path, ef.flag)
		}
		if len(ef.values()) == 0 {
			t.Errorf("%s --%s: no values", ef.path, ef.flag)
		}
	}
}

// TestEnumFlagValuesAccepted: every value completion offers is one the
// command takes, checked by the code that checks the flag.
func TestEnumFlagValuesAccepted(t *testing.T) {
	accept := map[string]func(string) error{
		"portkit scan --output":     func(v string) error { _, err := report.New(v, io.Discard, report.Options{}); return err },
		"portkit report --output":   checkReportFormat,
		"portkit scan --timing":     func(v string) error { _, err := parseTiming(v); return err },
		"portkit lookup --protocol": func(v string) error { _, err := registry.ParseProto(v); return err },
		"portkit kill --signal":     func(v string) error { _, err := parseSignal(v); return err },
		"portkit forward --balance": func(v string) error {
			return forward.Rule{Listen: ":1", Targets: []string{"127.0.0.1:1"}, Balance: forward.Balance(v)}.WithDefaults().Validate()
		},
		"portkit forward --proxy-protocol": func(v string) error { _, err := forward.ParseProxyVersion(v); return err },
		"portkit forward --log-format":     func(v string) error { _, err := newLogger(io.Discard, v); return err },
		"portkit knockd --log-format":      func(v string) error { _, err := newLogger(io.Discard, v); return err },
	}
	for _, ef := range enumFlags() {
		key := ef.path + " --" + ef.flag
		check, ok := accept[key]
		if !ok {
			t.Errorf("%s: no check for its values in this test", key)
			continue
		}
		for _, v := range ef.values() {
			if err := check(v); err != nil {
				t.Errorf("%s %q: offered by completion but refused: %v", key, v, err)
			}
		}
	}
}

func TestProtocolAndSignalNames(t *testing.T) {
	if got := protocolChoices(); !slices.Equal(got, []string{"any", "tcp", "udp", "sctp", "dccp"}) {
		t.Errorf("protocolChoices() = %v", got)
	}
	if got := signalChoices(); !slices.Contains(got, "TERM") || !slices.Contains(got, "KILL") || !slices.Contains(got, "HUP") {
		t.Errorf("signalChoices() = %v, want TERM, KILL and HUP among them", got)
	}
}
