package registry

import (
	"bytes"
	"encoding/csv"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/portkit/portkit/registry/internal/ianacsv"
	"github.com/portkit/portkit/registry/internal/table"
)

// ianaCSV is where the registry's source lives beside a checkout.
const ianaCSV = "../../shared/data/iana/service-names-port-numbers.csv"

func openCSV(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(ianaCSV)
	if os.IsNotExist(err) {
		t.Skipf("IANA CSV not found at %s (shared/ is not beside this checkout)", ianaCSV)
	}
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestEveryRowAnswered reads IANA's CSV with nothing but encoding/csv, apart
// from the generator, and asks the registry for every row.
func TestEveryRowAnswered(t *testing.T) {
	rows, err := csv.NewReader(bytes.NewReader(openCSV(t))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	r := New()
	var buf []Service
	counts := map[string]int{}
	for n, row := range rows[1:] {
		name, portField, protoField, desc := row[0], row[1], row[2], strings.TrimSpace(row[3])
		counts[protoField]++
		proto := AnyProto
		if protoField != "" {
			if proto, err = ParseProto(protoField); err != nil {
				t.Fatalf("row %d: %v", n+2, err)
			}
		}
		lo, hi := -1, -1
		if portField != "" {
			a, b, isRange := strings.Cut(portField, "-")
			lo, _ = strconv.Atoi(a)
			hi = lo
			if isRange {
				hi, _ = strconv.Atoi(b)
			}
		}
		same := func(s Service) bool {
			return s.Name == name && s.Proto == proto && s.Description == desc &&
				s.HasPort == (lo >= 0) && (lo < 0 || int(s.Port) == lo && int(s.PortEnd) == hi)
		}
		if name != "" {
			buf = r.AppendByName(buf[:0], name, proto)
			if !contains(buf, same) {
				t.Errorf("row %d %v: not answered by name (got %v)", n+2, row[:3], names(buf))
			}
			// As the user types it: the query must read as this name.
			if q, err := ParseQuery(name); err != nil || q.Kind != NameQuery || q.Name != name {
				t.Errorf("row %d %v: ParseQuery(%q) = %+v, %v; want the name", n+2, row[:3], name, q, err)
			}
		}
		if lo >= 0 {
			for _, p := range []int{lo, hi} {
				buf = r.AppendByPort(buf[:0], uint16(p), proto)
				if !contains(buf, same) {
					t.Errorf("row %d %v: not answered by port %d (got %v)", n+2, row[:3], p, names(buf))
				}
			}
		}
	}
	want := map[string]int{"tcp": 6562, "udp": 6329, "sctp": 92, "dccp": 11}
	for p, n := range want {
		if counts[p] != n {
			t.Errorf("the CSV has %d %s rows, its README says %d", counts[p], p, n)
		}
	}
	if r.t.Len() != len(rows)-1 {
		t.Errorf("table has %d records, CSV %d rows", r.t.Len(), len(rows)-1)
	}
}

func contains(ss []Service, f func(Service) bool) bool {
	for _, s := range ss {
		if f(s) {
			return true
		}
	}
	return false
}

// TestTableUpToDate regenerates the table and compares it with the embedded
// one, so a change to the generator cannot land without `go generate`.
func TestTableUpToDate(t *testing.T) {
	recs, err := ianacsv.Read(bytes.NewReader(openCSV(t)))
	if err != nil {
		t.Fatal(err)
	}
	data, err := table.Build(recs)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != ianaData {
		t.Fatal("iana.bin is stale: run go generate ./registry")
	}
}
