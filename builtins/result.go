package builtins

import (
	"fmt"
	"sort"

	"go.starlark.net/starlark"
)

// record is an immutable result with named fields (a ping or a transfer):
// a dotted Type() and a String() meant for people.
type record struct {
	typ    string
	str    string
	fields map[string]starlark.Value
}

var _ starlark.HasAttrs = (*record)(nil)

func (r *record) String() string        { return r.str }
func (r *record) Type() string          { return r.typ }
func (r *record) Freeze()               {}
func (r *record) Truth() starlark.Bool  { return true }
func (r *record) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: %s", r.typ) }

func (r *record) Attr(name string) (starlark.Value, error) { return r.fields[name], nil }

func (r *record) AttrNames() []string {
	names := make([]string, 0, len(r.fields))
	for k := range r.fields {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

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
