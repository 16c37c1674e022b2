package table

import (
	"slices"
	"testing"
)

func rec(name string, lo, hi uint16, proto uint8, desc string) Record {
	r := Record{Name: name, Lo: lo, Hi: hi, HasPort: true, Proto: proto}
	r.Info[InfoDescription] = desc
	return r
}

func build(t *testing.T, recs []Record) *Table {
	t.Helper()
	data, err := Build(recs)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := Open(string(data))
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func covering(tb *Table, port uint16) []string {
	var out []string
	from, to := tb.Covering(port)
	for k := from; k < to; k++ {
		out = append(out, tb.Name(tb.Cover(k)))
	}
	return out
}

func TestCovering(t *testing.T) {
	recs := []Record{
		rec("", 0, 0, 0, "Reserved"),
		rec("b-udp", 10, 10, 2, "b"),
		rec("b", 10, 10, 1, "b"),
		rec("wide", 5, 20, 1, "overlaps b"),
		rec("top", 65535, 65535, 1, "last port"),
		{Name: "noport", Proto: 1},
	}
	tb := build(t, recs)
	tests := map[uint16][]string{
		0:     {""},
		4:     nil,
		5:     {"wide"},
		10:    {"b", "wide", "b-udp"}, // tcp first, then udp, then registry order
		20:    {"wide"},
		21:    nil,
		65534: nil,
		65535: {"top"},
	}
	for port, want := range tests {
		if got := covering(tb, port); !slices.Equal(got, want) {
			t.Errorf("covering(%d) = %q, want %q", port, got, want)
		}
	}
	if first, last, _, _ := tb.SpanAt(tb.SpanOf(7)); first != 5 || last != 9 {
		t.Errorf("span of 7 = %d-%d, want 5-9", first, last)
	}
}

func TestNamedAndInfo(t *testing.T) {
	r := rec("Alpha", 1, 1, 1, "first")
	r.Info[InfoNotes] = "a note"
	recs := []Record{r, rec("beta", 2, 2, 1, "second"), rec("alpha", 3, 3, 2, "first"), {Name: "alpha", Proto: 1}}
	tb := build(t, recs)
	from, to := tb.Named("ALPHA")
	var got []int
	for k := from; k < to; k++ {
		got = append(got, tb.NameAt(k))
	}
	// Rows with a port first, then by protocol.
	if want := []int{0, 2, 3}; !slices.Equal(got, want) {
		t.Errorf("Named(ALPHA) = %v, want %v", got, want)
	}
	if from, to := tb.Named("gamma"); from != to {
		t.Errorf("Named(gamma) found %d rows", to-from)
	}
	if info := tb.Info(0); info != r.Info {
		t.Errorf("Info(0) = %q, want %q", info, r.Info)
	}
	if lo, hi, p, hasPort := tb.RecordHeader(3); lo != 0 || hi != 0 || p != 1 || hasPort {
		t.Errorf("RecordHeader(3) = %d %d %d %v", lo, hi, p, hasPort)
	}
}

func TestOpenRejects(t *testing.T) {
	for _, data := range []string{"", "garbage", Magic, Magic + "\xff\xff\xff\xff" + string(make([]byte, 36))} {
		if _, err := Open(data); err == nil {
			t.Errorf("Open(%q) accepted", data)
		}
	}
	if _, err := Build([]Record{{Name: "x", Lo: 5, Hi: 4, HasPort: true}}); err == nil {
		t.Error("Build accepted a reversed range")
	}
}

func TestCompareFold(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{{"a", "A", 0}, {"abc", "ABD", -1}, {"b", "A", 1}, {"ab", "a", 1}, {"", "", 0}, {"Z", "a", 1}}
	for _, tt := range tests {
		if got := CompareFold(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareFold(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
