package ianacsv

import (
	"errors"
	"strings"
	"testing"

	"github.com/portkit/portkit/registry/internal/table"
)

const header = "Service Name,Port Number,Transport Protocol,Description,Assignee,Contact,Registration Date,Modification Date,Reference,Service Code,Unauthorized Use Reported,Assignment Notes\n"

func TestRead(t *testing.T) {
	in := header +
		`smtp,25,tcp,Simple Mail Transfer,[IESG],[IETF_Chair],,2017-06-05,[RFC5321],,,` + "\n" +
		`x11,6000-6063,udp,X Window System,[Stephen_Gildea],[Stephen_Gildea],,,,,,` + "\n" +
		`,49152-65535,,Unassigned,,,,,,,,` + "\n" +
		`whois++,63,tcp,whois++,[R],[R],,,,,,"This entry is an alias to ""whoispp"".` + "\nThis entry is now historic.\"\n" +
		`sql*net,66,TCP,"Oracle SQL*NET, with a comma",,,,,,,,"This entry is an alias to ""sql-net""."` + "\n" +
		`argus,,,ARGUS Protocol,,,,,,,,` + "\n" +
		`,,,nothing to look up by,,,,,,,,` + "\n"
	recs, err := Read(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 6 {
		t.Fatalf("got %d records, want 6 (the row with neither name nor port dropped)", len(recs))
	}
	tests := []struct {
		i       int
		name    string
		lo, hi  uint16
		hasPort bool
		proto   uint8
		alias   string
	}{
		{0, "smtp", 25, 25, true, 1, ""},
		{1, "x11", 6000, 6063, true, 2, ""},
		{2, "", 49152, 65535, true, 0, ""},
		{3, "whois++", 63, 63, true, 1, "whoispp"},
		{4, "sql*net", 66, 66, true, 1, "sql-net"},
		{5, "argus", 0, 0, false, 0, ""},
	}
	for _, tt := range tests {
		r := recs[tt.i]
		if r.Name != tt.name || r.Lo != tt.lo || r.Hi != tt.hi || r.HasPort != tt.hasPort || r.Proto != tt.proto || r.Info[table.InfoAliasOf] != tt.alias {
			t.Errorf("record %d = %+v, want %+v", tt.i, r, tt)
		}
	}
	if d := recs[4].Info[table.InfoDescription]; d != "Oracle SQL*NET, with a comma" {
		t.Errorf("quoted description = %q", d)
	}
	if ref := recs[0].Info[table.InfoReference]; ref != "[RFC5321]" {
		t.Errorf("reference = %q", ref)
	}
}

func TestReadErrors(t *testing.T) {
	tests := []struct {
		in   string
		line int
		want string
	}{
		{header + "a,1,tcp,x,,,,,,,,\nb,2,xyz,y,,,,,,,,\n", 3, `unknown protocol "xyz"`},
		{header + "a,70000,tcp,x,,,,,,,,\n", 2, `bad port "70000"`},
		{header + "a,10-5,tcp,x,,,,,,,,\n", 2, `bad port range "10-5"`},
		{"Service Name,Port Number\n", 1, `"Transport Protocol": column missing`},
	}
	for _, tt := range tests {
		_, err := Read(strings.NewReader(tt.in))
		var e *Error
		if !errors.As(err, &e) || e.Line != tt.line || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Read(%q) = %v, want line %d: %s", tt.in, err, tt.line, tt.want)
		}
	}
}

func FuzzRead(f *testing.F) {
	f.Add(header + "smtp,25,tcp,Simple Mail Transfer,,,,,[RFC5321],,,\n")
	f.Add(header + `a,1-2,,"q""uote",,,,,,,,"alias to ""b"""` + "\n")
	f.Add("x\n")
	f.Fuzz(func(t *testing.T, in string) {
		recs, err := Read(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, r := range recs {
			if r.HasPort && r.Hi < r.Lo {
				t.Fatalf("reversed range %+v", r)
			}
		}
		// Whatever it reads, the table must encode and decode.
		data, err := table.Build(recs)
		if err != nil {
			return
		}
		tb, err := table.Open(string(data))
		if err != nil {
			t.Fatalf("Open(Build()) = %v", err)
		}
		for i, r := range recs {
			if tb.Name(i) != r.Name || tb.Info(i) != r.Info {
				t.Fatalf("record %d does not round-trip", i)
			}
		}
	})
}
