// Package ianacsv reads IANA's Service Name and Transport Protocol Port
// Number Registry in the CSV form IANA publishes.
package ianacsv

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/portkit/portkit/registry/internal/table"
)

// Protocol numbers as stored in the table; 0 is a row that names none.
var protocols = map[string]uint8{"": 0, "tcp": 1, "udp": 2, "sctp": 3, "dccp": 4}

// columns are the header names this reader needs, in the order of the
// fields it returns.
var columns = []string{
	"Service Name", "Port Number", "Transport Protocol", "Description",
	"Assignee", "Contact", "Registration Date", "Modification Date",
	"Reference", "Service Code", "Unauthorized Use Reported", "Assignment Notes",
}

// Aliases are written in the notes, in two phrasings.
var aliasNote = regexp.MustCompile(`(?:alias to|duplicate of the) "([^"]+)"`)

// Error is a problem at a place in the CSV.
type Error struct {
	Line   int
	Column string
	Err    error
}

func (e *Error) Error() string {
	if e.Column != "" {
		return fmt.Sprintf("line %d, column %q: %v", e.Line, e.Column, e.Err)
	}
	return fmt.Sprintf("line %d: %v", e.Line, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Read parses the whole registry, keeping IANA's row order.
func Read(r io.Reader) ([]table.Record, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	pos := make([]int, len(columns))
	for i, want := range columns {
		pos[i] = -1
		for j, h := range head {
			if strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")) == want {
				pos[i] = j
			}
		}
		if pos[i] < 0 {
			return nil, &Error{Line: 1, Column: want, Err: errors.New("column missing from header")}
		}
	}
	var recs []table.Record
	for {
		row, err := cr.Read()
		if err == io.EOF {
			return recs, nil
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		f := make([]string, len(columns))
		for i, p := range pos {
			if p < len(row) {
				f[i] = strings.TrimSpace(row[p])
			}
		}
		rec, err := record(f)
		if err != nil {
			err.(*Error).Line = line
			return nil, err
		}
		if rec.Name == "" && !rec.HasPort {
			continue // nothing to look up by
		}
		recs = append(recs, rec)
	}
}

func record(f []string) (table.Record, error) {
	r := table.Record{Name: f[0]}
	proto, ok := protocols[strings.ToLower(f[2])]
	if !ok {
		return r, &Error{Column: columns[2], Err: fmt.Errorf("unknown protocol %q", f[2])}
	}
	r.Proto = proto
	if f[1] != "" {
		lo, hi, err := portRange(f[1])
		if err != nil {
			return r, &Error{Column: columns[1], Err: err}
		}
		r.Lo, r.Hi, r.HasPort = lo, hi, true
	}
	r.Info = [table.NumInfo]string{
		table.InfoDescription:  f[3],
		table.InfoAssignee:     f[4],
		table.InfoContact:      f[5],
		table.InfoRegistered:   f[6],
		table.InfoModified:     f[7],
		table.InfoReference:    f[8],
		table.InfoServiceCode:  f[9],
		table.InfoUnauthorized: f[10],
		table.InfoNotes:        f[11],
	}
	if m := aliasNote.FindStringSubmatch(f[11]); m != nil && !strings.EqualFold(m[1], r.Name) {
		r.Info[table.InfoAliasOf] = m[1]
	}
	return r, nil
}

func portRange(s string) (lo, hi uint16, err error) {
	a, b, isRange := strings.Cut(s, "-")
	l, err := strconv.ParseUint(a, 10, 16)
	if err != nil {
		return 0, 0, fmt.Errorf("bad port %q", s)
	}
	h := l
	if isRange {
		if h, err = strconv.ParseUint(b, 10, 16); err != nil || h < l {
			return 0, 0, fmt.Errorf("bad port range %q", s)
		}
	}
	return uint16(l), uint16(h), nil
}
