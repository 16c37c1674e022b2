package main

import (
	"bytes"
	"os"
	"slices"
	"testing"

	"github.com/portkit/portkit/registry"
)

// TestTableCurrent fails when top_table.go is not what the generator writes:
// edit lists.go, then run go generate ./portspec.
func TestTableCurrent(t *testing.T) {
	want, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../top_table.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("portspec/top_table.go is stale: run go generate ./portspec")
	}
}

func TestInterleave(t *testing.T) {
	long := []entry{{1, "a"}, {2, "a"}, {3, "a"}, {4, "a"}}
	short := []entry{{10, "b"}, {11, "b"}}
	var got []uint16
	for _, e := range interleave([][]entry{long, short}) {
		got = append(got, e.port)
	}
	// long at 1/8, 3/8, 5/8, 7/8; short at 1/4, 3/4.
	want := []uint16{1, 10, 2, 3, 11, 4}
	if !slices.Equal(got, want) {
		t.Errorf("interleave = %v, want %v", got, want)
	}
}

func TestRankRejects(t *testing.T) {
	if _, err := rank([]entry{{80, "a"}, {80, "b"}}, nil, registry.TCP); err == nil {
		t.Error("a port twice in the head was accepted")
	}
	if _, err := rank([]entry{{0, "zero"}}, nil, registry.TCP); err == nil {
		t.Error("port 0 was accepted")
	}
	list, err := rank([]entry{{80, "HTTP"}}, [][]entry{{{80, "again"}, {8080, "alt"}}}, registry.TCP)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].port != 80 || len(list[0].what) != 2 || list[1].port != 8080 || list[1].tier != tierSoftware {
		t.Errorf("rank = %+v", list)
	}
}
