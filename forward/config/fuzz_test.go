package config

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"slices"
	"testing"
)

// FuzzParse checks that no input panics, that a File comes only with rules
// the forwarder accepts, and that every error is an *Error on a line of the
// input. Its seeds, run by every go test, are the tables' files.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("testdata/example.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	for _, c := range goodFiles() {
		f.Add([]byte(c.toml))
	}
	for _, c := range badFiles() {
		f.Add([]byte(c.toml))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const path = "fuzz.toml"
		file, err := Parse(path, data)
		if err != nil {
			if file != nil {
				t.Fatalf("Parse returned a File with its error: %v", err)
			}
			lines := bytes.Count(data, []byte("\n")) + 1
			for _, e := range flatten(err) {
				var ce *Error
				if !errors.As(e, &ce) {
					t.Fatalf("error is %T, not *Error: %v", e, e)
				}
				if ce.Path != path || ce.Line < 0 || ce.Line > lines || !ce.BadInput() || ce.Err == nil {
					t.Fatalf("bad *Error (line %d of %d): %v", ce.Line, lines, ce)
				}
			}
			return
		}
		if file == nil || file.Path != path || len(file.Rules) == 0 {
			t.Fatalf("Parse = %+v without an error", file)
		}
		names := map[string]bool{}
		hosts := map[string][]string{} // by protocol and port
		for i, r := range file.Rules {
			if err := r.Validate(); err != nil {
				t.Fatalf("rule %d fails Validate: %v", i, err)
			}
			if !reflect.DeepEqual(r.WithDefaults(), r) {
				t.Fatalf("rule %d lacks its defaults: %+v", i, r)
			}
			port, host := listenerKey(r)
			if names[r.Name] || slices.ContainsFunc(hosts[port], func(h string) bool { return h == host || h == "" || host == "" }) {
				t.Fatalf("rule %d repeats a name or overlaps a listener: %+v", i, r)
			}
			names[r.Name] = true
			hosts[port] = append(hosts[port], host)
		}
	})
}
