package main

import (
	"io"
	"testing"
	"time"
)

func TestParseArgs(t *testing.T) {
	cfg, err := parseArgs([]string{"-ready", "r"}, io.Discard)
	want := config{procs: 400, conns: 25, ready: "r", maxLifetime: 10 * time.Minute}
	if err != nil || cfg != want {
		t.Errorf("defaults: %+v, %v; want %+v", cfg, err, want)
	}
	cfg, err = parseArgs([]string{"-procs", "3", "-conns", "0", "-busy", "9", "-ready", "r", "-max-lifetime", "5s"}, io.Discard)
	want = config{procs: 3, conns: 0, busy: 9, ready: "r", maxLifetime: 5 * time.Second}
	if err != nil || cfg != want {
		t.Errorf("explicit: %+v, %v; want %+v", cfg, err, want)
	}
	for _, bad := range [][]string{
		{},
		{"-ready", "r", "extra"},
		{"-ready", "r", "-procs", "0"},
		{"-ready", "r", "-conns", "-1"},
		{"-ready", "r", "-busy", "-1"},
		{"-ready", "r", "-max-lifetime", "0s"},
		{"-ready", "r", "-child"}, // the child role is only recognised first
		{"-ready", "r", "-procs", "x"},
	} {
		if cfg, err := parseArgs(bad, io.Discard); err == nil {
			t.Errorf("parseArgs(%q) = %+v, want an error", bad, cfg)
		}
	}
}

func TestChildArgsRoundTrip(t *testing.T) {
	want := childConfig{conns: 25, accept: 7, lifetime: 90 * time.Second}
	args := childArgs(want)
	if args[0] != childFlag {
		t.Fatalf("childArgs = %q, want %s first", args, childFlag)
	}
	if got, err := parseChildArgs(args[1:]); err != nil || got != want {
		t.Errorf("parseChildArgs(%q) = %+v, %v", args[1:], got, err)
	}
	if _, err := parseChildArgs([]string{"-conns", "1"}); err == nil {
		t.Error("parseChildArgs without -max-lifetime succeeded")
	}
	if _, err := parseChildArgs([]string{"-accept", "-1", "-max-lifetime", "1s"}); err == nil {
		t.Error("parseChildArgs with a negative -accept succeeded")
	}
}

func TestParsePortLine(t *testing.T) {
	for in, want := range map[string]int{"1": 1, "65535": 65535, " 4242 ": 4242} {
		if got, err := parsePortLine(in); err != nil || got != want {
			t.Errorf("parsePortLine(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "65536", "-1", "80 81", "port"} {
		if got, err := parsePortLine(bad); err == nil {
			t.Errorf("parsePortLine(%q) = %d, want an error", bad, got)
		}
	}
}

func TestFormatPorts(t *testing.T) {
	if got := formatPorts([]int{80, 443}); got != "80\n443\n" {
		t.Errorf("formatPorts = %q", got)
	}
	if got := formatPorts(nil); got != "" {
		t.Errorf("formatPorts(nil) = %q", got)
	}
}
