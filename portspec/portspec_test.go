package portspec

import (
	"errors"
	"testing"
)

func TestParseRange(t *testing.T) {
	good := map[string]Range{"1-1024": {1, 1024}, "80": {80, 80}, " 0-65535 ": {0, 65535}, "5-5": {5, 5}}
	for in, want := range good {
		if got, err := ParseRange(in); err != nil || got != want {
			t.Errorf("ParseRange(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-", "1-", "-5", "10-5", "a-b", "70000", "1-70000", "1-2-3"} {
		_, err := ParseRange(in)
		var e *Error
		if !errors.As(err, &e) || e.Input != in || !e.BadInput() {
			t.Errorf("ParseRange(%q) error = %v, want an Error naming the input", in, err)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"1-1024", "80", "", "10-5", "65535-65535", "1-2-3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s)
		if err == nil && r.Hi < r.Lo {
			t.Fatalf("ParseRange(%q) = reversed %v", s, r)
		}
	})
}

func TestParsePortProto(t *testing.T) {
	good := map[string]PortProto{"3000": {3000, 0}, "53/udp": {53, 2}, "22/TCP": {22, 1}}
	for in, want := range good {
		if got, err := ParsePortProto(in); err != nil || got != want {
			t.Errorf("ParsePortProto(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "70000", "80/", "80/xyz", "80/any", "-1", "/tcp"} {
		if _, err := ParsePortProto(in); err == nil {
			t.Errorf("ParsePortProto(%q) accepted", in)
		}
	}
}
