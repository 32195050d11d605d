package builtins

import (
	"fmt"

	"go.starlark.net/starlark"

	"nsh.dev/nsh/internal/doc"
)

// record is an immutable result with named fields (a ping or a transfer):
// a dotted Type() and a String() meant for people. Its type's table
// documents the fields.
type record struct {
	t      *doc.Members[*record]
	str    string
	fields map[string]starlark.Value
}

var _ starlark.HasAttrs = (*record)(nil)

// recordType is the table of a record type whose attributes are the
// fields, documented in order.
func recordType(name, text string, fields []doc.Attr) doc.Members[*record] {
	t := doc.Members[*record]{Name: name, Doc: text}
	for _, f := range fields {
		t.Attrs = append(t.Attrs, doc.AttrOf[*record]{Name: f.Name, Doc: f.Doc,
			Get: func(r *record) (starlark.Value, error) { return r.fields[f.Name], nil }})
	}
	return t
}

func (r *record) String() string        { return r.str }
func (r *record) Type() string          { return r.t.Name }
func (r *record) Freeze()               {}
func (r *record) Truth() starlark.Bool  { return true }
func (r *record) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: %s", r.t.Name) }

func (r *record) Attr(name string) (starlark.Value, error) { return r.t.Attr(r, name) }

func (r *record) AttrNames() []string { return r.t.AttrNames() }

// number is a float argument that also accepts an int (UnpackArgs's
// *starlark.Float does not).
type number float64

func (n *number) Unpack(v starlark.Value) error {
	f, ok := starlark.AsFloat(v)
	if !ok {
		return fmt.Errorf("got %s, want a number", v.Type())
	}
	*n = number(f)
	return nil
}
