package config

import (
	"fmt"
	"sort"

	"github.com/pelletier/go-toml/v2/unstable"
)

// value is one TOML value and the line it starts on. It is a copy of the
// parser's nodes, which live only until the parser reads the next
// expression.
type value struct {
	kind  unstable.Kind // a scalar kind, Array, or Table
	text  string        // scalars: the string's contents, or the literal as written
	line  int
	items []*value // Array, including an array of tables
	table *table   // Table
}

// table is a TOML table: a [header] section, an inline table, or one
// element of an array of tables.
type table struct {
	keys []string // in the order the document gives them
	vals map[string]*value
}

func newTable() *table { return &table{vals: map[string]*value{}} }

func (t *table) set(key string, v *value) {
	t.keys = append(t.keys, key)
	t.vals[key] = v
}

// builder turns a document that go-toml has already decoded without error
// into a tree of values with their lines. go-toml enforces TOML's rules
// (duplicate keys, tables defined twice, bad integers); the builder still
// reports any inconsistency it meets instead of trusting that, so that a
// disagreement between the two can never panic.
type builder struct {
	p        *unstable.Parser
	newlines []int // offsets of every '\n', for a line in O(log n)
}

// buildTree returns the document as a table, or the line and message of the
// first problem.
func buildTree(data []byte) (*table, int, error) {
	b := &builder{p: &unstable.Parser{}}
	for i, c := range data {
		if c == '\n' {
			b.newlines = append(b.newlines, i)
		}
	}
	b.p.Reset(data)
	root := newTable()
	cur := root
	for b.p.NextExpression() {
		e := b.p.Expression()
		var err error
		var line int
		switch e.Kind {
		case unstable.KeyValue:
			line, err = b.keyValue(cur, e)
		case unstable.Table:
			var keys []string
			keys, line = b.key(e.Key())
			cur, err = b.header(root, keys, line, false)
		case unstable.ArrayTable:
			var keys []string
			keys, line = b.key(e.Key())
			cur, err = b.header(root, keys, line, true)
		}
		if err != nil {
			return nil, line, err
		}
	}
	if err := b.p.Error(); err != nil {
		line := 0
		if pe, ok := err.(*unstable.ParserError); ok && pe.Highlight != nil {
			line = b.line(b.p.Range(pe.Highlight))
		}
		return nil, line, err
	}
	return root, 0, nil
}

func (b *builder) line(r unstable.Range) int {
	return 1 + sort.SearchInts(b.newlines, int(r.Offset))
}

// key returns a possibly dotted key's parts and the line of its first part.
func (b *builder) key(it unstable.Iterator) ([]string, int) {
	var keys []string
	line := 0
	for it.Next() {
		n := it.Node()
		if line == 0 {
			line = b.line(n.Raw)
		}
		keys = append(keys, string(n.Data))
	}
	return keys, line
}

// descend walks from t through the tables named by keys, making those that
// do not exist yet. A key naming an array of tables means its last element,
// as TOML does for [a.b] after [[a]].
func descend(t *table, keys []string, line int) (*table, error) {
	for _, k := range keys {
		v := t.vals[k]
		switch {
		case v == nil:
			v = &value{kind: unstable.Table, line: line, table: newTable()}
			t.set(k, v)
		case v.kind == unstable.Array && len(v.items) > 0 && v.items[len(v.items)-1].kind == unstable.Table:
			v = v.items[len(v.items)-1]
		case v.kind != unstable.Table:
			return nil, fmt.Errorf("key %q is already a %s on line %d", k, kindName(v.kind), v.line)
		}
		t = v.table
	}
	return t, nil
}

// header opens the table of a [a.b] or [[a.b]] line and returns it.
func (b *builder) header(root *table, keys []string, line int, array bool) (*table, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("empty table name")
	}
	parent, err := descend(root, keys[:len(keys)-1], line)
	if err != nil {
		return nil, err
	}
	last := keys[len(keys)-1]
	v := parent.vals[last]
	if !array {
		switch {
		case v == nil:
			v = &value{kind: unstable.Table, line: line, table: newTable()}
			parent.set(last, v)
		case v.kind == unstable.Table:
			// Made implicitly by an earlier [last.sub]: this line defines it.
			v.line = line
		default:
			return nil, fmt.Errorf("key %q is already a %s on line %d", last, kindName(v.kind), v.line)
		}
		return v.table, nil
	}
	switch {
	case v == nil:
		v = &value{kind: unstable.Array, line: line}
		parent.set(last, v)
	case v.kind != unstable.Array:
		return nil, fmt.Errorf("key %q is already a %s on line %d", last, kindName(v.kind), v.line)
	}
	t := &value{kind: unstable.Table, line: line, table: newTable()}
	v.items = append(v.items, t)
	return t.table, nil
}

// keyValue sets a (possibly dotted) key in t and returns the key's line.
func (b *builder) keyValue(t *table, kv *unstable.Node) (int, error) {
	keys, line := b.key(kv.Key())
	if len(keys) == 0 {
		return line, fmt.Errorf("empty key")
	}
	t, err := descend(t, keys[:len(keys)-1], line)
	if err != nil {
		return line, err
	}
	last := keys[len(keys)-1]
	if old := t.vals[last]; old != nil {
		return line, fmt.Errorf("key %q is already set on line %d", last, old.line)
	}
	v, err := b.value(kv.Value(), line)
	if err != nil {
		return line, err
	}
	t.set(last, v)
	return line, nil
}

// value copies a value node. line is where the value starts when the node
// does not record it (arrays do not).
func (b *builder) value(n *unstable.Node, line int) (*value, error) {
	if n.Raw.Length > 0 {
		line = b.line(n.Raw)
	}
	switch n.Kind {
	case unstable.Array:
		v := &value{kind: unstable.Array, line: line}
		it := n.Children()
		for it.Next() {
			c := it.Node()
			if c.Kind == unstable.Comment {
				continue
			}
			item, err := b.value(c, line)
			if err != nil {
				return nil, err
			}
			v.items = append(v.items, item)
		}
		return v, nil
	case unstable.InlineTable:
		v := &value{kind: unstable.Table, line: line, table: newTable()}
		it := n.Children()
		for it.Next() {
			c := it.Node()
			if c.Kind != unstable.KeyValue {
				continue
			}
			if _, err := b.keyValue(v.table, c); err != nil {
				return nil, err
			}
		}
		return v, nil
	default:
		return &value{kind: n.Kind, line: line, text: string(n.Data)}, nil
	}
}

// kindName is a kind as the TOML spec names it, for messages.
func kindName(k unstable.Kind) string {
	switch k {
	case unstable.String:
		return "string"
	case unstable.Integer:
		return "integer"
	case unstable.Float:
		return "float"
	case unstable.Bool:
		return "boolean"
	case unstable.Array:
		return "array"
	case unstable.Table, unstable.InlineTable:
		return "table"
	case unstable.LocalDate:
		return "local date"
	case unstable.LocalTime:
		return "local time"
	case unstable.LocalDateTime:
		return "local date-time"
	case unstable.DateTime:
		return "date-time"
	}
	return k.String()
}
